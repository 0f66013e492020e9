"""Bad input gets a precise VectorForgeError and changes nothing.

Every case below checks three things: the error class, a message that names the problem, and that
the collection (count, every point with its vector and payload, a search, the log position) is the
same afterwards. On disk, a final test replays every bad write, reopens the folder and compares again.
"""

from __future__ import annotations

import math
import os
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.errors import (
    CollectionAlreadyExists,
    CollectionNotFound,
    DimensionMismatch,
    InvalidFilter,
    InvalidId,
    InvalidInputError,
    InvalidName,
    InvalidParameter,
    InvalidPayload,
    InvalidVector,
    UsageError,
    VectorForgeError,
)

DIM = 8
QUERY = np.linspace(-1.0, 1.0, DIM).astype(np.float32) + 0.05


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _fill(col: vf.Collection) -> None:
    """20 points over two sealed segments and a growing one, with one deletion (a tombstone)."""
    ids: list[int | str] = [*range(12), "a", "b", "c", "d", "e", "f", "g", "h"]
    payloads = [{"n": i % 5, "s": "xy"[i % 2], "tags": ["t", str(i % 3)]} for i in range(len(ids))]
    vectors = _vectors(len(ids))
    for i in range(0, len(ids), 8):
        col.upsert(ids[i : i + 8], vectors[i : i + 8], payloads[i : i + 8])
    col.delete(ids=[3])
    while col.optimize():  # let any background compaction finish: the state must stay put from here
        pass
    if "shards" not in col.info():  # a sharded collection's segments are spread over its shards
        assert [s["sealed"] for s in col.info()["segments"]] == [True, True, False]


