"""Declared payload indexes (`create_payload_index(field, schema)`, Qdrant's field index): listed in
`info()`, built on every segment at once and on each new one, kept through reopen, compaction,
sharding and resharding; filters answer the same with or without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.engine.collection import Collection

DIM = 3


def _fill(col: vf.CollectionAPI, n: int = 40) -> None:
    col.upsert(
        list(range(n)), np.random.default_rng(0).normal(size=(n, DIM)), [{"g": i % 4} for i in range(n)]
    )


def _built(col: Collection, key: str) -> list[bool]:
    """Whether each segment holds an index of `key` (built before any filter asked for it)."""
    return [key in seg.payload_index._fields for seg in col._segments]


def test_a_declared_index_is_listed_and_filters_answer_the_same(any_db: vf.DatabaseAPI) -> None:
    col = any_db.create_collection("p", dim=DIM, index="flat", max_segment_points=16)
    _fill(col)
    flt = {"must": [{"key": "g", "match": 1}]}
    before = [h.id for h in col.search(np.ones(DIM), 20, filter=flt)]
    col.create_payload_index("g", "integer")
    assert col.info()["payload_indexes"] == {"g": "integer"}
    assert [h.id for h in col.search(np.ones(DIM), 20, filter=flt)] == before
    assert col.count(flt) == 10
    col.delete_payload_index("g")
    assert col.info()["payload_indexes"] == {}
    with pytest.raises(vf.InvalidParameter, match="no payload index of 'g'"):
        col.delete_payload_index("g")
    with pytest.raises(vf.InvalidParameter, match="schema 'geo-ish' is unknown; use one of keyword"):
        col.create_payload_index("g", "geo-ish")
    with pytest.raises(vf.InvalidParameter, match="needs a payload key"):
        col.create_payload_index("", "keyword")
    assert col.info()["payload_indexes"] == {}


def test_every_segment_builds_it_up_front_and_keeps_it_after_reopen(tmp_path: Path) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("p", dim=DIM, index="flat", max_segment_points=16)
        _fill(col)
        col.create_payload_index("g", "keyword")
        assert isinstance(col, Collection) and all(_built(col, "g"))  # no filter has run yet
        _fill(col, 60)  # new segments start with it
        while col.optimize():
            pass
        assert all(_built(col, "g"))
    with vf.connect(tmp_path / "d") as db:
        col = db.get_collection("p")
        assert col.info()["payload_indexes"] == {"g": "keyword"} and all(_built(col, "g"))
        assert not any(_built(col, "other"))  # other keys: built on the first filter, as before


def test_a_sharded_collection_declares_it_on_every_replica_and_keeps_it_through_a_reshard(
    tmp_path: Path,
) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("s", dim=DIM, index="flat", shards=2, replicas=2)
        assert isinstance(col, ShardedCollection)
        _fill(col)
        col.create_payload_index("g", "integer")
        for shard in col.shards:
            for replica in shard.replicas:
                assert replica.collection.info()["payload_indexes"] == {"g": "integer"}
        col.reshard(3)
        assert col.info()["payload_indexes"] == {"g": "integer"}
        for shard in col.shards:
            assert shard.replicas[0].collection.info()["payload_indexes"] == {"g": "integer"}
    with vf.connect(tmp_path / "d") as db:
        assert db.get_collection("s").info()["payload_indexes"] == {"g": "integer"}
