"""Quantized indexes (`quantization` on hnsw and ivfflat): codes find the candidates, the full
vectors (memory-mapped from the segment once it is on disk) re-score them, so every score that
leaves a segment is exact; with candidates enough the answer is the exact one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.index import estimate_bytes, new_index
from vectorforge.index.ivfpq import MIN_TRAIN_ROWS
from vectorforge.types import Metric

DIM = 64
N = 3_000  # above MIN_TRAIN_ROWS: the codes are trained
CONFIGS = [
    ("hnsw", {"quantization": "fp16"}),
    ("hnsw", {"quantization": "sq8"}),
    ("hnsw", {"quantization": "rabitq"}),
    ("ivfflat", {"quantization": "fp16", "nlist": 16}),
    ("ivfflat", {"quantization": "sq8", "nlist": 16}),
    ("ivfflat", {"quantization": "rabitq", "nlist": 16}),
    ("ivfflat", {"quantization": "sq8", "nlist": 16, "coarse": "hnsw"}),
]


def clustered(seed: int, n: int = N, centers_seed: int = 0) -> np.ndarray:
    """Unit vectors around 20 centers (the same for the same `centers_seed`: queries and data)."""
    centers = np.random.default_rng(centers_seed).standard_normal((20, DIM))
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def searching(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Ordinary search parameters for the recall test (one bit a dimension at 64 dims needs more
    candidates than the default)."""
    out: dict[str, Any] = {} if kind == "hnsw" else {"nprobe": 8}
    return out | ({"oversample": 30.0} if params["quantization"] == "rabitq" else {})