@pytest.fixture(params=["memory", "disk", "sharded"])
def col(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[vf.Collection]:
    """The same points on a plain collection in memory, on disk, and on 2 shards x 2 replicas (issue
    9: a sharded delete with ids and a bad filter had already deleted the ids)."""
    db = vf.connect() if request.param == "memory" else vf.connect(data_dir)
    shards = {"shards": 2, "replicas": 2} if request.param == "sharded" else {}
    c = db.create_collection("docs", dim=DIM, metric="cosine", index="hnsw", max_segment_points=8, **shards)
    _fill(c)
    yield c
    db.close()


def state(col: vf.Collection) -> tuple[Any, ...]:
    page = col.scroll(limit=10_000, with_payload=True, with_vectors=True)
    assert page.next_cursor is None
    records = [(r.id, r.payload, r.vector) for r in page.records]
    hits = [(h.id, h.score, h.payload) for h in col.search(QUERY, k=7)]
    exact = [(h.id, h.score) for h in col.search(QUERY, k=7, params={"exact": True})]
    info = col.info()
    return col.count(), records, hits, exact, info["last_seq"], info["wal_bytes"], len(info["segments"])


@contextmanager
def unchanged(col: vf.Collection) -> Iterator[None]:
    before = state(col)
    assert before[0] == 19
    yield
    assert state(col) == before


def test_fixture_state_is_what_we_think(col: vf.Collection) -> None:
    count, records, hits, exact, *_ = state(col)
    assert count == 19
    assert [r[0] for r in records] == [0, 1, 2, *range(4, 12), "a", "b", "c", "d", "e", "f", "g", "h"]
    assert len(hits) == 7
    assert [h[0] for h in hits] == [e[0] for e in exact]  # 19 points: hnsw finds the true top 7


# ---------------------------------------------------------------------------------------------- upsert

GOOD3 = _vectors(3, seed=1)


def _with_row(row: Any) -> list[Any]:
    """Three rows whose middle one is `row`: a partial write would show up as ids 100 or 102."""
    return [GOOD3[0].tolist(), row, GOOD3[2].tolist()]


NAN_ROW = [0.1] * DIM
NAN_ROW[3] = math.nan
INF_ROW = [0.1] * DIM
INF_ROW[0] = math.inf
NEG_INF_ROW = [0.1] * DIM
NEG_INF_ROW[7] = -math.inf
OVERFLOW_ROW = [0.1] * DIM
OVERFLOW_ROW[1] = 1e39  # finite as float64, inf as float32

UPSERT_CASES: list[tuple[str, dict[str, Any], type[VectorForgeError], str]] = [
    ("dim-short", {"vectors": _vectors(3)[:, :7]}, DimensionMismatch, r"dimension is 7 .*expects 8"),
    ("dim-long", {"vectors": np.ones((3, 9))}, DimensionMismatch, r"dimension is 9 .*expects 8"),
    ("dim-one-vector", {"ids": [100], "vectors": [0.5] * 5}, DimensionMismatch, "dimension is 5"),
    ("nan", {"vectors": _with_row(NAN_ROW)}, InvalidVector, r"rows \[1\] hold NaN or infinite"),
    ("inf", {"vectors": _with_row(INF_ROW)}, InvalidVector, r"rows \[1\] hold NaN or infinite"),
    ("neg-inf", {"vectors": _with_row(NEG_INF_ROW)}, InvalidVector, "NaN or infinite"),
    ("float32-overflow", {"vectors": _with_row(OVERFLOW_ROW)}, InvalidVector, "NaN or infinite"),
    ("zero-cosine", {"vectors": _with_row([0.0] * DIM)}, InvalidVector, r"rows \[1\] are all zeros"),
    ("not-numbers", {"vectors": _with_row(["a"] * DIM)}, InvalidVector, "must be numbers"),
    ("ragged", {"vectors": _with_row([0.1] * 3)}, InvalidVector, "must be numbers"),
    ("3-d", {"vectors": np.ones((3, 1, DIM))}, InvalidVector, "1-D or 2-D"),
    ("empty-batch", {"ids": [], "vectors": np.empty((0, DIM)), "payloads": []}, InvalidId, "empty"),
    ("more-ids", {"ids": [100, 101, 102, 103]}, InvalidParameter, "4 ids but 3 vectors"),
    ("fewer-ids", {"ids": [100, 101]}, InvalidParameter, "2 ids but 3 vectors"),
    ("more-payloads", {"payloads": [{}, {}, {}, {}]}, InvalidParameter, "3 ids but 4 payloads"),
    ("fewer-payloads", {"payloads": [{}]}, InvalidParameter, "3 ids but 1 payloads"),
    ("dup-ids", {"ids": [100, 101, 100]}, InvalidId, r"duplicate ids in one batch: \[100\]"),
    ("dup-str-ids", {"ids": ["a", "z", "a"]}, InvalidId, "duplicate ids"),
    ("dup-numpy-int", {"ids": [np.int64(100), 101, 100]}, InvalidId, "duplicate ids"),
    ("bool-id", {"ids": [100, True, 102]}, InvalidId, "True is a bool"),
    ("float-id", {"ids": [100, 1.0, 102]}, InvalidId, "1.0 is a float"),
    ("negative-id", {"ids": [100, -1, 102]}, InvalidId, "-1 is out of range"),
    ("huge-id", {"ids": [100, 2**63, 102]}, InvalidId, "out of range"),
    ("empty-str-id", {"ids": [100, "", 102]}, InvalidId, "non-empty string"),
    ("long-str-id", {"ids": [100, "x" * 257, 102]}, InvalidId, "at most 256 characters"),
    ("none-id", {"ids": [100, None, 102]}, InvalidId, "None is a NoneType"),
    ("tuple-id", {"ids": [100, (1, 2), 102]}, InvalidId, "is a tuple"),
    ("ids-a-string", {"ids": "abc"}, InvalidId, "must be a list of ids"),
    ("ids-an-int", {"ids": 100, "vectors": GOOD3[:1]}, InvalidId, "must be a list of ids"),
    ("payload-set", {"payloads": [{}, {"s": {1, 2}}, {}]}, InvalidPayload, "payload 1 is not JSON"),
    ("payload-object", {"payloads": [{}, {"o": object()}, {}]}, InvalidPayload, "payload 1 is not JSON"),
    ("payload-nan", {"payloads": [{}, {"x": math.nan}, {}]}, InvalidPayload, "payload 1 is not JSON"),
    ("payload-inf", {"payloads": [{}, {"x": [1.0, math.inf]}, {}]}, InvalidPayload, "payload 1"),
    ("payload-int-key", {"payloads": [{}, {1: "a"}, {}]}, InvalidPayload, "payload 1"),
    ("payload-nested-key", {"payloads": [{}, {"m": {2: "x"}}, {}]}, InvalidPayload, "payload 1"),
    ("payload-bool-key", {"payloads": [{}, {True: 1}, {}]}, InvalidPayload, "payload 1"),
    ("payload-tuple-key", {"payloads": [{}, {(1, 2): 1}, {}]}, InvalidPayload, "payload 1"),
    ("payload-list", {"payloads": [{}, [1, 2], {}]}, InvalidPayload, "payload 1 is a list"),
    ("payload-str", {"payloads": [{}, "text", {}]}, InvalidPayload, "payload 1 is a str"),
    ("payloads-one-dict", {"payloads": {"a": 1}}, InvalidPayload, "not a single dict"),
    ("payloads-not-list", {"payloads": 5}, InvalidPayload, "must be a list of dicts"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"), [c[1:] for c in UPSERT_CASES], ids=[c[0] for c in UPSERT_CASES]
)
def test_bad_upsert_changes_nothing(
    col: vf.Collection, kwargs: dict[str, Any], error: type[VectorForgeError], match: str
) -> None:
    args = {"ids": [100, 101, 102], "vectors": GOOD3, "payloads": [{"k": 1}, {"k": 2}, {"k": 3}], **kwargs}
    with unchanged(col), pytest.raises(error, match=match) as info:
        col.upsert(**args)
    assert isinstance(info.value, InvalidInputError)
    assert isinstance(info.value, ValueError)
    assert col.get([100, 101, 102]) == []


def test_bad_upsert_over_existing_ids_keeps_old_points(col: vf.Collection) -> None:
    """A rejected batch that names existing ids must not replace or delete them."""
    with unchanged(col), pytest.raises(InvalidVector):
        col.upsert([0, 1, 2], _with_row(NAN_ROW), [{"new": 1}] * 3)


@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_zero_vector_is_fine_without_cosine(mem_db: vf.Database, metric: str) -> None:
    c = mem_db.create_collection("z", dim=4, metric=metric, index="flat")
    c.upsert([1], [[0.0, 0.0, 0.0, 0.0]])
    assert c.count() == 1
    assert c.search([1.0, 0.0, 0.0, 0.0], k=1)[0].id == 1


# ---------------------------------------------------------------------------------------------- filters

BAD_FILTERS: list[tuple[str, Any, str]] = [
    ("str", "lang", "filter must be a dict"),
    ("list", [{"key": "n", "match": 1}], "filter must be a dict"),
    ("unknown-clause", {"must": [], "bogus": []}, r"unknown keys \['bogus'\]"),
    ("unknown-clause-only", {"where": [{"key": "n", "match": 1}]}, "unknown keys"),
    ("clause-not-list", {"must": "n"}, "filter.must must be a list"),
    ("condition-not-dict", {"must": [3]}, r"filter.must\[0\] must be a dict"),
    ("no-key", {"must": [{"match": 1}]}, r"filter.must\[0\]: a condition needs a 'key'"),
    ("empty-key", {"must": [{"key": "", "match": 1}]}, "needs a 'key'"),
    ("int-key", {"must": [{"key": 3, "match": 1}]}, "needs a 'key'"),
    ("two-ops", {"must": [{"key": "n", "match": 1, "range": {"gt": 0}}]}, "exactly one of"),
    ("no-op", {"must": [{"key": "n"}]}, "exactly one of"),
    ("unknown-op", {"must": [{"key": "n", "exists": True}]}, "unknown condition 'exists'"),
    ("range-str", {"must": [{"key": "n", "range": {"gt": "3"}}]}, "range bounds must be numbers"),
    ("range-bool", {"must": [{"key": "n", "range": {"lt": True}}]}, "range bounds must be numbers"),
    ("range-nan", {"must": [{"key": "n", "range": {"lt": math.nan}}]}, "range bounds must be numbers"),
    ("range-none", {"must": [{"key": "n", "range": {"lte": None}}]}, "range bounds must be numbers"),
    ("range-empty", {"must": [{"key": "n", "range": {}}]}, "range takes a dict"),
    ("range-bad-op", {"must": [{"key": "n", "range": {"ge": 1}}]}, "range takes a dict"),
    ("range-list", {"must": [{"key": "n", "range": [0, 1]}]}, "range takes a dict"),
    ("match-nan", {"must": [{"key": "n", "match": float("nan")}]}, "match values are str, numbers or bool"),
    ("match-list", {"must": [{"key": "n", "match": [1, 2]}]}, "match values are str, numbers or bool"),
    ("match-none", {"must": [{"key": "n", "match": None}]}, "match values"),
    # {"match": {"value": 1}} is Qdrant's form (tests/engine/test_qdrant_filters.py); these are not
    ("match-dict-two", {"must": [{"key": "n", "match": {"value": 1, "any": [1]}}]}, "exactly one of"),
    ("match-dict-unknown", {"must": [{"key": "n", "match": {"valeu": 1}}]}, r"not the keys \['valeu'\]"),
    ("match-dict-empty", {"must": [{"key": "n", "match": {}}]}, r"filter.must\[0\].match takes exactly"),
    ("match-value-none", {"must": [{"key": "n", "match": {"value": None}}]}, "is_null finds null"),
    ("match-value-list", {"must": [{"key": "n", "match": {"value": [1]}}]}, "match values are str"),
    ("match-value-dict", {"must": [{"key": "n", "match": {"value": {"a": 1}}}]}, "match values are str"),
    ("match-any-not-list", {"must": [{"key": "n", "match": {"any": "ab"}}]}, "match.any takes a list"),
    ("match-any-null", {"must": [{"key": "n", "match": {"any": [1, None]}}]}, r"match.any: match values"),
    ("match-except-dict", {"must": [{"key": "n", "match": {"except": {"a": 1}}}]}, "except takes a list"),
    ("match-except-nan", {"must": [{"key": "n", "match": {"except": [math.nan]}}]}, "match values"),
    ("match-text-int", {"must": [{"key": "n", "match": {"text": 3}}]}, "text takes a non-empty str"),
    ("match-text-empty", {"must": [{"key": "n", "match": {"text": ""}}]}, "text takes a non-empty str"),
    ("range-all-null", {"must": [{"key": "n", "range": {"gt": None, "lt": None}}]}, "give one"),
    ("count-float", {"must": [{"key": "n", "values_count": {"gt": 1.5}}]}, "values_count bounds are counts"),
    ("count-negative", {"must": [{"key": "n", "values_count": {"lt": -1}}]}, "integers >= 0"),
    ("count-bool", {"must": [{"key": "n", "values_count": {"lt": True}}]}, "integers >= 0"),
    ("count-bad-op", {"must": [{"key": "n", "values_count": {"eq": 1}}]}, "values_count takes a dict"),
    ("count-empty", {"must": [{"key": "n", "values_count": {}}]}, "values_count takes a dict"),
    ("count-all-null", {"must": [{"key": "n", "values_count": {"gte": None}}]}, "give one"),
    ("count-int", {"must": [{"key": "n", "values_count": 2}]}, "values_count takes a dict"),
    ("is-empty-str", {"must": [{"is_empty": "n"}]}, r"filter.must\[0\]: is_empty takes \{'key'"),
    ("is-empty-extra", {"must": [{"is_empty": {"key": "n"}, "key": "n"}]}, "is_empty takes"),
    ("is-empty-field", {"must_not": [{"is_empty": {"field": "n"}}]}, r"filter.must_not\[0\]: is_empty"),
    ("is-empty-no-key", {"must": [{"is_empty": {"key": ""}}]}, r"must\[0\].is_empty: a condition needs"),
    ("is-null-list", {"must": [{"is_null": ["n"]}]}, "is_null takes"),
    ("is-null-int-key", {"must": [{"is_null": {"key": 3}}]}, "non-empty str"),
    ("key-bad-bracket", {"must": [{"key": "a[x].b", "match": 1}]}, r"key 'a\[x\]\.b': '\[x\]' is not"),
    ("key-open-bracket", {"must": [{"key": "a[", "match": 1}]}, r"'\[' is not '\[\]' or '\[index\]'"),
    ("key-bracket-first", {"must": [{"key": "[].a", "range": {"gt": 1}}]}, "must follow a field name"),
    ("key-dot-bracket", {"must": [{"key": "a.[0]", "match": 1}]}, "must follow a field name"),
    ("nested-no-filter", {"must": [{"nested": {"key": "diet"}}]}, "nested takes"),
    ("nested-extra", {"must": [{"nested": {"key": "d", "filter": {}, "x": 1}}]}, "nested takes"),
    (
        "nested-filter-list",
        {"must": [{"nested": {"key": "d", "filter": []}}]},
        "nested.filter must be a dict",
    ),
    (
        "nested-has-id",
        {"must": [{"nested": {"key": "d", "filter": {"must": [{"has_id": [1]}]}}}]},
        r"filter.must\[0\].nested.filter.must\[0\]: has_id does not work inside a nested filter",
    ),
    (
        "nested-deep-has-id",
        {"should": [{"nested": {"key": "d", "filter": {"must_not": [{"should": [{"has_id": [1]}]}]}}}]},
        r"nested.filter.must_not\[0\].should\[0\]: has_id",
    ),
    (
        "nested-inner-bad",
        {"must": [{"nested": {"key": "d[]", "filter": {"must": [{"key": "x", "match": {"any": 1}}]}}}]},
        r"filter.must\[0\].nested.filter.must\[0\].match.any takes a list",
    ),
    ("min-should-no-count", {"min_should": {"conditions": []}}, "min_should takes"),
    ("min-should-extra", {"min_should": {"conditions": [], "min_count": 1, "x": 1}}, "min_should takes"),
    ("min-should-zero", {"min_should": {"conditions": [], "min_count": 0}}, "at least 1, not 0"),
    (
        "min-should-float",
        {"min_should": {"conditions": [], "min_count": 1.0}},
        "min_count must be an integer",
    ),
    (
        "min-should-bool",
        {"min_should": {"conditions": [], "min_count": True}},
        "min_count must be an integer",
    ),
    ("min-should-int", {"min_should": 1}, "filter.min_should takes"),
    (
        "min-should-dict-conditions",
        {"min_should": {"conditions": {"key": "n", "match": 1}, "min_count": 1}},
        "filter.min_should.conditions must be a list",
    ),
    (
        "min-should-bad-condition",
        {"must": [{"min_should": {"conditions": [{"key": "n", "range": {"gt": "1"}}], "min_count": 1}}]},
        r"filter.must\[0\].min_should.conditions\[0\].range: range bounds must be numbers",
    ),
    ("match-any-empty", {"must": [{"key": "n", "match_any": []}]}, "non-empty list"),
    ("match-any-str", {"must": [{"key": "n", "match_any": "xy"}]}, "non-empty list"),
    ("match-any-inf", {"must": [{"key": "n", "match_any": [1, float("inf")]}]}, "match values"),
    ("has-id-int", {"must": [{"has_id": 5}]}, "has_id takes a list"),
    ("has-id-str", {"must": [{"has_id": "a"}]}, "has_id takes a list"),
    ("has-id-extra", {"must": [{"has_id": [1], "key": "n"}]}, "has_id takes a list of point ids and nothing"),
    ("has-id-float", {"must": [{"has_id": [1, 2.0]}]}, "has_id holds 2.0"),
    ("has-id-bool", {"must": [{"has_id": [True]}]}, "has_id holds True"),
    (
        "nested",
        {"should": [{"must_not": [{"key": "n", "match": {"x": 1}}]}]},
        r"filter.should\[0\].must_not\[0\]",
    ),
    ("nested-unknown", {"must": [{"must": [], "filter": []}]}, r"filter.must\[0\]: unknown keys"),
]


@pytest.mark.parametrize(("bad", "match"), [c[1:] for c in BAD_FILTERS], ids=[c[0] for c in BAD_FILTERS])
def test_malformed_filter(col: vf.Collection, bad: Any, match: str) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: col.search(QUERY, k=3, filter=bad),
        lambda: col.search_batch(np.stack([QUERY, QUERY]), k=3, filter=bad),
        lambda: col.count(filter=bad),
        lambda: col.scroll(limit=5, filter=bad),
        lambda: col.delete(filter=bad),
        lambda: col.delete(ids=[0, 1, "a"], filter=bad),  # the ids must not go either
    ]
    with unchanged(col):
        for call in calls:
            with pytest.raises(InvalidFilter, match=match):
                call()


# ---------------------------------------------------------------------------------------------- search

SEARCH_CASES: list[tuple[str, dict[str, Any], type[VectorForgeError], str]] = [
    ("dim", {"vector": np.ones(DIM + 1)}, DimensionMismatch, "dimension is 9 but the collection expects 8"),
    ("nan", {"vector": np.array([math.nan] + [1.0] * (DIM - 1))}, InvalidVector, "NaN or infinite"),
    ("inf", {"vector": np.array([math.inf] + [1.0] * (DIM - 1))}, InvalidVector, "NaN or infinite"),
    ("zero-cosine", {"vector": np.zeros(DIM)}, InvalidVector, "all zeros"),
    ("2-d", {"vector": np.ones((2, DIM))}, InvalidParameter, "one vector"),
    ("k-0", {"k": 0}, InvalidParameter, "k=0 is out of range"),
    ("k-negative", {"k": -3}, InvalidParameter, "k=-3 is out of range"),
    ("k-huge", {"k": 10_001}, InvalidParameter, "k=10001 is out of range"),
    ("k-absurd", {"k": 10**12}, InvalidParameter, "out of range"),
    ("k-float", {"k": 2.0}, InvalidParameter, "k must be an integer"),
    ("k-bool", {"k": True}, InvalidParameter, "k must be an integer"),
    ("k-str", {"k": "5"}, InvalidParameter, "k must be an integer"),
    ("offset-negative", {"offset": -1}, InvalidParameter, "offset=-1 is out of range"),
    ("offset-float", {"offset": 1.5}, InvalidParameter, "offset must be an integer"),
    ("k-plus-offset", {"k": 9_000, "offset": 2_000}, InvalidParameter, "k \\+ offset = 11000 exceeds"),
    (
        "params-unknown",
        {"params": {"efSearch": 10}},
        InvalidParameter,
        r"unknown search params \['efSearch'\]",
    ),
    ("params-ef-0", {"params": {"ef": 0}}, InvalidParameter, "ef must be an integer from 1"),
    ("params-ef-huge", {"params": {"ef": 10**6}}, InvalidParameter, "ef must be an integer"),
    ("params-ef-str", {"params": {"ef": "64"}}, InvalidParameter, "ef must be an integer"),
    ("params-nprobe-0", {"params": {"nprobe": 0}}, InvalidParameter, "nprobe must be an integer"),
    ("params-rerank-0", {"params": {"rerank": 0}}, InvalidParameter, "rerank must be an integer"),
    ("params-exact-str", {"params": {"exact": "yes"}}, InvalidParameter, "exact'] must be true or false"),
    ("params-not-dict", {"params": ["ef"]}, InvalidParameter, "params must be a dict"),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"), [c[1:] for c in SEARCH_CASES], ids=[c[0] for c in SEARCH_CASES]
)
def test_bad_search(
    col: vf.Collection, kwargs: dict[str, Any], error: type[VectorForgeError], match: str
) -> None:
    args = {"vector": QUERY, "k": 5, **kwargs}
    with unchanged(col), pytest.raises(error, match=match):
        col.search(args.pop("vector"), **args)


def test_bad_search_batch(col: vf.Collection) -> None:
    with unchanged(col):
        with pytest.raises(InvalidVector, match="empty"):
            col.search_batch(np.empty((0, DIM)), k=3)
        with pytest.raises(DimensionMismatch, match="expects 8"):
            col.search_batch(np.ones((2, 3)), k=3)
        with pytest.raises(InvalidVector, match=r"rows \[1\] hold NaN"):
            col.search_batch(np.array([QUERY, [math.nan] * DIM]), k=3)
        with pytest.raises(InvalidParameter, match="k=0"):
            col.search_batch(np.array([QUERY]), k=0)


def test_bad_get_scroll_delete(col: vf.Collection) -> None:
    with unchanged(col):
        with pytest.raises(InvalidId, match="empty"):
            col.get([])
        with pytest.raises(InvalidId, match="True is a bool"):
            col.get([0, True])
        with pytest.raises(InvalidId, match="must be a list of ids"):
            col.get(5)  # type: ignore[arg-type]
        with pytest.raises(InvalidParameter, match="limit must be an integer from 1 to 10000"):
            col.scroll(limit=0)
        with pytest.raises(InvalidParameter, match="limit must be an integer"):
            col.scroll(limit=10_001)
        with pytest.raises(InvalidParameter, match="is not one that scroll returned"):
            col.scroll(limit=5, cursor="not-json{")
        with pytest.raises(InvalidParameter, match="is not one that scroll returned"):
            col.scroll(limit=5, cursor="true")
        with pytest.raises(InvalidParameter, match="delete needs ids"):
            col.delete()
        with pytest.raises(InvalidParameter, match="would delete every point"):
            col.delete(filter={})
        with pytest.raises(InvalidId, match="-5 is out of range"):
            col.delete(ids=[0, 1, -5])
        with pytest.raises(InvalidId, match="empty"):
            col.delete(ids=[])
    # and the valid counterparts work on the same collection
    assert col.delete(ids=[0, 0, 999]).count == 1  # repeats are fine in a delete; missing ids count 0


# ---------------------------------------------------------------------------------------------- collections


def test_unknown_collection(any_db: vf.Database) -> None:
    any_db.create_collection("present", dim=4)
    for call in (any_db.get_collection, any_db.delete_collection):
        with pytest.raises(CollectionNotFound, match="collection 'nope' does not exist") as info:
            call("nope")
        assert isinstance(info.value, LookupError)
        assert info.value.name == "nope"
    assert any_db.has_collection("nope") is False
    assert any_db.list_collections() == ["present"]


def test_existing_collection_on_create(any_db: vf.Database) -> None:
    c = any_db.create_collection("docs", dim=DIM, metric="cosine", index="hnsw", max_segment_points=8)
    _fill(c)
    with unchanged(c):
        for kwargs in ({"dim": DIM}, {"dim": 4, "metric": "l2", "index": "flat"}):
            with pytest.raises(CollectionAlreadyExists, match="collection 'docs' already exists"):
                any_db.create_collection("docs", **kwargs)
    assert any_db.get_collection("docs") is c
    assert c.config.dim == DIM and c.config.metric.value == "cosine"


BAD_NAMES: list[Any] = [
    "../x",
    "../../x",
    "../../../escape",
    "a/b",
    "a\\b",
    "/tmp/abs",
    "",
    "x" * 65,
    ".hidden",
    ".",
    "..",
    "ok name",
    "tab\tname",
    "new\nline",
    "name\n",
    "naïve",
    "a.b",
    "nul\x00byte",
    None,
    5,
    b"bytes",
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
def test_bad_collection_names(tmp_path: Path, name: Any) -> None:
    outer = tmp_path / "outer"
    data = outer / "data"
    db = vf.connect(data)
    try:
        db.create_collection("keep", dim=4)
        snap = db.get_collection("keep").snapshot(outer / "keep.tar")
        before_outer = _tree(outer)
        before_parent = sorted(os.listdir(tmp_path))
        calls: list[Callable[[], Any]] = [
            lambda: db.create_collection(name, dim=4),
            lambda: db.get_collection(name),
            lambda: db.delete_collection(name),
            lambda: db.has_collection(name),
        ]
        if name is not None:  # restore(name=None) means "under its own name"
            calls.append(lambda: db.restore(snap, name=name))
        for call in calls:
            with pytest.raises(InvalidName, match=r"name .* is not allowed; use 1 to 64 characters"):
                call()
        assert _tree(outer) == before_outer
        assert sorted(os.listdir(tmp_path)) == before_parent
        assert db.list_collections() == ["keep"]
    finally:
        db.close()
    mem = vf.connect()
    try:
        with pytest.raises(InvalidName):
            mem.create_collection(name, dim=4)
        assert mem.list_collections() == []
    finally:
        mem.close()


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 64, "-", "_", "123"])
def test_good_collection_names(disk_db: vf.Database, name: str) -> None:
    disk_db.create_collection(name, dim=4)
    assert disk_db.has_collection(name)
    assert disk_db.list_collections() == [name]


