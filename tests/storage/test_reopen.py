"""Opening a collection loads saved indexes and replays only the log tail; it never rebuilds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.index.hnsw import HNSWIndex


def test_reopen_loads_sealed_indexes_and_replays_only_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vecs = np.random.default_rng(0).standard_normal((1200, 8)).astype(np.float32)
    np.save(tmp_path / "vecs.npy", vecs)
    # A writer that dies without closing: 1,000 points sealed in a segment, a 200-point tail in the log.
    script = f"""
import os, numpy as np, vectorforge as vf
vecs = np.load({str(tmp_path / "vecs.npy")!r})
col = vf.connect({str(tmp_path / "d")!r}).create_collection("c", dim=8, index="hnsw")
col.upsert(list(range(1000)), vecs[:1000])
col.flush()
col.upsert(list(range(1000, 1200)), vecs[1000:])
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    order = np.argsort(-(vecs @ vecs[3] / np.linalg.norm(vecs, axis=1)), kind="stable")
    expected = order[:5].tolist()
    added: list[int] = []
    real_add = HNSWIndex.add

    def counting_add(self: HNSWIndex, vectors: np.ndarray) -> None:
        added.append(len(vectors))
        real_add(self, vectors)

    monkeypatch.setattr(HNSWIndex, "add", counting_add)
    with vf.connect(tmp_path / "d") as db:
        col = db.get_collection("c")
        assert col.count() == 1200
        assert [h.id for h in col.search(vecs[3], k=5, params={"exact": True})] == expected
    assert added == [200], f"opening re-added {added} rows: only the 200-row log tail should be replayed"