def exhaustive(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Search parameters under which every row is a candidate and re-scored."""
    wide: dict[str, Any] = {"oversample": 100.0}
    wide.update({"ef": 4096} if kind == "hnsw" else {"nprobe": params.get("nlist", 16)})
    return wide


@pytest.mark.parametrize(("kind", "params"), CONFIGS)
def test_scores_are_exact_and_recall_holds(kind: str, params: dict[str, Any], tmp_path: Path) -> None:
    vecs = clustered(0)
    queries = clustered(1, 40)
    exact_scores = queries @ vecs.T
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("q", dim=DIM, metric="cosine", index=kind, index_params=params)
        col.upsert(list(range(N)), vecs)
        col.flush()
        (segment,) = [s for s in col.info()["segments"] if s["rows"]]
        assert segment["sealed"]
        got = col.search_batch(queries, k=10, with_payload=False, params=searching(kind, params))
        truth = col.search_batch(queries, k=10, with_payload=False, params={"exact": True})
        for qi, hits in enumerate(got):  # re-scored: each score is the true cosine
            for h in hits:
                assert h.score == pytest.approx(float(exact_scores[qi, h.id]), abs=1e-5)
        found = sum(len({h.id for h in a} & {h.id for h in e}) for a, e in zip(got, truth, strict=True))
        assert found / (10 * len(queries)) >= 0.9
        before = [[h.id for h in r] for r in got]
    with vf.connect(tmp_path / "d") as db:  # reopened: codes from index.faiss, vectors mapped
        col = db.get_collection("q")
        again = col.search_batch(queries, k=10, with_payload=False, params=searching(kind, params))
        assert [[h.id for h in r] for r in again] == before
        index = next(seg for seg in col._segments if seg.n).index
        assert index.vectors_on_disk and isinstance(index.vectors().base, np.memmap)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    config=st.sampled_from(CONFIGS),
    seed=st.integers(0, 2**16),
    k=st.integers(1, 30),
    keep=st.floats(0.3, 1.0),
)
def test_with_every_row_a_candidate_the_answer_is_exact_search(
    config: tuple[str, dict[str, Any]], seed: int, k: int, keep: float
) -> None:
    """Property: ef / nprobe and oversampling wide enough that every row is re-scored give the exact
    answer (ids and scores), filtered or not."""
    kind, params = config
    vecs = clustered(seed, centers_seed=seed)
    rng = np.random.default_rng(seed)
    query = clustered(seed + 1, 1, centers_seed=seed)[0]
    col = vf.connect().create_collection("q", dim=DIM, metric="cosine", index=kind, index_params=params)
    col.upsert(list(range(N)), vecs, [{"keep": bool(rng.random() < keep)} for _ in range(N)])
    col.flush()
    flt = None if keep >= 0.95 else {"must": [{"key": "keep", "match": True}]}
    got = col.search(query, k=k, filter=flt, with_payload=False, params=exhaustive(kind, params))
    want = col.search(query, k=k, filter=flt, with_payload=False, params={"exact": True})
    assert [h.id for h in got] == [h.id for h in want]
    np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)


def test_a_growing_quantized_graph_is_exact_until_it_has_rows_to_train_on() -> None:
    index = new_index("hnsw", DIM, Metric.COSINE, {"quantization": "sq8"})
    vecs = clustered(3)
    index.add(vecs[: MIN_TRAIN_ROWS - 1])
    assert index.index is None  # searched exactly meanwhile (ann_search falls back)
    index.add(vecs[MIN_TRAIN_ROWS - 1 :])
    assert index.index is not None and index.index.ntotal == N == index.ntotal


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"quantization": "int4"}, "quantization must be one of 'none', 'fp16', 'sq8', 'rabitq', not 'int4'"),
        ({"quantization": "sq8", "oversample": 0.5}, "oversample must be a number from 1 to 100, not 0.5"),
        ({"coarse": "hnsw"}, "unknown parameters ['coarse'] for index 'hnsw'"),
    ],
)
def test_bad_quantization_parameters_are_refused_by_name(params: dict[str, Any], message: str) -> None:
    db = vf.connect()
    with pytest.raises(vf.InvalidParameter, match=message.replace("[", r"\[").replace("]", r"\]")):
        db.create_collection("q", dim=DIM, index="hnsw", index_params=params)
    assert db.list_collections() == []  # nothing made


def test_rabitq_on_a_graph_needs_a_euclidean_order_and_says_where_to_go() -> None:
    with pytest.raises(vf.InvalidParameter, match="for dot products use index 'ivfflat'"):
        vf.connect().create_collection(
            "q", dim=DIM, metric="dot", index="hnsw", index_params={"quantization": "rabitq"}
        )


def test_a_bad_oversample_at_search_time_is_refused() -> None:
    col = vf.connect().create_collection("q", dim=DIM, index="hnsw", index_params={"quantization": "sq8"})
    col.upsert([1], clustered(0, 1))
    with pytest.raises(vf.InvalidParameter, match="oversample must be a number from 1 to 100"):
        col.search(clustered(1, 1)[0], params={"oversample": 0})


@pytest.mark.parametrize("quantization", ["fp16", "sq8", "rabitq"])
def test_codes_cost_less_memory_than_float_graphs(quantization: str) -> None:
    full = estimate_bytes("hnsw", 100_000, 384, {})
    codes = estimate_bytes("hnsw", 100_000, 384, {"quantization": quantization})
    lists = estimate_bytes("ivfflat", 100_000, 384, {"quantization": quantization})
    assert codes < full and lists < estimate_bytes("ivfflat", 100_000, 384, {})
    if quantization == "rabitq":  # 56 bytes a vector (and an 8-byte id) against 1,536
        assert estimate_bytes("ivfflat", 100_000, 384, {}) / lists > 15


def test_a_snapshot_of_a_rabitq_graph_restores(tmp_path: Path) -> None:
    """The RaBitQ graph is euclidean also for a cosine collection: the restore check knows it."""
    vecs = clustered(5)
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection(
            "q", dim=DIM, metric="cosine", index="hnsw", index_params={"quantization": "rabitq"}
        )
        col.upsert(list(range(N)), vecs)
        col.flush()
        want = [h.id for h in col.search(vecs[0], k=5, with_payload=False)]
        col.snapshot(tmp_path / "q.snapshot")
        copy = db.restore(tmp_path / "q.snapshot", name="copy")
        assert [h.id for h in copy.search(vecs[0], k=5, with_payload=False)] == want


def test_a_null_oversample_is_refused_by_name() -> None:
    with pytest.raises(vf.InvalidParameter, match="oversample must be a number from 1 to 100, not None"):
        vf.connect().create_collection(
            "q", dim=DIM, index="hnsw", index_params={"quantization": "sq8", "oversample": None}
        )


def test_a_plain_graph_without_its_index_file_is_an_error_not_an_empty_graph(tmp_path: Path) -> None:
    from vectorforge.index import index_class

    index = new_index("hnsw", DIM, Metric.COSINE, {})
    index.add(clustered(6, 100))
    (tmp_path / "seg").mkdir()
    with pytest.raises(RuntimeError):  # FAISS cannot read what is not there
        index_class("hnsw").load(tmp_path / "seg", DIM, Metric.COSINE, {})
