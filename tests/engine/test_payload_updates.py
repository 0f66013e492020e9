"""Payload updates without re-sending vectors (Qdrant's set_payload, overwrite_payload and
delete_payload, by ids or filter), and get_or_create_collection (Chroma's). Checked against a model
of the payloads, on every kind of database (memory, disk, server, in process, sharded and
replicated); the vectors and what searches score stay as they were."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf

DIM = 4


def _fill(col: vf.CollectionAPI, n: int = 30) -> tuple[np.ndarray, dict[int, dict[str, Any]]]:
    vectors = np.random.default_rng(1).normal(size=(n, DIM)).astype(np.float32)
    payloads = {i: {"g": i % 3, "name": f"p{i}", "tags": ["a"] if i % 2 else []} for i in range(n)}
    col.upsert(list(range(n)), vectors, [payloads[i] for i in range(n)])
    return vectors, payloads


def _payloads(col: vf.CollectionAPI, n: int) -> dict[int, Any]:
    return {r.id: r.payload for r in col.get(list(range(n)))}


def test_set_overwrite_and_delete_payload_by_ids_and_filter(any_db: vf.DatabaseAPI) -> None:
    col = any_db.create_collection("p", dim=DIM, index="flat")
    vectors, model = _fill(col)
    before = [(h.id, h.score) for h in col.search(vectors[0], 10, with_payload=False)]
    assert col.set_payload({"g": 9, "new": True}, ids=[1, 2, 999]).count == 2  # 999 does not exist
    for i in (1, 2):
        model[i] = {**model[i], "g": 9, "new": True}
    assert col.set_payload({"seen": 1}, filter={"must": [{"key": "g", "match": 0}]}).count == 10
    for i in model:
        if model[i]["g"] == 0:
            model[i] = {**model[i], "seen": 1}
    assert col.overwrite_payload({"only": "this"}, ids=[3]).count == 1
    model[3] = {"only": "this"}
    assert (
        col.delete_payload(["name", "tags"], ids=[4, 5], filter={"must": [{"key": "g", "match": 9}]}).count
        == 4
    )
    for i in (4, 5, 1, 2):
        model[i] = {k: v for k, v in model[i].items() if k not in ("name", "tags")}
    assert _payloads(col, 30) == model
    # the vectors stay: the same neighbours with the same scores, and the stored vectors unchanged
    assert [(h.id, h.score) for h in col.search(vectors[0], 10, with_payload=False)] == before
    stored = {r.id: r.vector for r in col.get(list(range(30)), with_payload=False, with_vectors=True)}
    assert np.allclose(
        [stored[i] for i in range(30)], vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    )
    assert col.set_payload({"all": 1}, filter={}).count == 30  # {} is every point
    assert col.count({"must": [{"key": "all", "match": 1}]}) == 30


BAD: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("set_payload", {"payload": {"a": 1}}, vf.InvalidParameter, "needs ids=.* or filter="),
    ("set_payload", {"payload": [1, 2], "ids": [1]}, vf.InvalidPayload, "JSON object"),
    ("set_payload", {"payload": {"a": float("nan")}, "ids": [1]}, vf.InvalidInputError, "JSON"),
    (
        "set_payload",
        {"payload": {"a": 1}, "filter": {"must": [{"key": "g", "bogus": 1}]}},
        vf.InvalidFilter,
        "bogus",
    ),
    ("overwrite_payload", {"payload": {"a": 1}, "ids": [True]}, vf.InvalidId, "bool|True"),
    ("delete_payload", {"keys": [], "ids": [1]}, vf.InvalidParameter, "non-empty list"),
    ("delete_payload", {"keys": "name", "ids": [1]}, vf.InvalidParameter, "non-empty list"),
]


@pytest.mark.parametrize(("method", "args", "error", "message"), BAD)
def test_bad_payload_updates_are_refused_and_change_nothing(
    db: vf.DatabaseAPI, method: str, args: dict[str, Any], error: type[Exception], message: str
) -> None:
    col = db.create_collection("b", dim=DIM, index="flat")
    _, model = _fill(col, 5)
    with pytest.raises(error, match=message):
        getattr(col, method)(**args)
    assert _payloads(col, 5) == model


def test_a_payload_update_with_a_key_applies_once(any_db: vf.DatabaseAPI) -> None:
    col = any_db.create_collection("k", dim=DIM, index="flat")
    _fill(col, 6)
    assert col.set_payload({"n": 1}, ids=[1, 2], idempotency_key="pay-1").count == 2
    col.set_payload({"n": 2}, ids=[1])  # a newer write
    assert (
        col.set_payload({"n": 1}, ids=[1, 2], idempotency_key="pay-1").count == 2
    )  # the retry applies nothing
    assert [r.payload["n"] for r in col.get([1, 2])] == [2, 1]


def test_changing_the_shard_key_moves_the_point(tmp_path: Path) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("t", dim=DIM, index="flat", shards=3, sharding="key", shard_key="tenant")
        col.upsert(list(range(12)), np.ones((12, DIM)), [{"tenant": "a"}] * 12)
        assert col.set_payload({"tenant": "b"}, ids=[0, 1, 2]).count == 3
        assert col.count({"must": [{"key": "tenant", "match": "b"}]}) == 3
        assert col.count() == 12
        holders = [s.replicas[0].collection.count() for s in col.shards]
        assert sum(holders) == 12  # on one shard each, none left behind


@settings(max_examples=20, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["set", "overwrite", "delete", "upsert", "remove"]),
            st.sets(st.integers(0, 14), max_size=6),
            st.one_of(st.none(), st.integers(0, 2)),
        ),
        max_size=12,
    ),
    segment=st.integers(3, 20),
)
def test_payload_updates_match_a_model_through_seals_and_compaction(
    ops: list[tuple[str, set[int], int | None]], segment: int
) -> None:
    with vf.connect() as db:
        col = db.create_collection("m", dim=DIM, index="flat", max_segment_points=segment)
        vectors = np.random.default_rng(2).normal(size=(15, DIM)).astype(np.float32)
        model: dict[int, dict[str, Any]] = {i: {"g": i % 3, "v": 0} for i in range(15)}
        col.upsert(list(range(15)), vectors, [model[i] for i in range(15)])
        for step, (op, ids, group) in enumerate(ops):
            flt = None if group is None else {"must": [{"key": "g", "match": group}]}
            chosen = {i for i in model if i in ids or (group is not None and model[i].get("g") == group)}
            if op == "upsert":
                col.upsert(
                    sorted(ids) or [0], vectors[sorted(ids) or [0]], [{"g": 1, "v": step}] * len(ids or [0])
                )
                for i in ids or {0}:
                    model[i] = {"g": 1, "v": step}
                continue
            if op == "remove":
                if ids:
                    col.delete(sorted(ids))
                    for i in ids:
                        model.pop(i, None)
                continue
            if not ids and flt is None:
                continue
            if op == "set":
                n = col.set_payload({"v": step}, ids=sorted(ids) if ids else None, filter=flt).count
                for i in chosen:
                    model[i] = {**model[i], "v": step}
            elif op == "overwrite":
                n = col.overwrite_payload(
                    {"g": 2, "v": step}, ids=sorted(ids) if ids else None, filter=flt
                ).count
                for i in chosen:
                    model[i] = {"g": 2, "v": step}
            else:
                n = col.delete_payload(["g"], ids=sorted(ids) if ids else None, filter=flt).count
                for i in chosen:
                    model[i] = {k: v for k, v in model[i].items() if k != "g"}
            assert n == len(chosen)
            col.optimize()
        assert {r.id: r.payload for r in col.scroll(100).records} == model


def test_get_or_create_returns_the_same_collection_and_refuses_other_settings(any_db: vf.DatabaseAPI) -> None:
    first = any_db.get_or_create_collection("g", dim=DIM, metric="l2")
    first.upsert([1], np.ones((1, DIM)))
    again = any_db.get_or_create_collection("g", dim=DIM, metric="l2")
    assert again.count() == 1 and any_db.list_collections() == ["g"]
    assert any_db.get_or_create_collection("g").count() == 1  # no settings given: nothing to differ
    with pytest.raises(vf.ConflictError, match="exists with metric='l2', not 'cosine'"):
        any_db.get_or_create_collection("g", dim=DIM, metric="cosine")
    with pytest.raises(vf.ConflictError, match="exists with dim=4, not 8"):
        any_db.get_or_create_collection("g", dim=8, metric="l2")
    with pytest.raises(vf.InvalidParameter, match="metric"):  # a bad setting: refused either way
        any_db.get_or_create_collection("g", dim=DIM, metric="manhattan")
    assert any_db.get_collection("g").count() == 1


def test_a_sharded_payload_update_by_filter_rechecks_it_under_the_locks(tmp_path: Path) -> None:
    """Before: a point that stopped matching between the scan and the locks was changed anyway
    (a "claim it if unclaimed" update overwrote another writer's claim)."""
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("c", dim=DIM, index="flat", shards=2)
        col.upsert([1, 2], np.ones((2, DIM)), [{"owner": "none"}, {"owner": "none"}])
        settle = col._settle_moves  # type: ignore[attr-defined]
        injected: list[int] = []

        def another_writer_first() -> None:  # runs after the scan, before the locks are taken
            if not injected:
                injected.append(1)
                col.set_payload({"owner": "B"}, ids=[1])
            settle()

        col._settle_moves = another_writer_first  # type: ignore[attr-defined]
        unclaimed = {"must": [{"key": "owner", "match": "none"}]}
        assert col.set_payload({"owner": "A"}, filter=unclaimed).count == 1  # point 2 only
        assert [r.payload for r in col.get([1, 2])] == [{"owner": "B"}, {"owner": "A"}]


def test_a_sharded_keyed_payload_update_retried_answers_as_the_first_time(tmp_path: Path) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("c", dim=DIM, index="flat", shards=3)
        col.upsert(list(range(6)), np.ones((6, DIM)), [{"s": "todo"}] * 3 + [{"s": "done"}] * 3)
        todo = {"must": [{"key": "s", "match": "todo"}]}
        assert col.set_payload({"s": "done"}, filter=todo, idempotency_key="k1").count == 3
        assert col.set_payload({"s": "done"}, filter=todo, idempotency_key="k1").count == 3  # not 0
        assert col.set_payload({"x": 1}, ids=[4, 5], idempotency_key="k2").count == 2
        col.delete([5])
        assert col.set_payload({"x": 1}, ids=[4, 5], idempotency_key="k2").count == 2
        col.reshard(2)  # the results travel with the keys
        assert col.set_payload({"s": "done"}, filter=todo, idempotency_key="k1").count == 3


def test_get_or_create_of_a_collection_without_a_dense_vector(any_db: vf.DatabaseAPI) -> None:
    made = any_db.get_or_create_collection("s", vectors={"bm25": vf.Sparse()})
    made.upsert([1], {"bm25": [vf.SparseVector([3], [1.0])]})
    assert any_db.get_or_create_collection("s").count() == 1
    assert any_db.get_or_create_collection("s", vectors={"bm25": vf.Sparse()}).count() == 1
    with pytest.raises(vf.ConflictError, match="exists with"):
        any_db.get_or_create_collection("s", vectors={"bm25": vf.Sparse(k1=2.0)})