BAD_SETTINGS: list[tuple[str, dict[str, Any], str]] = [
    (
        "hnsw-unknown",
        {"index": "hnsw", "index_params": {"efSearch": 10}},
        r"unknown parameters \['efSearch'\]",
    ),
    ("hnsw-M-small", {"index": "hnsw", "index_params": {"M": 2}}, "M must be an integer from 4 to 256"),
    ("hnsw-M-large", {"index": "hnsw", "index_params": {"M": 1000}}, "M must be an integer from 4 to 256"),
    ("hnsw-M-str", {"index": "hnsw", "index_params": {"M": "16"}}, "M must be an integer"),
    ("hnsw-M-bool", {"index": "hnsw", "index_params": {"M": True}}, "M must be an integer"),
    ("hnsw-ef-0", {"index": "hnsw", "index_params": {"ef": 0}}, "ef must be an integer from 1"),
    ("hnsw-efc", {"index": "hnsw", "index_params": {"ef_construction": 4}}, "ef_construction must be"),
    ("flat-any", {"index": "flat", "index_params": {"M": 16}}, "unknown parameters .* for index 'flat'"),
    ("ivfpq-m-divide", {"index": "ivfpq", "index_params": {"m": 3}}, "m=3 must divide dim=8"),
    (
        "ivfpq-nbits",
        {"index": "ivfpq", "index_params": {"nbits": 16}},
        "nbits must be an integer from 4 to 12",
    ),
    ("ivfpq-nlist-0", {"index": "ivfpq", "index_params": {"nlist": 0}}, "nlist must be an integer"),
    ("ivfpq-unknown", {"index": "ivfpq", "index_params": {"M": 16}}, "unknown parameters"),
    ("metric", {"metric": "cosinus"}, "metric 'cosinus' is unknown; use 'cosine', 'dot' or 'l2'"),
    ("metric-ip", {"metric": "ip"}, "metric 'ip' is unknown"),
    ("index", {"index": "annoy"}, "index 'annoy' is unknown; use 'flat', 'hnsw', 'ivfflat' or 'ivfpq'"),
    ("dim-0", {"dim": 0}, "dim must be an integer from 1 to 65536"),
    ("dim-negative", {"dim": -8}, "dim must be an integer"),
    ("dim-float", {"dim": 8.0}, "dim must be an integer"),
    ("dim-bool", {"dim": True}, "dim must be an integer"),
    ("dim-huge", {"dim": 65537}, "dim must be an integer"),
    ("dim-missing", {"dim": None}, "dim must be an integer"),
    ("max-segment-0", {"max_segment_points": 0}, "invalid collection settings"),
]


