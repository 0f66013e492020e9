"""The filter grammar and its semantics, on hand-worked examples, and filtered ANN search.

Each example's expected id set was worked out by hand from PAYLOADS below; `matching` checks that
scroll, count, an exact search and an ANN search with the same filter all agree on it.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.engine import planner
from vectorforge.engine.filters import HasId, Match, Range, Where, parse_filter
from vectorforge.index.hnsw import HNSWIndex

PAYLOADS: dict[int | str, dict[str, Any] | None] = {
    1: {"lang": "en", "n": 1, "tags": ["a", "b"], "meta": {"lang": "de", "score": 0.5}},
    2: {"lang": "de", "n": 2, "tags": ["b"], "flag": True},
    3: {"lang": "en", "n": 3.5, "tags": [], "flag": False},
    4: {"lang": ["en", "fr"], "n": True},
    5: {"n": 1, "flag": 1},
    6: None,
    7: {"lang": "EN", "n": -2, "meta": {"lang": "en", "inner": {"x": 1}}},
    8: {"n": "1"},
    9: {"meta": "flat"},
    10: {"tags": [1]},
    11: {"n": [1, 5]},
    12: {},
    13: {"tags": [True]},
    14: {"tags": ["1"]},
    "s1": {"lang": "en", "n": 10},
    "1": {"lang": "xx", "n": 0},
}
ALL = set(PAYLOADS)
DIM = 4


@pytest.fixture(params=["one-segment", "many-segments"])
def col(request: pytest.FixtureRequest, mem_db: vf.Database) -> Iterator[vf.Collection]:
    """The points of PAYLOADS; with many segments, most of them were first written with other payloads."""
    many = request.param == "many-segments"
    c = mem_db.create_collection(
        "f", dim=DIM, metric="dot", index="flat", max_segment_points=3 if many else 1000
    )
    ids = list(PAYLOADS)
    rng = np.random.default_rng(7)
    if many:
        # Old versions that must be invisible: every id once with a payload that matches everything below.
        decoy = {
            "lang": ["en", "de", "fr"],
            "n": [1, 2, 3.5, 10, -2],
            "flag": [True, 1, False],
            "tags": ["b"],
        }
        c.upsert(ids, rng.normal(size=(len(ids), DIM)), [decoy] * len(ids))
        c.upsert([100, 101], rng.normal(size=(2, DIM)), [decoy, decoy])
        c.delete(ids=[100, 101])
    for i in range(0, len(ids), 5):  # several batches so that rows spread over segments
        chunk = ids[i : i + 5]
        c.upsert(chunk, rng.normal(size=(len(chunk), DIM)), [PAYLOADS[p] for p in chunk])
    if many:
        c.optimize()
    assert c.count() == len(PAYLOADS)
    yield c


def matching(col: vf.Collection, flt: dict[str, Any]) -> set[int | str]:
    """The ids that `flt` selects, after checking that every read path agrees."""
    records = col.scroll(limit=1000, filter=flt).records
    found = [r.id for r in records]
    assert len(found) == len(set(found))
    assert col.count(filter=flt) == len(found)
    q = np.ones(DIM, dtype=np.float32)
    exact = {h.id for h in col.search(q, k=100, filter=flt, params={"exact": True})}
    ann = {h.id for h in col.search(q, k=100, filter=flt)}
    assert exact == ann == set(found)
    return set(found)


def key(k: str, **cond: Any) -> dict[str, Any]:
    return {"key": k, **cond}


CASES: list[tuple[str, dict[str, Any], set[int | str]]] = [
    # match on a scalar, on a list of values (any element), case-sensitive, str is not int
    ("match-str", {"must": [key("lang", match="en")]}, {1, 3, 4, "s1"}),
    ("match-list-any-element", {"must": [key("lang", match="fr")]}, {4}),
    ("match-tags", {"must": [key("tags", match="b")]}, {1, 2}),
    ("match-case", {"must": [key("lang", match="EN")]}, {7}),
    ("match-int", {"must": [key("n", match=1)]}, {1, 5, 11}),
    ("match-str-digit", {"must": [key("n", match="1")]}, {8}),
    ("match-int-in-list", {"must": [key("tags", match=1)]}, {10}),
    ("match-str-in-list", {"must": [key("tags", match="1")]}, {14}),
    # True is not 1, False is not 0, in scalars and in lists
    ("true-not-1", {"must": [key("flag", match=True)]}, {2}),
    ("1-not-true", {"must": [key("flag", match=1)]}, {5}),
    ("false-not-0", {"must": [key("flag", match=False)]}, {3}),
    ("0-not-false", {"must": [key("flag", match=0)]}, set()),
    ("true-not-1-in-list", {"must": [key("tags", match=True)]}, {13}),
    ("n-true", {"must": [key("n", match=True)]}, {4}),
    ("match-any", {"must": [key("lang", match_any=["de", "fr"])]}, {2, 4}),
    ("match-any-mixed", {"must": [key("n", match_any=[2, "1", True])]}, {2, 4, 8}),
    ("match-any-none-present", {"must": [key("lang", match_any=["jp", "it"])]}, set()),
    # dotted keys reach nested objects, and only objects
    ("dotted", {"must": [key("meta.lang", match="en")]}, {7}),
    ("dotted-other", {"must": [key("meta.lang", match="de")]}, {1}),
    ("dotted-deep", {"must": [key("meta.inner.x", match=1)]}, {7}),
    ("dotted-through-str", {"must": [key("meta.flat", match="flat")]}, set()),
    ("dotted-range", {"must": [key("meta.score", range={"gt": 0.4, "lt": 0.6})]}, {1}),
    ("dotted-missing", {"must": [key("meta.nope", match=1)]}, set()),
    # ranges: numbers only (not bools, not numeric strings); a list matches if one element is in range
    ("gt", {"must": [key("n", range={"gt": 1})]}, {2, 3, 11, "s1"}),
    ("gte", {"must": [key("n", range={"gte": 1})]}, {1, 2, 3, 5, 11, "s1"}),
    ("lt", {"must": [key("n", range={"lt": 1})]}, {7, "1"}),
    ("lte", {"must": [key("n", range={"lte": 1})]}, {1, 5, 7, 11, "1"}),
    ("gt-lt", {"must": [key("n", range={"gt": 1, "lt": 10})]}, {2, 3, 11}),
    ("gte-lte-point", {"must": [key("n", range={"gte": 3.5, "lte": 3.5})]}, {3}),
    ("gt-float", {"must": [key("n", range={"gt": 3.5})]}, {11, "s1"}),
    ("lt-float", {"must": [key("n", range={"lt": 3.6, "gt": 3.4})]}, {3}),
    # one element of [1, 5] must satisfy both bounds: 1 fails gt 1, 5 fails lt 5
    ("list-one-element-in-range", {"must": [key("n", range={"gt": 1, "lt": 5})]}, {2, 3}),
    ("empty-interval", {"must": [key("n", range={"gt": 5, "lt": 1})]}, set()),
    ("negative", {"must": [key("n", range={"lt": -1})]}, {7}),
    ("infinite-bound", {"must": [key("n", range={"lt": float("inf")})]}, {1, 2, 3, 5, 7, 11, "s1", "1"}),
    # missing keys (and None payloads) never match match or range...
    ("missing-match", {"must": [key("nope", match="en")]}, set()),
    ("missing-range", {"must": [key("nope", range={"gte": -1e300})]}, set()),
    ("range-on-str-field", {"must": [key("lang", range={"gte": -1e300})]}, set()),
    # ... so must_not of them keeps every point, including the one without a payload
    ("must-not-missing", {"must_not": [key("nope", match="en")]}, ALL),
    ("must-not", {"must_not": [key("lang", match="en")]}, ALL - {1, 3, 4, "s1"}),
    ("must-not-list", {"must_not": [key("lang", match="fr")]}, ALL - {4}),
    (
        "must-not-two",
        {"must_not": [key("lang", match="en"), key("n", range={"lt": 3})]},
        ALL - {1, 3, 4, "s1", 2, 5, 7, 11, "1"},
    ),
    # should: at least one
    ("should-one", {"should": [key("lang", match="de")]}, {2}),
    ("should-two", {"should": [key("lang", match="en"), key("n", match=2)]}, {1, 2, 3, 4, "s1"}),
    ("should-none-match", {"should": [key("lang", match="jp"), key("nope", match=1)]}, set()),
    (
        "must-and-should",
        {"must": [key("lang", match="en")], "should": [key("n", match=1), key("n", match=10)]},
        {1, "s1"},
    ),
    (
        "must-should-must-not",
        {
            "must": [key("lang", match="en")],
            "should": [key("n", range={"gte": 1})],
            "must_not": [key("tags", match="a")],
        },
        {3, "s1"},
    ),
    # has_id: 1 and "1" are different points; unknown ids are ignored
    ("has-id", {"must": [{"has_id": [1, "s1", 999, "zzz"]}]}, {1, "s1"}),
    ("has-id-str-1", {"must": [{"has_id": ["1"]}]}, {"1"}),
    ("has-id-int-1", {"must": [{"has_id": [1]}]}, {1}),
    ("has-id-empty", {"must": [{"has_id": []}]}, set()),
    ("has-id-must-not", {"must_not": [{"has_id": [1, 2, 3]}]}, ALL - {1, 2, 3}),
    ("has-id-and-match", {"must": [{"has_id": [1, 2, 3, 4]}, key("lang", match="en")]}, {1, 3, 4}),
    # nesting
    (
        "nested-should-of-musts",
        {
            "should": [
                {"must": [key("lang", match="en"), key("n", range={"gt": 2})]},
                {"must": [{"has_id": [2]}]},
            ]
        },
        {2, 3, "s1"},
    ),
    (
        "nested-must-not-of-should",
        {"must_not": [{"should": [key("lang", match="en"), key("lang", match="de")]}]},
        ALL - {1, 2, 3, 4, "s1"},
    ),
    ("nested-double-negation", {"must_not": [{"must_not": [key("lang", match="en")]}]}, {1, 3, 4, "s1"}),
    (
        "nested-deep",
        {"must": [{"must": [{"must": [{"should": [key("flag", match=True), key("flag", match=False)]}]}]}]},
        {2, 3},
    ),
    # no conditions at all select everything
    ("empty", {}, ALL),
    ("empty-must", {"must": []}, ALL),
    ("empty-nested", {"must": [{"must": []}]}, ALL),
    # a single condition may be given without the list
    ("clause-as-dict", {"must": key("lang", match="en")}, {1, 3, 4, "s1"}),
]


@pytest.mark.parametrize(("flt", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_filter_semantics(col: vf.Collection, flt: dict[str, Any], expected: set[int | str]) -> None:
    assert matching(col, flt) == expected


def test_delete_by_filter_uses_the_same_semantics(col: vf.Collection) -> None:
    flt = {"should": [key("flag", match=True), key("tags", match=True)]}
    assert col.delete(filter=flt).count == 2
    assert col.get([2, 13]) == []
    assert col.count() == len(PAYLOADS) - 2
    assert col.delete(filter=flt).count == 0
    assert matching(col, {"must": [key("flag", match=1)]}) == {5}


def test_filters_see_only_the_live_version(col: vf.Collection) -> None:
    rng = np.random.default_rng(1)
    col.upsert([2], rng.normal(size=(1, DIM)), [{"lang": "en", "n": 100}])
    col.delete(ids=[1, "s1"])
    col.flush()
    col.upsert([4], rng.normal(size=(1, DIM)), [None])
    assert matching(col, {"must": [key("lang", match="en")]}) == {2, 3}
    assert matching(col, {"must": [key("lang", match="de")]}) == set()
    assert matching(col, {"must": [key("n", range={"gte": 100})]}) == {2}
    assert matching(col, {"must": [{"has_id": [1, 2, 4, "s1"]}]}) == {2, 4}
    assert matching(col, {"must_not": [{"has_id": [1]}]}) == ALL - {1, "s1"}
    col.upsert([1], rng.normal(size=(1, DIM)), [{"lang": "en"}])
    assert matching(col, {"must": [{"has_id": [1]}, key("lang", match="en")]}) == {1}


def test_parse_filter_tree() -> None:
    assert parse_filter(None) is None
    assert parse_filter({}) is None
    tree = parse_filter(
        {
            "must": [{"key": "a", "match": 1}, {"has_id": [2, "x"]}],
            "should": [{"key": "b", "match_any": ["u", True]}],
            "must_not": [{"key": "c", "range": {"gt": 1, "lte": 2.5}}, {"must": []}],
        }
    )
    assert tree == Where(
        must=(Match("a", (1,)), HasId(frozenset({2, "x"}))),
        should=(Match("b", ("u", True)),),
        must_not=(Range("c", gt=1.0, lte=2.5), Where()),
    )


# ---------------------------------------------------------------------------------------------- filtered ANN

N = 3_000
ANN_DIM = 16


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[vf.Collection, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(42)
    centers = rng.normal(size=(30, ANN_DIM))
    vectors = (centers[rng.integers(0, 30, N)] + 0.5 * rng.normal(size=(N, ANN_DIM))).astype(np.float32)
    queries = (centers[rng.integers(0, 30, 25)] + 0.5 * rng.normal(size=(25, ANN_DIM))).astype(np.float32)
    db = vf.connect()
    c = db.create_collection(
        "big", dim=ANN_DIM, metric="cosine", index="hnsw", index_params={"M": 16, "ef_construction": 100}
    )
    payloads = [{"bucket": i % 100, "half": i % 2, "tag": "t" + str(i % 7)} for i in range(N)]
    for start in range(0, N, 1000):
        ids = list(range(start, min(N, start + 1000)))
        c.upsert(ids, vectors[ids], [payloads[i] for i in ids])
    yield c, queries, vectors
    db.close()


SELECTIVE = {"must": [{"key": "bucket", "match": 7}]}  # 1%
HALF = {"must": [{"key": "half", "match": 1}]}  # 50%
HALF_NESTED = {
    "should": [{"key": "tag", "match_any": ["t1", "t2", "t3"]}, {"key": "bucket", "range": {"lt": 20}}]
}


def _allowed(flt: dict[str, Any]) -> set[int]:
    out = set()
    for i in range(N):
        p = {"bucket": i % 100, "half": i % 2, "tag": "t" + str(i % 7)}
        if flt is SELECTIVE:
            ok = p["bucket"] == 7
        elif flt is HALF:
            ok = p["half"] == 1
        else:
            ok = p["tag"] in ("t1", "t2", "t3") or p["bucket"] < 20
        if ok:
            out.add(i)
    return out


@pytest.fixture(params=["planner", "forced-ann"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """With "forced-ann" the planner sends every filtered search to the graph; counts graph searches."""
    calls: list[int] = []
    original = HNSWIndex.ann_search

    def counting(self: HNSWIndex, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HNSWIndex, "ann_search", counting)
    if request.param == "forced-ann":
        monkeypatch.setattr(planner, "FULL_SCAN_POINTS", 0)
        monkeypatch.setattr(planner, "MIN_ANN_SELECTIVITY", 0.0)
    yield calls
    if request.param == "forced-ann":
        assert calls, "the graph was never searched"


@pytest.mark.parametrize("flt", [SELECTIVE, HALF, HALF_NESTED], ids=["1%", "50%", "50%-nested"])
def test_filtered_ann_search(
    big: tuple[vf.Collection, np.ndarray, np.ndarray], plan: list[int], flt: dict[str, Any]
) -> None:
    col, queries, _ = big
    allowed = _allowed(flt)
    assert col.count(filter=flt) == len(allowed)
    assert abs(len(allowed) / N - (0.01 if flt is SELECTIVE else 0.5)) < 0.12
    recalls = []
    identical = 0
    for q in queries:
        hits = col.search(q, k=10, filter=flt, with_payload=False)
        exact = col.search(q, k=10, filter=flt, params={"exact": True}, with_payload=False)
        assert len(hits) == len(exact) == 10
        assert {h.id for h in hits} <= allowed, "a point outside the filter was returned"
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        exact_score = {h.id: h.score for h in exact}
        got = {h.id for h in hits}
        recalls.append(len(got & set(exact_score)) / 10)
        identical += got == set(exact_score)
        for h in hits:  # scores are the true scores, wherever they come from
            if h.id in exact_score:
                assert h.score == pytest.approx(exact_score[h.id], abs=1e-5)
    assert np.mean(recalls) >= 0.95
    assert identical >= 0.8 * len(queries)


def test_filtered_ann_search_skips_deleted_points(
    big: tuple[vf.Collection, np.ndarray, np.ndarray], plan: list[int]
) -> None:
    col, queries, vectors = big
    q = queries[0]
    top = [h.id for h in col.search(q, k=20, filter=HALF, params={"exact": True})]
    col.delete(ids=top[:10])
    try:
        for flt in (HALF, None):
            hits = col.search(q, k=10, filter=flt)
            assert not {h.id for h in hits} & set(top[:10])
        hits = col.search(q, k=10, filter=HALF)
        exact = col.search(q, k=10, filter=HALF, params={"exact": True})
        assert [h.id for h in exact] == top[10:20]
        assert len({h.id for h in hits} & set(top[10:20])) >= 9
    finally:
        col.upsert(
            top[:10],
            vectors[top[:10]],
            [{"bucket": i % 100, "half": i % 2, "tag": "t" + str(i % 7)} for i in top[:10]],
        )
    assert col.count() == N


# -- numbers compare by value, exactly --------------------------------------------------------------
BIG = 2**53
NUMBERS: dict[int | str, Any] = {1: 1, 2: 1.0, 3: True, 4: BIG, 5: BIG + 1, 6: -BIG - 1, 7: 2.5, 8: "1"}


@pytest.fixture
def numbers(mem_db: vf.Database) -> vf.Collection:
    c = mem_db.create_collection("nums", dim=DIM, metric="dot", index="flat")
    ids = list(NUMBERS)
    c.upsert(ids, np.random.default_rng(1).normal(size=(len(ids), DIM)), [{"n": NUMBERS[i]} for i in ids])
    return c


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"match": 1}, {1, 2}),  # 1 and 1.0 are one number (JSON has one number type) ...
        ({"match": 1.0}, {1, 2}),
        ({"range": {"gte": 1, "lte": 1}}, {1, 2}),  # ... and range agrees with match
        ({"match": True}, {3}),  # a bool is not a number
        ({"range": {"gt": BIG}}, {5}),  # beyond 2**53 integers still compare exactly
        ({"range": {"gte": BIG + 1}}, {5}),
        ({"range": {"lt": BIG + 1, "gt": 3}}, {4}),
        ({"range": {"lt": -BIG}}, {6}),
        ({"match": BIG}, {4}),
        ({"match": BIG + 1}, {5}),
        ({"range": {"gt": float(BIG)}}, {5}),  # an int against a float bound: exact too
        ({"match_any": [2.5, BIG]}, {4, 7}),
    ],
)
def test_numbers_compare_by_value_and_exactly(
    numbers: vf.Collection, cond: dict[str, Any], expected: set[int]
) -> None:
    assert matching(numbers, {"must": [{"key": "n", **cond}]}) == expected


numbers_strategy = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=BIG - 4, max_value=BIG + 4),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(numbers_strategy, min_size=1, max_size=12),
    bound=numbers_strategy,
    op=st.sampled_from(["gt", "gte", "lt", "lte"]),
)
def test_ranges_agree_with_exact_comparison(
    mem_db: vf.Database, values: list[Any], bound: Any, op: str
) -> None:
    """Oracle: Python's own int/float comparison, which is exact."""
    name = f"r{abs(hash((tuple(values), bound, op))) % 10**9}"
    c = mem_db.create_collection(name, dim=DIM, metric="dot", index="flat")
    c.upsert(list(range(len(values))), np.ones((len(values), DIM)), [{"n": v} for v in values])
    compare = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}[op]
    expected = {i for i, v in enumerate(values) if compare(v, bound)}
    found = {r.id for r in c.scroll(limit=100, filter={"must": [{"key": "n", "range": {op: bound}}]}).records}
    assert found == expected
    same = {i for i, v in enumerate(values) if v == bound}
    assert {
        r.id for r in c.scroll(limit=100, filter={"must": [{"key": "n", "match": bound}]}).records
    } == same
    mem_db.delete_collection(name)


