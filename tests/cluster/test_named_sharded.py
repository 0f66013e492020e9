"""Sparse (BM25) and multi vectors on sharded, replicated collections.

The oracle is one plain collection holding the same points: BM25 over shards must equal it exactly,
because the coordinator gathers every shard's statistics before it searches (per-shard statistics
give scores that cannot be compared, the distributed form of the silent merge bug; the pitfall test
shows they would differ here). Writes, deletes, a lagging replica's catch-up, failover, anti-entropy
and resharding all carry the named vectors, and the points that lack the primary dense vector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.engine.merge import merge_topk

DIM, TOKEN_DIM = 4, 3


def _specs() -> dict[str, Any]:
    return {
        "dense": vf.Dense(dim=DIM, index="flat"),
        "bm25": vf.Sparse(),
        "tokens": vf.Multi(dim=TOKEN_DIM),
        "title": vf.Dense(dim=TOKEN_DIM, metric="dot", index="flat"),
    }


def _points(rng: np.random.Generator, ids: list[int], vocabulary: int = 12) -> dict[str, Any]:
    """Term counts drawn from a Zipf-like law (a few common terms, many rare), token matrices of
    1-5 tokens; every fifth point lacks its token matrix, every seventh its terms, every eighth its
    primary dense vector."""
    weights = 1 / np.arange(1, vocabulary + 1)
    bm25: list[Any] = []
    tokens: list[Any] = []
    for pid in ids:
        n = int(rng.integers(1, 6))
        terms = np.unique(rng.choice(vocabulary, size=n, p=weights / weights.sum()))
        counts = rng.integers(1, 4, size=len(terms)).astype(np.float32)
        bm25.append(None if pid % 7 == 0 else vf.SparseVector(terms, counts))
        tokens.append(None if pid % 5 == 0 else rng.normal(size=(int(rng.integers(1, 6)), TOKEN_DIM)))
    titles = [None if pid % 6 == 0 else rng.normal(size=TOKEN_DIM) for pid in ids]
    dense = [
        None if pid % 8 == 3 else v for pid, v in zip(ids, rng.normal(size=(len(ids), DIM)), strict=True)
    ]
    return {"dense": dense, "bm25": bm25, "tokens": tokens, "title": titles}


def _same(a: list[vf.Hit], b: list[vf.Hit]) -> None:
    assert [(h.id, h.score) for h in a] == [(h.id, h.score) for h in b]


def _queries(rng: np.random.Generator) -> list[tuple[vf.SparseVector, np.ndarray]]:
    out = []
    for _ in range(4):
        terms = np.unique(rng.choice(12, size=int(rng.integers(1, 4))))
        out.append((vf.SparseVector(terms, np.ones(len(terms))), rng.normal(size=(2, TOKEN_DIM))))
    return out


def _compare(sharded: vf.CollectionAPI, plain: vf.CollectionAPI, rng: np.random.Generator) -> None:
    for sparse_query, token_query in _queries(rng):
        for k, offset in ((5, 0), (10, 3)):
            _same(
                sharded.search(sparse_query, k, using="bm25", offset=offset),
                plain.search(sparse_query, k, using="bm25", offset=offset),
            )
            dense_query = np.append(token_query[0], 0.5)
            for using, query in (("tokens", token_query), ("title", token_query[0]), ("dense", dense_query)):
                got = sharded.search(query, k, using=using, offset=offset)
                want = plain.search(query, k, using=using, offset=offset)
                assert [h.id for h in got] == [h.id for h in want], using
                assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-6, abs=1e-6)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    shards=st.integers(2, 4),
    sharding=st.sampled_from(["hash", "key"]),
    deleted=st.sets(st.integers(0, 59), max_size=15),
)
def test_sharded_bm25_and_maxsim_equal_one_collection(
    seed: int, shards: int, sharding: str, deleted: set[int]
) -> None:
    rng = np.random.default_rng(seed)
    ids = list(range(60))
    points = _points(rng, ids)
    payloads = [{"tenant": f"t{pid % 5}"} for pid in ids]
    with vf.connect() as db:
        options: dict[str, Any] = {"shard_key": "tenant"} if sharding == "key" else {}
        sharded = db.create_collection(
            "s", vectors=_specs(), shards=shards, sharding=sharding, max_segment_points=16, **options
        )
        plain = db.create_collection("p", vectors=_specs(), max_segment_points=16)
        for col in (sharded, plain):
            col.upsert(ids, points, payloads)
            if deleted:
                col.delete(sorted(deleted))
        _compare(sharded, plain, rng)
        flt = {"must": [{"key": "tenant", "match_any": ["t1", "t3"]}]}
        q = vf.SparseVector([0, 1, 2], [1.0, 1.0, 1.0])
        _same(sharded.search(q, 10, using="bm25", filter=flt), plain.search(q, 10, using="bm25", filter=flt))


def test_per_shard_statistics_would_rank_differently() -> None:
    """The pitfall the coordinator avoids: term 0 is in 40 of shard 0's 60 points and in 2 of shard
    1's 120. Over the whole collection every point with the term scores the same (one length, one
    count); with each shard's own IDF, shard 1's two would outrank the rest."""
    with vf.connect() as db:
        col = db.create_collection("s", vectors={"d": vf.Dense(dim=2), "bm25": vf.Sparse()}, shards=2)
        assert isinstance(col, ShardedCollection)
        home = {pid: int(col.router.place([pid], np.ones((1, 2)), [None])[0]) for pid in range(1000)}
        on = {s: [pid for pid, shard in home.items() if shard == s] for s in (0, 1)}
        with_term = on[0][:40] + on[1][:2]
        ids = on[0][:60] + on[1][:120]
        term = [vf.SparseVector([0 if pid in with_term else 5], [1.0]) for pid in ids]
        col.upsert(ids, {"d": np.ones((len(ids), 2)), "bm25": term})
        query = vf.SparseVector([0], [1.0])
        hits = col.search(query, 10, using="bm25")
        assert len({h.score for h in hits}) == 1 and [h.id for h in hits] == sorted(with_term)[:10]
        own = [rs.replicas[0].collection.search_sparse("bm25", query, 10) for rs in col.shards]
        naive = merge_topk(own, 10, 0)  # what merging each shard's own scores would answer
        assert {h.id for h in naive[:2]} == set(on[1][:2]) and naive[0].score > naive[2].score


def test_add_and_hybrid_query_on_a_sharded_collection(tmp_path: Path) -> None:
    texts = [
        "vitamin d deficiency and depression",
        "breast cancer and brca1",
        "exercise treats depression",
        "vitamin c and colds",
        "the genetics of breast cancer",
        "sleep and depression",
    ]
    with vf.connect(tmp_path / "d") as db:
        sharded = db.create_collection(
            "s", embedder="minilm", index="flat", sparse={"bm25": vf.Sparse()}, shards=3, replicas=2
        )
        plain = db.create_collection("p", embedder="minilm", index="flat", sparse={"bm25": vf.Sparse()})
        for col in (sharded, plain):
            col.add(texts, ids=list(range(len(texts))))
        for query in ("depression", "breast cancer genetics"):
            _same(sharded.query(query, 4, using="bm25"), plain.query(query, 4, using="bm25"))
            got = [h.id for h in sharded.query(query, 4, mode="hybrid")]
            assert got == [h.id for h in plain.query(query, 4, mode="hybrid")]
        assert sharded.info()["vectors"]["bm25"]["kind"] == "sparse"


def test_replicas_catch_up_fail_over_and_repair_with_named_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("r", vectors=_specs(), shards=2, replicas=3)
        plain = db.create_collection("p", vectors=_specs())
        assert isinstance(col, ShardedCollection)
        ids = list(range(40))
        first = _points(rng, ids)
        col.upsert(ids, first)
        plain.upsert(ids, first)
        for rs in col.shards:
            rs.lag(2)  # replica 2 of every shard stops applying
        later = _points(rng, ids[:20])
        col.upsert(ids[:20], later)
        plain.upsert(ids[:20], later)
        for rs in col.shards:
            rs.recover(2)  # caught up from the replication log: the named vectors come with it
            for replica in rs.replicas:
                assert replica.collection.get(
                    [r for r in ids[:20] if r in _ids_on(rs)], with_vectors=True
                ) == rs.replicas[0].collection.get(
                    [r for r in ids[:20] if r in _ids_on(rs)], with_vectors=True
                )
            rs.lose(0)  # the leader's node leaves: a follower takes over
        _compare(col, plain, rng)
        # One replica's BM25 vector of a point diverges (the dense vector and payload stay): only
        # the hash of the named vectors can see it, and anti-entropy puts it back.
        rs = col.shards[0]
        pid = next(iter(_ids_on(rs)))
        victim = rs.replicas[2].collection
        record = victim.get([pid], with_vectors=True)[0]
        victim.upsert(
            [pid], {"dense": [record.vector], "bm25": [vf.SparseVector([11], [9.0])]}, [record.payload]
        )
        report = col.repair()
        assert report["repaired_points"] >= 1
        assert victim.get([pid], with_vectors=True) == rs.replicas[1].collection.get([pid], with_vectors=True)


def _ids_on(rs: Any) -> set[Any]:
    return {r.id for r in rs.replicas[1].collection.scroll(limit=10_000, with_payload=False).records}


def test_resharding_keeps_every_named_vector(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("r", vectors=_specs(), shards=2)
        plain = db.create_collection("p", vectors=_specs())
        ids = list(range(50))
        points = _points(rng, ids)
        col.upsert(ids, points)
        plain.upsert(ids, points)
        col.reshard(3)
        assert col.info()["shards"] == 3
        _compare(col, plain, rng)
        assert col.get(ids, with_vectors=True) == plain.get(ids, with_vectors=True)


def test_tied_scores_page_by_id_over_shards() -> None:
    with vf.connect() as db:
        col = db.create_collection("ties", vectors=_specs(), shards=3)
        ids = list(range(20, 0, -1))
        col.upsert(
            ids,
            {
                "dense": np.ones((20, DIM)),
                "bm25": [vf.SparseVector([1], [1.0])] * 20,
                "tokens": [np.ones((2, TOKEN_DIM))] * 20,
            },
        )
        for using, query in (("bm25", vf.SparseVector([1], [1.0])), ("tokens", np.ones((1, TOKEN_DIM)))):
            pages = [[h.id for h in col.search(query, 3, using=using, offset=off)] for off in (0, 3, 17)]
            assert pages == [[1, 2, 3], [4, 5, 6], [18, 19, 20]], using


def test_a_sharded_snapshot_restores_every_named_vector(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("s", vectors=_specs(), shards=2, replicas=2)
        plain = db.create_collection("p", vectors=_specs())
        ids = list(range(30))
        points = _points(rng, ids)
        col.upsert(ids, points)
        plain.upsert(ids, points)
        col.snapshot(tmp_path / "s.tar")
        restored = db.restore(tmp_path / "s.tar", name="again")
        _compare(restored, plain, rng)
        assert restored.get(ids, with_vectors=True) == plain.get(ids, with_vectors=True)


def test_relaxed_bm25_reads_take_statistics_and_scores_from_one_replica() -> None:
    """Replica 1 lags behind 60 writes: an eventual read may answer from either replica, but from
    one: its statistics and its scores, never one replica's statistics with the other's lists."""
    rng = np.random.default_rng(13)
    with vf.connect() as db:
        col = db.create_collection("r", vectors=_specs(), shards=1, replicas=2, write_quorum="1")
        assert isinstance(col, ShardedCollection)
        col.upsert(list(range(40)), _points(rng, list(range(40))))
        col.shards[0].lag(1)
        col.upsert(list(range(40, 100)), _points(rng, list(range(40, 100))))
        query = vf.SparseVector([0, 1, 2], [1.0, 1.0, 1.0])
        each = [
            [(h.id, h.score) for h in r.collection.search_sparse("bm25", query, 10)]
            for r in col.shards[0].replicas
        ]
        assert each[0] != each[1]
        for _ in range(8):  # the replicas take turns
            got = [(h.id, h.score) for h in col.search(query, 10, using="bm25", consistency="eventual")]
            assert got in each


def test_a_replica_lost_between_the_two_bm25_steps_is_fenced_and_the_query_answered() -> None:
    """Fault injection: the leader's node goes away after its statistics were asked for (a Ray
    actor's loss raises ReplicaLost the same way); the query answers from the other replica."""
    from vectorforge.errors import ReplicaLost

    rng = np.random.default_rng(21)
    with vf.connect() as db:
        col = db.create_collection("r", vectors=_specs(), shards=1, replicas=2)
        plain = db.create_collection("p", vectors=_specs())
        assert isinstance(col, ShardedCollection)
        points = _points(rng, list(range(50)))
        col.upsert(list(range(50)), points)
        plain.upsert(list(range(50)), points)
        rs = col.shards[0]
        leader = rs.replicas[rs.leader]

        def gone(*args: object, **kwargs: object) -> object:
            raise ReplicaLost("the node left")

        leader.collection.search_sparse = gone  # type: ignore[method-assign]
        query = vf.SparseVector([0, 1], [1.0, 1.0])
        _same(col.search(query, 10, using="bm25"), plain.search(query, 10, using="bm25"))
        assert not leader.live