@pytest.mark.parametrize(("kwargs", "match"), [c[1:] for c in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS])
def test_bad_collection_settings(
    disk_db: vf.Database, data_dir: Path, kwargs: dict[str, Any], match: str
) -> None:
    args = {"dim": DIM, **kwargs}
    with pytest.raises(InvalidParameter, match=match):
        disk_db.create_collection("c", **args)
    assert disk_db.list_collections() == []
    assert not disk_db.has_collection("c")
    assert os.listdir(data_dir / "collections") == []
    with pytest.raises(CollectionNotFound):
        disk_db.get_collection("c")


# ---------------------------------------------------------------------------------------------- closed


def _collection_calls(c: vf.Collection, tmp_path: Path) -> dict[str, Callable[[], Any]]:
    return {
        "upsert": lambda: c.upsert([500], np.ones((1, DIM))),
        "get": lambda: c.get([0]),
        "delete": lambda: c.delete(ids=[0]),
        "delete-filter": lambda: c.delete(filter={"must": [{"key": "n", "match": 1}]}),
        "count": lambda: c.count(),
        "scroll": lambda: c.scroll(limit=5),
        "search": lambda: c.search(QUERY, k=3),
        "search_batch": lambda: c.search_batch(np.stack([QUERY]), k=3),
        "flush": lambda: c.flush(),
        "optimize": lambda: c.optimize(),
        "snapshot": lambda: c.snapshot(tmp_path / "after-close.tar"),
    }