# -- a delete whose filter matches everything is refused, however it is spelled ----------------------
@pytest.mark.parametrize(
    "flt",
    [
        {},
        {"must": []},
        {"should": []},
        {"must_not": []},
        {"must": [{"must": []}]},
        {"must": [{"should": [{"must": []}, key("lang", match="en")]}]},
        {"must_not": [{"has_id": []}]},
        {"must_not": [{"must_not": [{"must": []}]}]},
    ],
)
def test_a_delete_that_would_match_everything_is_refused(col: vf.Collection, flt: dict[str, Any]) -> None:
    assert matching(col, flt) == ALL  # it really would select every point ...
    with pytest.raises(vf.InvalidParameter, match="would delete every point"):
        col.delete(filter=flt)
    assert col.count() == len(ALL)  # ... and nothing was deleted


def test_a_delete_filter_that_spares_one_point_is_taken(col: vf.Collection) -> None:
    assert col.delete(filter={"must_not": [{"has_id": [1]}]}).count == len(ALL) - 1
    assert [r.id for r in col.scroll().records] == [1]


def test_a_cached_mask_of_a_bool_never_answers_for_a_number() -> None:
    """True == 1 and hash(True) == hash(1) in Python: the segment's mask cache, keyed by the parsed
    filter, once gave `match: 0` the mask of `match: false` (found by the Qdrant property test)."""
    with vf.connect() as db:
        col = db.create_collection("b", dim=2, index="flat")
        col.upsert([0, 1], np.ones((2, 2)), [{"a": False}, {"a": 1}])
        for value, expected in ((False, 1), (0, 0), (True, 0), (1, 1), (0, 0), (False, 1)):
            assert col.count({"must": [{"key": "a", "match": value}]}) == expected, value
        assert col.count({"must": [{"key": "a", "match": {"any": [True]}}]}) == 0
        assert col.count({"must": [{"key": "a", "match": {"any": [1]}}]}) == 1
