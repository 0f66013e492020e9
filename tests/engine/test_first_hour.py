"""The small things a newcomer trips on in the first hour (issue 17): each refusal names the problem
and the fix, and changes nothing."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf
from tests.serverproc import ServerProcess


def test_n_probe_goes_with_semantic_sharding_only_and_up_to_the_shard_count() -> None:
    with vf.connect() as db:
        with pytest.raises(vf.InvalidParameter, match="n_probe goes with sharding='semantic'"):
            db.create_collection("h", dim=4, shards=4, n_probe=2)
        with pytest.raises(vf.InvalidParameter, match="n_probe=5 is more than the 4 shards"):
            db.create_collection("s", dim=4, shards=4, sharding="semantic", n_probe=5)
        assert db.list_collections() == []
        col = db.create_collection("s", dim=4, shards=4, sharding="semantic", n_probe=2)
        with pytest.raises(vf.InvalidParameter, match="n_probe=3 is more than the 2 shards"):
            col.reshard(2, n_probe=3)
        hashed = db.create_collection("h", dim=4, shards=2)
        with pytest.raises(vf.InvalidParameter, match="n_probe goes with sharding='semantic'"):
            hashed.reshard(3, n_probe=2)


def test_resharding_to_the_current_count_says_so_and_copies_nothing() -> None:
    with vf.connect() as db:
        col = db.create_collection("h", dim=4, shards=2)
        col.upsert([1, 2], np.ones((2, 4)))
        layout = col.info()["layout"]
        with pytest.raises(vf.InvalidParameter, match="already has 2 shards; nothing to reshard"):
            col.reshard(2)
        assert col.info()["layout"] == layout
        col.reshard(3)
        assert col.info()["shards"] == 3


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(2, 300), index=st.sampled_from(["flat", "hnsw"]))
def test_cosine_self_scores_do_not_exceed_one(seed: int, dim: int, index: str) -> None:
    """float32 rounding makes a unit vector's dot product with itself 1.0000001 at times."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(50, dim)).astype(np.float32)
    with vf.connect() as db:
        col = db.create_collection(
            "c", vectors={"d": vf.Dense(dim=dim, index=index), "t": vf.Dense(dim=dim, index="flat")}
        )
        col.upsert(list(range(50)), {"d": vectors, "t": vectors})
        for using in ("d", "t"):
            for hits in [col.search(v, 3, using=using) for v in vectors[:10]]:
                assert all(-1.0 <= h.score <= 1.0 for h in hits)


def test_searching_by_text_points_to_query(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("t", dim=4)
    with pytest.raises(vf.InvalidParameter, match=r"to search by text use query\(text"):
        col.search("vitamin d")  # type: ignore[arg-type]


def test_a_body_that_is_not_json_names_the_position(api_server: ServerProcess) -> None:
    response = httpx.put(
        f"{api_server.url}/collections/nojson",
        content=b'{"dim": 4,,}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    message = response.json()["message"]
    assert "not valid JSON" in message and "at character 10" in message and "field" not in message


def test_cosine_scores_of_a_trained_ivfpq_segment_do_not_exceed_one() -> None:
    """The re-scoring of a compressed index computes its own products: capped the same way."""
    vectors = np.random.default_rng(3).normal(size=(2100, 32)).astype(np.float32)
    with vf.connect() as db:
        col = db.create_collection("pq", dim=32, index="ivfpq")
        col.upsert(list(range(2100)), vectors)
        col.flush()  # sealed: the IVF-PQ index trains, and searches re-score from full vectors
        for v in vectors[:200]:
            assert all(h.score <= 1.0 for h in col.search(v, 3))


def test_every_write_returns_one_kind_of_result_everywhere(any_db: vf.DatabaseAPI) -> None:
    """Before: upsert gave 1 on a plain collection and a clock timestamp on a sharded one, delete a
    bare count, and an HTTP delete "seq": 0."""
    col = any_db.create_collection("w", dim=4, index="flat")
    first = col.upsert([1, 2, 3], np.ones((3, 4)), [{"g": 1}] * 3)
    assert isinstance(first, vf.UpdateResult) and first.count == 3 and first.status == "completed"
    deleted = col.delete(ids=[1, 99])
    changed = col.set_payload({"g": 2}, ids=[2])
    assert (deleted.count, changed.count) == (1, 1)
    ids = [first.operation_id, deleted.operation_id, changed.operation_id]
    assert ids == sorted(ids) and len(set(ids)) == 3 and ids[0] > 0  # grows with every write
    again = col.delete(ids=[2], idempotency_key="once")
    assert col.delete(ids=[2], idempotency_key="once").count == again.count == 1