def test_closed_database_and_collection(tmp_path: Path) -> None:
    db = vf.connect(tmp_path / "data")
    c = db.create_collection("docs", dim=DIM, metric="cosine", index="hnsw", max_segment_points=8)
    _fill(c)
    snap = c.snapshot(tmp_path / "s.tar")
    db.close()
    db.close()  # closing twice is harmless
    for name, call in _collection_calls(c, tmp_path).items():
        with pytest.raises(UsageError, match="collection 'docs' is closed") as info:
            call()
        assert isinstance(info.value, RuntimeError), name
    db_calls: list[Callable[[], Any]] = [
        lambda: db.create_collection("other", dim=4),
        lambda: db.get_collection("docs"),
        lambda: db.list_collections(),
        lambda: db.has_collection("docs"),
        lambda: db.delete_collection("docs"),
        lambda: db.restore(snap, name="copy"),
    ]
    for call in db_calls:
        with pytest.raises(UsageError, match="the database is closed"):
            call()
    assert not (tmp_path / "after-close.tar").exists()
    # the data survived the misuse
    with vf.connect(tmp_path / "data") as again:
        assert again.list_collections() == ["docs"]
        assert again.get_collection("docs").count() == 19


def test_closed_in_memory_database(mem_db: vf.Database, tmp_path: Path) -> None:
    c = mem_db.create_collection("docs", dim=DIM, metric="cosine", index="hnsw", max_segment_points=8)
    _fill(c)
    mem_db.close()
    for name, call in _collection_calls(c, tmp_path).items():
        if name == "snapshot":
            continue  # in memory, snapshot refuses with UsageError for its own reason
        with pytest.raises(UsageError, match="is closed"):
            call()
    with pytest.raises(UsageError, match="the database is closed"):
        mem_db.get_collection("docs")


