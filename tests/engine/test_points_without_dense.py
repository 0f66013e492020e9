"""Points without the primary dense vector (Qdrant lets a point lack any named vector).

Such a point is counted, filtered, fetched and searched by its other vectors; no dense search ever
returns it, and each dense search equals brute force over the live points that have the vector,
whatever the segments, seals, compactions, deletes and re-upserts (a point can gain the vector or
lose it), on disk after a reopen, a crash or a restore, and through the server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf

DIM = 6


def _specs(index: str = "flat") -> dict[str, Any]:
    return {"dense": vf.Dense(dim=DIM, metric="l2", index=index), "bm25": vf.Sparse(analyzer=None)}


def _oracle(points: dict[int, Any], query: np.ndarray, k: int, offset: int = 0) -> list[int]:
    scores = {pid: -float(np.sum((np.asarray(v) - query) ** 2)) for pid, v in points.items() if v is not None}
    return [pid for pid, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[offset : offset + k]]


def _rows(rng: np.random.Generator, ids: list[int], share: float) -> list[Any]:
    return [None if rng.random() < share else rng.normal(size=DIM).astype(np.float32) for _ in ids]


def _check(col: vf.CollectionAPI, live: dict[int, Any], rng: np.random.Generator) -> None:
    assert col.count() == len(live)
    for _ in range(3):
        q = rng.normal(size=DIM).astype(np.float32)
        for k, offset in ((5, 0), (7, 4), (100, 0)):
            got = [h.id for h in col.search(q, k, offset=offset)]
            assert got == _oracle(live, q, k, offset)
        even = {pid: v for pid, v in live.items() if pid % 2 == 0}
        got = [h.id for h in col.search(q, 6, filter={"must": [{"key": "even", "match": True}]})]
        assert got == _oracle(even, q, 6)
    sample = sorted(live)[:10]
    for record in col.get(sample, with_vectors=True):
        if live[record.id] is None:
            assert record.vector is None
        else:
            assert record.vector == pytest.approx(np.asarray(live[record.id]).tolist(), abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    segment=st.integers(3, 40),
    share=st.sampled_from([0.0, 0.3, 0.9, 1.0]),
    deleted=st.sets(st.integers(0, 59), max_size=12),
    rewritten=st.sets(st.integers(0, 59), max_size=12),
)
def test_dense_search_leaves_out_points_without_it_over_any_segments(
    seed: int, segment: int, share: float, deleted: set[int], rewritten: set[int]
) -> None:
    rng = np.random.default_rng(seed)
    ids = list(range(60))
    with vf.connect() as db:
        col = db.create_collection("p", vectors=_specs(), max_segment_points=segment)
        dense = _rows(rng, ids, share)
        col.upsert(ids, {"dense": dense}, [{"even": pid % 2 == 0} for pid in ids])
        live = dict(zip(ids, dense, strict=True))
        if deleted:
            col.delete(sorted(deleted))
            for pid in deleted:
                del live[pid]
        again = sorted(rewritten)  # a point gains the vector or loses it
        if again:
            rows = _rows(rng, again, 0.5)
            col.upsert(again, {"dense": rows}, [{"even": pid % 2 == 0} for pid in again])
            live.update(zip(again, rows, strict=True))
        _check(col, live, rng)
        col.flush()
        while col.optimize():
            pass
        _check(col, live, rng)


def test_an_ann_index_never_returns_a_point_without_the_vector(db: vf.DatabaseAPI) -> None:
    rng = np.random.default_rng(1)
    col = db.create_collection("h", vectors=_specs("hnsw"), max_segment_points=300)
    ids = list(range(1000))
    dense = _rows(rng, ids, 0.5)
    col.upsert(ids, {"dense": dense})
    lacking = {pid for pid, v in zip(ids, dense, strict=True) if v is None}
    for _ in range(5):
        hits = col.search(rng.normal(size=DIM), 50)
        assert len(hits) == 50 and not lacking & {h.id for h in hits}


def test_every_form_of_leaving_it_out(db: vf.DatabaseAPI) -> None:
    """The key left out (no point has it), None in a list, and text through add() beside it."""
    col = db.create_collection("f", vectors=_specs())
    col.upsert([1, 2], {"bm25": [vf.SparseVector([3], [1.0]), vf.SparseVector([4], [1.0])]})
    col.upsert([3, 4], {"dense": [None, np.ones(DIM)], "bm25": [vf.SparseVector([3], [2.0]), None]})
    col.upsert([5], {})  # a point of payload only
    assert col.count() == 5
    assert [h.id for h in col.search(np.ones(DIM), 10)] == [4]
    assert [h.id for h in col.search(vf.SparseVector([3], [1.0]), 10, using="bm25")] == [3, 1]
    records = {r.id: r for r in col.get([1, 3, 4, 5], with_vectors=True)}
    assert records[1].vector is None and records[3].vector is None and records[5].vector is None
    assert records[4].vector == pytest.approx([1.0] * DIM)
    page = col.scroll(with_vectors=True)
    assert [r.vector is None for r in page.records] == [True, True, True, False, True]


def test_the_rows_of_a_list_with_none_are_checked(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("c", vectors={"d": vf.Dense(dim=3), "s": vf.Sparse(analyzer=None)})
    with pytest.raises(vf.InvalidVector, match="NaN"):
        col.upsert([1, 2], {"d": [None, [np.nan, 1.0, 0.0]]})
    with pytest.raises(vf.DimensionMismatch):
        col.upsert([1, 2], {"d": [None, [1.0, 0.0]]})
    with pytest.raises(vf.InvalidVector, match="zeros"):
        col.upsert([1, 2], {"d": [None, [0.0, 0.0, 0.0]]})
    with pytest.raises(vf.InvalidVector, match="3 rows for 2 ids"):
        col.upsert([1, 2], {"d": [None, [1.0, 0.0, 0.0], None]})
    with pytest.raises(vf.InvalidVector, match="NaN"):  # a NaN row never passes for a missing vector
        col.upsert([1], {"d": np.full((1, 3), np.nan)})
    assert col.count() == 0


def test_seals_reopen_snapshots_and_restores_keep_which_points_lack_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    ids = list(range(50))
    dense = _rows(rng, ids, 0.4)
    live = dict(zip(ids, dense, strict=True))
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("docs", vectors=_specs(), max_segment_points=16)
        col.upsert(ids, {"dense": dense}, [{"even": pid % 2 == 0} for pid in ids])
        col.upsert([0, 1], {"dense": [np.ones(DIM), None]}, [{"even": True}, {"even": False}])
        live.update({0: np.ones(DIM), 1: None})  # in the log only, until the next seal
        col.snapshot(tmp_path / "s.tar")
    with vf.connect(tmp_path / "d") as db:
        _check(db.get_collection("docs"), live, rng)
        _check(db.restore(tmp_path / "s.tar", name="again"), live, rng)


def test_the_log_replays_points_without_it_after_a_crash(tmp_path: Path) -> None:
    child = (
        "import os, sys, numpy as np, vectorforge as vf\n"
        "from tests.engine.test_points_without_dense import _specs\n"
        "db = vf.connect(sys.argv[1])\n"
        "col = db.create_collection('docs', vectors=_specs())\n"
        "payloads = [{'even': i % 2 == 0} for i in (1, 2, 3)]\n"
        "col.upsert([1, 2, 3], {'dense': [None, np.ones(6), None]}, payloads)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", child, str(tmp_path / "d")], check=True, timeout=120)
    with vf.connect(tmp_path / "d") as db:
        _check(db.get_collection("docs"), {1: None, 2: np.ones(DIM), 3: None}, np.random.default_rng(3))


def test_a_snapshot_listing_rows_outside_its_segment_is_refused(tmp_path: Path) -> None:
    import msgpack

    from vectorforge.engine.restore_check import check_collection

    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("docs", vectors=_specs())
        col.upsert([1, 2], {"dense": [None, np.ones(DIM)]})
        col.flush()
        config = col.config
    folder = tmp_path / "d" / "collections" / "docs"
    (segment,) = (folder / "segments").iterdir()
    raw = msgpack.unpackb((segment / "points.msgpack").read_bytes(), strict_map_key=False)
    assert raw["absent"] == [0]
    raw["absent"] = [7]
    (segment / "points.msgpack").write_bytes(msgpack.packb(raw, use_bin_type=True))
    with pytest.raises(vf.InvalidParameter, match="rows without the dense vector outside its 2 rows"):
        check_collection(folder, config)


TEXTS = [
    "vitamin d deficiency and depression",
    "breast cancer and brca1",
    "exercise treats depression",
    "vitamin c and colds",
    "the genetics of breast cancer",
    "sleep and depression",
]


def test_a_collection_of_sparse_and_multi_vectors_alone(db: vf.DatabaseAPI) -> None:
    """No vf.Dense at all (Qdrant's sparse-only collections): every point lacks the primary vector."""
    col = db.create_collection(
        "alone", vectors={"splade": vf.Sparse(modifier=None, analyzer=None), "tokens": vf.Multi(dim=3)}
    )
    info = col.info()
    assert info["dim"] is None and set(info["vectors"]) == {"splade", "tokens"} and col.dim is None
    col.upsert(
        [1, 2, 3],
        {
            "splade": [vf.SparseVector([1, 5], [1.0, 2.0]), vf.SparseVector([5], [0.5]), None],
            "tokens": [None, np.eye(3)[:2], np.ones((1, 3))],
        },
        [{"i": 1}, {"i": 2}, {"i": 3}],
    )
    hits = col.search(vf.SparseVector([5], [1.0]), 5, using="splade")
    assert [(h.id, h.score) for h in hits] == [(1, 2.0), (2, 0.5)]
    assert [h.id for h in col.search(np.eye(3)[:1], 5, using="tokens")] == [2, 3]
    assert col.count({"must": [{"key": "i", "range": {"gte": 2}}]}) == 2
    record = col.get([2], with_vectors=True)[0]
    assert record.vector is None and set(record.vectors or {}) == {"splade", "tokens"}
    with pytest.raises(vf.InvalidParameter, match="has no dense vector; search one of its named vectors"):
        col.search(np.ones(1))
    with pytest.raises(vf.InvalidParameter, match="has no dense vector; upsert its named vectors by name"):
        col.upsert([4], [[1.0]])
    with pytest.raises(vf.InvalidParameter, match="has no vector ''"):
        col.upsert([4], {"": [[1.0]]})
    assert col.count() == 3


def test_without_a_dense_vector_add_fills_bm25_and_query_searches_it(db: vf.DatabaseAPI) -> None:
    """add(texts) needs no embedder when the collection has no dense vector; BM25 answers as it
    does beside a dense vector."""
    from vectorforge.embed.analyzer import get_analyzer

    alone = db.create_collection("bm25", vectors={"bm25": vf.Sparse()}, max_segment_points=4)
    alone.add(TEXTS, ids=list(range(len(TEXTS))))
    beside = db.create_collection("both", vectors={"d": vf.Dense(dim=2), "bm25": vf.Sparse()})
    rows = list(get_analyzer("english").encode(TEXTS))
    beside.upsert(list(range(len(TEXTS))), {"d": np.ones((len(TEXTS), 2)), "bm25": rows})
    for text in ("depression", "breast cancer genetics", "vitamin"):
        got = [(h.id, h.score) for h in alone.query(text, 4, using="bm25")]
        assert got and got == [(h.id, h.score) for h in beside.query(text, 4, using="bm25")]
    with pytest.raises(vf.InvalidParameter, match="has no dense vector; query one of its sparse vectors"):
        alone.query("depression")
    with pytest.raises(vf.InvalidParameter, match="makes dense vectors, and vectors= has no vf"):
        db.create_collection("e", vectors={"bm25": vf.Sparse()}, embedder="minilm")


def test_a_sharded_collection_without_a_dense_vector_equals_one(tmp_path: Path) -> None:
    with vf.connect(tmp_path / "d") as db:
        sharded = db.create_collection("s", vectors={"bm25": vf.Sparse()}, shards=3, replicas=2)
        plain = db.create_collection("p", vectors={"bm25": vf.Sparse()})
        for col in (sharded, plain):
            col.add(TEXTS, ids=list(range(len(TEXTS))))
        sharded.reshard(2)
        for text in ("depression", "breast cancer", "vitamin c"):
            got = [(h.id, h.score) for h in sharded.query(text, 5, using="bm25")]
            assert got == [(h.id, h.score) for h in plain.query(text, 5, using="bm25")]
        assert sharded.info()["dim"] is None
        with pytest.raises(vf.InvalidParameter, match="semantic sharding places points by their dense"):
            db.create_collection("sem", vectors={"bm25": vf.Sparse()}, shards=2, sharding="semantic")
        with pytest.raises(vf.InvalidParameter, match="has no dense vector"):
            sharded.search(np.ones(1))
        sharded.snapshot(tmp_path / "s.tar")
        restored = db.restore(tmp_path / "s.tar", name="again")
        assert [h.id for h in restored.query("depression", 5, using="bm25")] == [
            h.id for h in plain.query("depression", 5, using="bm25")
        ]


def test_a_restored_config_without_a_dense_vector_keeps_its_placeholder() -> None:
    from vectorforge.engine.restore_check import check_config

    config = vf.CollectionConfig(name="x", dim=3, has_dense=False, sparse={"b": vf.Sparse()})
    with pytest.raises(vf.InvalidParameter, match="without a dense vector has dim 1, a flat index"):
        check_config(config)


def test_semantic_sharding_places_points_without_the_vector_by_id_and_keeps_them() -> None:
    """Before: such a point went to shard -1 (the last one) and its next write deleted it."""
    rng = np.random.default_rng(5)
    specs = {"dense": vf.Dense(dim=DIM, metric="l2", index="flat"), "bm25": vf.Sparse(analyzer=None)}
    with vf.connect() as db:
        col = db.create_collection("sem", vectors=specs, shards=3, sharding="semantic")
        with pytest.raises(vf.InvalidParameter, match="only 2 dense vectors"):  # trains on points with one
            col.upsert([0, 1, 2], {"dense": [rng.normal(size=DIM), None, rng.normal(size=DIM)]})
        col.upsert(list(range(300)), {"dense": rng.normal(size=(300, DIM))})
        term = {"bm25": [vf.SparseVector([7], [1.0])]}
        for _ in range(2):  # written twice: still there, once
            col.upsert([1000], term, [{"a": 1}])
        col.set_payload({"a": 2}, ids=[1000])
        assert col.count() == 301
        assert [r.payload for r in col.get([1000])] == [{"a": 2}]
        assert [h.id for h in col.search(vf.SparseVector([7], [1.0]), 5, using="bm25")] == [1000]
        assert 1000 not in {h.id for h in col.search(rng.normal(size=DIM), 301)}
