"""The drift watch's bookkeeping (a real SQLite store): the first full window is frozen as the
reference, later windows never overlap it, a wait is not recorded, queries and documents are
watched apart, and unwatching forgets the embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.evaluation.online.drift_watch import DOCUMENTS, QUERIES, DriftStore, DriftWatch, check_drift


def add(store: DriftStore, kind: str, t0: float, shift: float, seed: int, n: int = 20) -> None:
    rng = np.random.default_rng(seed)
    rows = [
        (f"{kind}-{t0}-{i}", "c", t0 + i / 1000, 0.5, 3, 12, rng.standard_normal(16) + shift)
        for i in range(n)
    ]
    store.add_vectors(rows, kind)


def test_frozen_reference_then_quiet_then_alarm(tmp_path: Path) -> None:
    store = DriftStore(tmp_path / "events.sqlite")
    with pytest.raises(vf.InvalidParameter, match="not watched"):
        check_drift(store, "c")
    store.set_watch("c", DriftWatch(window=20, documents=True))
    add(store, QUERIES, 1.0, 0.0, 1, n=19)
    first = check_drift(store, "c", now=2.0)
    assert first["status"] == "waiting" and first["have"] == 19 and store.checks("c") == []  # not recorded
    add(store, QUERIES, 2.0, 0.0, 2, n=1)
    assert check_drift(store, "c", now=3.0)["status"] == "reference frozen"
    add(store, QUERIES, 4.0, 0.0, 3)
    add(store, DOCUMENTS, 4.0, 0.0, 4)
    quiet = check_drift(store, "c", now=5.0)
    assert quiet["status"] == "checked" and not quiet["alarm"]
    assert quiet["documents"]["status"] == "reference frozen"  # its own reference, its own rows
    assert quiet["embeddings"]["n_reference"] == quiet["embeddings"]["n_current"] == 20
    add(store, QUERIES, 6.0, 2.0, 5)
    shifted = check_drift(store, "c", now=7.0)
    assert shifted["alarm"] and shifted["documents"]["status"] == "waiting"
    assert [c["status"] for c in store.checks("c")] == ["reference frozen", "checked", "checked"]
    store.unwatch("c")
    assert store.watches() == {} and store.reference("c") is None
    assert len(store.window("c", 100, kind=QUERIES)[0]) == 0


def test_a_bad_watch_is_refused(tmp_path: Path) -> None:
    store = DriftStore(tmp_path / "events.sqlite")
    with pytest.raises(vf.InvalidParameter, match="interval"):
        store.set_watch("c", DriftWatch(every="soon"))
    assert store.watches() == {}