def test_handle_of_deleted_collection_is_closed(any_db: vf.Database) -> None:
    c = any_db.create_collection("gone", dim=4)
    c.upsert([1], [[1.0, 0.0, 0.0, 0.0]])
    any_db.delete_collection("gone")
    with pytest.raises(UsageError, match="collection 'gone' is closed"):
        c.search([1.0, 0.0, 0.0, 0.0])
    with pytest.raises(UsageError):
        c.upsert([2], [[1.0, 0.0, 0.0, 0.0]])
    # a new collection of the same name starts empty
    assert any_db.create_collection("gone", dim=4).count() == 0


def test_snapshot_and_restore_need_a_data_folder(mem_db: vf.Database, tmp_path: Path) -> None:
    c = mem_db.create_collection("m", dim=4)
    with pytest.raises(UsageError, match="persistent database"):
        c.snapshot(tmp_path / "m.tar")
    with pytest.raises(UsageError, match="persistent database"):
        mem_db.restore(tmp_path / "m.tar")
    assert os.listdir(tmp_path) == []


def test_restore_of_missing_or_bogus_file(disk_db: vf.Database, tmp_path: Path, data_dir: Path) -> None:
    with pytest.raises(InvalidParameter, match="does not exist or is not a file"):
        disk_db.restore(tmp_path / "missing.tar")
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"this is not a tar archive")
    with pytest.raises(InvalidParameter, match="is not a vectorforge snapshot"):
        disk_db.restore(bogus)
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    with pytest.raises(InvalidParameter, match="is not a vectorforge snapshot"):
        disk_db.restore(empty)
    assert os.listdir(data_dir / "collections") == []
    assert disk_db.list_collections() == []


