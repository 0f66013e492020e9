"""A sharded collection answers exactly like one unsharded collection holding the same points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.cluster import ShardedCollection, stable_hash

DIM = 4

filters = st.one_of(
    st.none(),
    st.builds(lambda v: {"must": [{"key": "g", "match": v}]}, st.integers(0, 3)),
    st.builds(lambda lo: {"must": [{"key": "n", "range": {"gte": lo}}]}, st.integers(0, 60)),
    st.builds(lambda v: {"must_not": [{"key": "g", "match": v}]}, st.integers(0, 3)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 60),
    shards=st.integers(2, 5),
    sharding=st.sampled_from(["hash", "key", "semantic"]),
    metric=st.sampled_from(["cosine", "dot", "l2"]),
    k=st.integers(1, 15),
    offset=st.integers(0, 8),
    flt=filters,
    deletes=st.lists(st.integers(0, 70), max_size=10),
    seed=st.integers(0, 2**16),
)
def test_sharded_equals_unsharded(
    n: int,
    shards: int,
    sharding: str,
    metric: str,
    k: int,
    offset: int,
    flt: Any,
    deletes: list[int],
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    # small integers: scores are exact in float32, so ties are real and must break the same way (by id)
    vectors = rng.integers(-2, 3, size=(n, DIM)).astype(np.float32)
    vectors[np.all(vectors == 0, axis=1), 0] = 1.0  # cosine refuses zero vectors
    ids: list[int | str] = [i if i % 3 else f"p{i}" for i in range(n)]
    payloads = [{"g": i % 4, "n": i, "tenant": f"t{i % 5}"} for i in range(n)]
    db = vf.connect()
    one = db.create_collection("one", dim=DIM, metric=metric, index="flat")
    extra: dict[str, Any] = {"shard_key": "tenant"} if sharding == "key" else {}
    if sharding == "semantic":
        extra["n_probe"] = shards  # probing every shard must be exact
    many = db.create_collection(
        "many", dim=DIM, metric=metric, index="flat", shards=shards, sharding=sharding, **extra
    )
    assert isinstance(many, ShardedCollection)
    if sharding == "semantic" and n < shards:  # too few vectors to train one centroid per shard
        with pytest.raises(vf.InvalidParameter, match="semantic sharding"):
            many.upsert(ids, vectors, payloads)
        assert many.count() == 0
        return
    for col in (one, many):
        col.upsert(ids, vectors, payloads)
        gone = [ids[d] for d in deletes if d < n]
        if gone:
            col.delete(ids=gone)
    assert many.count() == one.count()
    assert many.count(flt) == one.count(flt)
    query = rng.integers(-2, 3, size=DIM).astype(np.float32)
    query[0] = query[0] or 1.0
    got = many.search(query, k=k, offset=offset, filter=flt, with_payload=True)
    want = one.search(query, k=k, offset=offset, filter=flt, with_payload=True)
    assert [(h.id, h.score, h.payload) for h in got] == [(h.id, h.score, h.payload) for h in want]
    assert [r.id for r in many.get(ids[:10])] == [r.id for r in one.get(ids[:10])]
    assert _scroll_all(many, flt) == _scroll_all(one, flt)


def _scroll_all(col: Any, flt: Any) -> list[Any]:
    out, cursor = [], None
    while True:
        page = col.scroll(limit=7, cursor=cursor, filter=flt)
        out.extend(r.id for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_hash_sharding_is_stable_and_spreads_points() -> None:
    assert stable_hash(42) == stable_hash(42) and stable_hash("42") != stable_hash(42)
    db = vf.connect()
    col = db.create_collection("h", dim=DIM, index="flat", shards=4)
    assert isinstance(col, ShardedCollection)
    col.upsert(list(range(400)), np.random.default_rng(0).standard_normal((400, DIM)).astype(np.float32))
    per_shard = col.info()["points_per_shard"]
    assert sum(per_shard) == 400 and min(per_shard) > 60


def test_key_sharding_keeps_a_tenant_on_one_shard_and_moves_a_point_whose_key_changes() -> None:
    db = vf.connect()
    col = db.create_collection("k", dim=DIM, index="flat", shards=3, sharding="key", shard_key="tenant")
    assert isinstance(col, ShardedCollection)
    rng = np.random.default_rng(1)
    col.upsert(
        list(range(90)),
        rng.standard_normal((90, DIM)).astype(np.float32),
        [{"tenant": f"t{i % 3}"} for i in range(90)],
    )
    holders = [
        sum(
            1
            for r in s.replicas[s.leader].collection.scroll(limit=1000).records
            if r.payload and r.payload["tenant"] == "t1"
        )
        for s in col.shards
    ]
    assert sorted(holders) == [0, 0, 30]
    col.upsert([1], rng.standard_normal((1, DIM)).astype(np.float32), [{"tenant": "t2"}])  # moves shard
    assert col.count() == 90 and [r.payload for r in col.get([1])] == [{"tenant": "t2"}]
    assert sum(s.replicas[s.leader].collection.count() for s in col.shards) == 90
    with pytest.raises(vf.InvalidPayload, match="tenant"):
        col.upsert([500], rng.standard_normal((1, DIM)).astype(np.float32), [{"other": 1}])
    pinned = {"must": [{"key": "tenant", "match": "t0"}]}
    assert col.router.probe(np.zeros((1, DIM), np.float32), pinned)[0] == [
        col.router.place([0], np.zeros((1, DIM)), [{"tenant": "t0"}])[0]
    ]


def test_sharded_collection_persists(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((300, DIM)).astype(np.float32)
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection(
            "s", dim=DIM, metric="l2", index="hnsw", shards=3, sharding="semantic", n_probe=3
        )
        col.upsert(list(range(300)), vecs)
        before = [h.id for h in col.search(vecs[0], k=5, params={"exact": True})]
    with vf.connect(tmp_path / "d") as db:
        col = db.get_collection("s")
        assert isinstance(col, ShardedCollection) and col.count() == 300
        assert [h.id for h in col.search(vecs[0], k=5, params={"exact": True})] == before
        col.upsert([1000], vecs[:1])  # the centroids came back from disk: no retraining
        assert col.count() == 301
