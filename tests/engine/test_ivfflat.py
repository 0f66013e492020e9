from __future__ import annotations

from pathlib import Path

import numpy as np

import vectorforge as vf


def test_ivfflat_is_trained_on_seal_exact_in_scores_and_survives_reopen(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((30, 16)).astype(np.float32)
    vecs = centers[rng.integers(0, 30, 4000)] + 0.2 * rng.standard_normal((4000, 16)).astype(np.float32)
    queries = vecs[:50] + 0.05
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("v", dim=16, metric="l2", index="ivfflat", index_params={"nprobe": 8})
        col.upsert(list(range(4000)), vecs)
        col.flush()  # sealed: trained and searched through the inverted lists
        segments = [s for s in col.info()["segments"] if s["rows"]]
        assert len(segments) == 1 and segments[0]["sealed"]
        approx = col.search_batch(queries, k=10, with_payload=False)
        exact = col.search_batch(queries, k=10, with_payload=False, params={"exact": True})
        hits = sum(len({h.id for h in a} & {h.id for h in e}) for a, e in zip(approx, exact, strict=True))
        assert hits / (10 * len(queries)) >= 0.9
        for a in approx:  # inverted lists of full vectors: every score is the true -distance
            for h in a:
                assert abs(h.score + float(np.linalg.norm(vecs[h.id] - queries[approx.index(a)]))) < 1e-3
    with vf.connect(tmp_path / "d") as db:
        again = db.get_collection("v").search_batch(queries, k=10, with_payload=False)
        assert [[h.id for h in r] for r in again] == [[h.id for h in r] for r in approx]


def test_ivfflat_refuses_pq_parameters() -> None:
    try:
        vf.connect().create_collection("v", dim=16, index="ivfflat", index_params={"m": 4})
    except vf.InvalidParameter as exc:
        assert "unknown parameters ['m']" in str(exc)
    else:
        raise AssertionError("ivfflat accepted a product-quantization parameter")