def test_restore_with_bad_name_leaves_nothing(disk_db: vf.Database, tmp_path: Path, data_dir: Path) -> None:
    c = disk_db.create_collection("src", dim=4)
    c.upsert([1], [[1.0, 0.0, 0.0, 0.0]])
    snap = c.snapshot(tmp_path / "src.tar")
    before = _tree(data_dir)
    with pytest.raises(InvalidName):
        disk_db.restore(snap, name="../../stolen")
    with pytest.raises(CollectionAlreadyExists, match="'src' already exists"):
        disk_db.restore(snap)
    assert _tree(data_dir) == before
    assert disk_db.list_collections() == ["src"]


# ---------------------------------------------------------------------------------------------- hierarchy


def test_error_hierarchy() -> None:
    errors = [getattr(vf, n) for n in vf.__all__ if isinstance(getattr(vf, n), type)]
    errors = [e for e in errors if issubclass(e, Exception)]
    assert len(errors) >= 19
    for cls in errors:
        assert issubclass(cls, VectorForgeError), cls
    for cls in (DimensionMismatch, InvalidVector, InvalidId, InvalidPayload, InvalidFilter, InvalidName):
        assert issubclass(cls, InvalidInputError)
    assert issubclass(InvalidParameter, InvalidInputError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(CollectionNotFound, LookupError)
    assert issubclass(UsageError, RuntimeError)
    assert not issubclass(CollectionAlreadyExists, ValueError)
    err = DimensionMismatch(expected=8, got=7)
    assert err.to_dict() == {
        "error": "DimensionMismatch",
        "message": str(err),
        "details": {"expected": 8, "got": 7},
    }
    assert vf.errors.error_class("InvalidFilter") is InvalidFilter
    assert vf.errors.error_class("NoSuchError") is VectorForgeError


# ---------------------------------------------------------------------------------------------- on disk


def test_every_bad_write_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    """All rejected writes in a row, then close and reopen: the log holds none of them."""
    data = tmp_path / "data"
    db = vf.connect(data)
    c = db.create_collection("docs", dim=DIM, metric="cosine", index="hnsw", max_segment_points=8)
    _fill(c)
    before = state(c)
    for _, kwargs, error, _ in UPSERT_CASES:
        args = {"ids": [100, 101, 102], "vectors": GOOD3, "payloads": [{}, {}, {}], **kwargs}
        with pytest.raises(error):
            c.upsert(**args)
    for _, bad, _ in BAD_FILTERS:
        with pytest.raises(InvalidFilter):
            c.delete(ids=[0], filter=bad)
    assert state(c) == before
    db.close()
    with vf.connect(data) as again:
        c2 = again.get_collection("docs")
        count, records, hits, exact, *_ = state(c2)
        assert (count, records, hits, exact) == before[:4]


@pytest.mark.parametrize("bad", [[["0.5", "1", "2", "3"]], [[True, False, True, False]], [[None, 1, 2, 3]]])
def test_non_numeric_vector_values_are_refused(bad: list[list[object]]) -> None:
    col = vf.connect().create_collection("c", dim=4, metric="dot", index="flat")
    with pytest.raises(vf.InvalidVector, match="numbers"):
        col.upsert([1], bad)
    assert col.count() == 0


def test_info_on_a_closed_collection_is_a_usage_error() -> None:
    db = vf.connect()
    col = db.create_collection("c", dim=4)
    db.close()
    with pytest.raises(vf.UsageError, match="closed"):
        col.info()


@pytest.mark.parametrize("ragged", [[[], [0.0]], [[1.0], [2.0, 3.0]]])
def test_a_ragged_search_vector_is_a_clear_error(col: vf.Collection, ragged: Any) -> None:
    # found by the HTTP fuzz test: numpy's ValueError on ragged lists was a 500
    with pytest.raises(vf.InvalidVector, match="one vector, a flat list of numbers"):
        col.search(ragged, k=3)
