"""Qdrant's filter grammar, against Qdrant itself: qdrant-client's local mode is the oracle.

The examples of Qdrant's "Filtering" documentation run unchanged (their payload data sets too), and
a property test compares random filters on random payloads. The oracle is qdrant-client's
`QdrantClient(":memory:")`, a pure-Python evaluator that mirrors the server's semantics. Where
vectorforge chooses otherwise, on purpose and as documented, the data avoid the difference and a
test of its own pins vectorforge's choice: `text` is substring containment (the documented behaviour
without a full-text index; qdrant-client matches whole words instead), and numbers compare by value
(1 matches 1.0; in Qdrant an integer match never matches a float).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

import vectorforge as vf

DIM = 2

# -- the documentation's data sets --------------------------------------------------------------------
CITIES = [
    {"id": 1, "city": "London", "color": "green"},
    {"id": 2, "city": "London", "color": "red"},
    {"id": 3, "city": "London", "color": "blue"},
    {"id": 4, "city": "Berlin", "color": "red"},
    {"id": 5, "city": "Moscow", "color": "green"},
    {"id": 6, "city": "Moscow", "color": "blue"},
]
COUNTRIES = [
    {
        "id": 1,
        "country": {
            "name": "Germany",
            "cities": [
                {"name": "Berlin", "population": 3.7, "sightseeing": ["Brandenburg Gate", "Reichstag"]},
                {"name": "Munich", "population": 1.5, "sightseeing": ["Marienplatz", "Olympiapark"]},
            ],
        },
    },
    {
        "id": 2,
        "country": {
            "name": "Japan",
            "cities": [
                {"name": "Tokyo", "population": 9.3, "sightseeing": ["Tokyo Tower", "Tokyo Skytree"]},
                {
                    "name": "Osaka",
                    "population": 2.7,
                    "sightseeing": ["Osaka Castle", "Universal Studios Japan"],
                },
            ],
        },
    },
]
DINOSAURS = [
    {
        "id": 1,
        "dinosaur": "t-rex",
        "diet": [{"food": "leaves", "likes": False}, {"food": "meat", "likes": True}],
    },
    {
        "id": 2,
        "dinosaur": "diplodocus",
        "diet": [{"food": "leaves", "likes": True}, {"food": "meat", "likes": False}],
    },
]
PRODUCTS = [
    {"id": 1, "name": "product A", "comments": ["Very good!", "Excellent"]},
    {"id": 2, "name": "product B", "comments": ["meh", "expected more", "ok"]},
]
# The documentation shows these conditions without data: a few payloads with their keys (and without).
OTHERS = [
    {"id": 1, "color": "black", "count": 0, "price": 99.5, "reports": [], "description": "good cheap phone"},
    {"id": 2, "color": ["black", "green"], "count": 3, "price": 100, "reports": None},
    {"id": 3, "color": "yellow", "count": [0, 7], "price": 450.0, "reports": ["late"]},
    {"id": 4, "color": ["red"], "price": [10, 451], "reports": [None]},
    {"id": 5, "color": None, "count": "0", "description": "cheap and good"},
    {"id": 6},
]
DATA = {
    "cities": CITIES,
    "countries": COUNTRIES,
    "dinosaurs": DINOSAURS,
    "products": PRODUCTS,
    "others": OTHERS,
}


def cond(c: dict[str, Any]) -> dict[str, Any]:
    """A condition the documentation shows alone, as the filter it goes in."""
    return {"must": [c]}


# (data set, filter exactly as documented, the ids the documentation says it selects, or None)
DOC_EXAMPLES: list[tuple[str, str, dict[str, Any], list[int] | None]] = [
    (
        "must",
        "cities",
        {
            "must": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "color", "match": {"value": "red"}},
            ]
        },
        [2],
    ),
    (
        "should",
        "cities",
        {
            "should": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "color", "match": {"value": "red"}},
            ]
        },
        [1, 2, 3, 4],
    ),
    (
        "must_not",
        "cities",
        {
            "must_not": [
                {"key": "city", "match": {"value": "London"}},
                {"key": "color", "match": {"value": "red"}},
            ]
        },
        [5, 6],
    ),
    (
        "clauses-combination",
        "cities",
        {
            "must": [{"key": "city", "match": {"value": "London"}}],
            "must_not": [{"key": "color", "match": {"value": "red"}}],
        },
        [1, 3],
    ),
    (
        "nested-clauses",
        "cities",
        {
            "must_not": [
                {
                    "must": [
                        {"key": "city", "match": {"value": "London"}},
                        {"key": "color", "match": {"value": "red"}},
                    ]
                }
            ]
        },
        [1, 3, 4, 5, 6],
    ),
    ("has-id", "cities", {"must": [{"has_id": [1, 3, 5, 7, 9, 11]}]}, [1, 3, 5]),
    ("match-keyword", "others", cond({"key": "color", "match": {"value": "red"}}), None),
    ("match-integer", "others", cond({"key": "count", "match": {"value": 0}}), None),
    ("match-any", "others", cond({"key": "color", "match": {"any": ["black", "yellow"]}}), None),
    ("match-except", "others", cond({"key": "color", "match": {"except": ["black", "yellow"]}}), None),
    ("nested-key", "countries", {"should": [{"key": "country.name", "match": {"value": "Germany"}}]}, [1]),
    (
        "nested-array",
        "countries",
        {
            "should": [
                {
                    "key": "country.cities[].population",
                    "range": {"gt": None, "gte": 9.0, "lt": None, "lte": None},
                }
            ]
        },
        [2],
    ),
    (
        "nested-array-match",
        "countries",
        {"should": [{"key": "country.cities[].sightseeing", "match": {"value": "Osaka Castle"}}]},
        [2],
    ),
    (
        "array-conditions-not-per-element",
        "dinosaurs",
        {
            "must": [
                {"key": "diet[].food", "match": {"value": "meat"}},
                {"key": "diet[].likes", "match": {"value": True}},
            ]
        },
        [1, 2],
    ),
    (
        "nested-object-filter",
        "dinosaurs",
        {
            "must": [
                {
                    "nested": {
                        "key": "diet",
                        "filter": {
                            "must": [
                                {"key": "food", "match": {"value": "meat"}},
                                {"key": "likes", "match": {"value": True}},
                            ]
                        },
                    }
                }
            ]
        },
        [1],
    ),
    (
        "nested-and-has-id",
        "dinosaurs",
        {
            "must": [
                {
                    "nested": {
                        "key": "diet",
                        "filter": {
                            "must": [
                                {"key": "food", "match": {"value": "meat"}},
                                {"key": "likes", "match": {"value": True}},
                            ]
                        },
                    }
                },
                {"has_id": [1]},
            ]
        },
        [1],
    ),
    (
        "range",
        "others",
        cond({"key": "price", "range": {"gt": None, "gte": 100.0, "lt": None, "lte": 450.0}}),
        None,
    ),
    ("values-count", "products", cond({"key": "comments", "values_count": {"gt": 2}}), [2]),
    ("values-count-others", "others", cond({"key": "reports", "values_count": {"lt": 1}}), None),
    ("is-empty", "others", cond({"is_empty": {"key": "reports"}}), None),
    ("is-null", "others", cond({"is_null": {"key": "reports"}}), None),
    ("must-not-is-empty", "others", {"must_not": [{"is_empty": {"key": "reports"}}]}, None),
    (
        "min-should",
        "cities",
        {
            "min_should": {
                "conditions": [
                    {"key": "city", "match": {"any": ["Berlin", "Moscow"]}},
                    {"key": "color", "match": {"value": "red"}},
                    {"has_id": [4, 5]},
                ],
                "min_count": 2,
            }
        },
        None,
    ),
]


# -- the two sides -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def qdrant() -> Iterator[QdrantClient]:
    client = QdrantClient(":memory:")
    yield client
    client.close()


def qdrant_ids(
    client: QdrantClient, points: dict[int, dict[str, Any] | None], flt: dict[str, Any]
) -> set[int]:
    """The ids Qdrant's own evaluator selects with `flt` among `points`."""
    if client.collection_exists("oracle"):
        client.delete_collection("oracle")
    client.create_collection(
        "oracle", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
    )
    if points:
        client.upsert(
            "oracle",
            [models.PointStruct(id=pid, vector=[1.0, 0.5], payload=p or {}) for pid, p in points.items()],
        )
    found, _ = client.scroll("oracle", scroll_filter=models.Filter.model_validate(flt), limit=10_000)
    return {int(p.id) for p in found}


def engine_ids(col: vf.Collection, flt: dict[str, Any]) -> set[int | str]:
    """The ids vectorforge selects, after checking that count, scroll and both searches agree."""
    found = {r.id for r in col.scroll(limit=10_000, filter=flt).records}
    assert col.count(filter=flt) == len(found)
    q = np.array([1.0, 0.5], dtype=np.float32)
    assert {h.id for h in col.search(q, k=1000, filter=flt, params={"exact": True})} == found
    assert {h.id for h in col.search(q, k=1000, filter=flt)} == found
    return found


def load(db: vf.Database, name: str, points: dict[int, dict[str, Any] | None], segment: int) -> vf.Collection:
    col = db.create_collection(name, dim=DIM, metric="dot", index="flat", max_segment_points=segment)
    rng = np.random.default_rng(3)
    ids = list(points)
    for i in range(0, len(ids), 2):  # small batches: rows spread over segments
        chunk = ids[i : i + 2]
        col.upsert(chunk, rng.normal(size=(len(chunk), DIM)), [points[p] for p in chunk])
    return col


@pytest.mark.parametrize("segment", [1000, 2], ids=["one-segment", "many-segments"])
@pytest.mark.parametrize(
    ("data", "flt", "documented"), [e[1:] for e in DOC_EXAMPLES], ids=[e[0] for e in DOC_EXAMPLES]
)
def test_documentation_examples(
    mem_db: vf.Database,
    qdrant: QdrantClient,
    segment: int,
    data: str,
    flt: dict[str, Any],
    documented: list[int] | None,
) -> None:
    points = {p["id"]: {k: v for k, v in p.items() if k != "id"} for p in DATA[data]}
    expected = qdrant_ids(qdrant, points, flt)
    if documented is not None:
        assert expected == set(documented)  # the oracle agrees with the documentation ...
    assert engine_ids(load(mem_db, "docs", points, segment), flt) == expected  # ... and so do we


def test_text_match_is_substring_containment(mem_db: vf.Database, qdrant: QdrantClient) -> None:
    """The documented example, `{"text": "good cheap"}`: without a full-text index Qdrant's
    documentation says substring match, which vectorforge does; qdrant-client matches whole words in
    any order, so it also takes "cheap and good"."""
    points = {p["id"]: {k: v for k, v in p.items() if k != "id"} for p in OTHERS}
    points[7] = {"description": ["x", "very good cheap!"]}  # a list: any element
    points[8] = {"description": "Good Cheap"}  # case-sensitive
    col = load(mem_db, "text", points, 2)
    flt = cond({"key": "description", "match": {"text": "good cheap"}})
    assert engine_ids(col, flt) == {1, 7}
    assert qdrant_ids(qdrant, points, flt) == {1, 5, 7, 8}
    assert engine_ids(col, cond({"key": "description", "match": {"text": "ood ch"}})) == {1, 7}
    assert engine_ids(col, cond({"key": "color", "match": {"text": "ell"}})) == {3}


def test_numbers_match_by_value_unlike_qdrant(mem_db: vf.Database, qdrant: QdrantClient) -> None:
    points: dict[int, dict[str, Any] | None] = {
        1: {"n": 1},
        2: {"n": 1.0},
        3: {"n": True},
        4: {"n": [1.0, 2]},
    }
    col = load(mem_db, "nums", points, 2)
    assert engine_ids(col, cond({"key": "n", "match": {"value": 1}})) == {1, 2, 4}
    assert qdrant_ids(qdrant, points, cond({"key": "n", "match": {"value": 1}})) == {1}
    # except agrees: 1.0 is 1, so it is not "other than 1"
    assert engine_ids(col, cond({"key": "n", "match": {"except": [1]}})) == {3, 4}


def test_short_forms_equal_qdrant_forms(mem_db: vf.Database) -> None:
    col = load(mem_db, "short", {p["id"]: {k: v for k, v in p.items() if k != "id"} for p in OTHERS}, 2)
    assert engine_ids(col, cond({"key": "color", "match": "black"})) == engine_ids(
        col, cond({"key": "color", "match": {"value": "black"}})
    )
    assert engine_ids(col, cond({"key": "color", "match_any": ["red", "yellow"]})) == {3, 4}
    assert engine_ids(col, cond({"key": "color", "match": {"any": []}})) == set()
    assert engine_ids(col, cond({"key": "color", "match": {"except": []}})) == {1, 2, 3, 4}


def test_a_delete_whose_filter_matches_everything_is_still_refused(mem_db: vf.Database) -> None:
    col = load(mem_db, "del", {1: {"a": 1}, 2: {}}, 2)
    for flt in (
        {"must_not": [{"key": "a", "match": {"any": []}}]},
        {"min_should": {"conditions": [{"must": []}, {"should": []}], "min_count": 2}},
        {"must_not": [{"nested": {"key": "d", "filter": {"must": [{"key": "x", "match": {"any": []}}]}}}]},
    ):
        assert engine_ids(col, flt) == {1, 2}
        with pytest.raises(vf.InvalidParameter, match="would delete every point"):
            col.delete(filter=flt)
    assert (
        col.delete(filter={"min_should": {"conditions": [{"is_empty": {"key": "a"}}], "min_count": 1}}).count
        == 1
    )
    assert [r.id for r in col.scroll().records] == [1]


# -- property test: random payloads and filters, engine == Qdrant ----------------------------------
WORDS = ["red", "blue", "cheap", "good"]  # none inside another: one-word substring == whole word
scalars = st.one_of(
    st.none(),
    st.none(),  # twice: nulls, alone and in arrays, are where is_null, is_empty and except differ
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([-1.5, 0.5, 2.5]),  # no integral floats: there 1 == 1.0 parts ways with Qdrant
    st.sampled_from([*WORDS, "good red", "blue cheap good", ""]),
)
leaf_lists = st.lists(scalars, max_size=3)
objects = st.dictionaries(st.sampled_from(["x", "y"]), scalars | leaf_lists, max_size=2)
values = st.one_of(
    scalars,
    leaf_lists,
    objects,
    st.lists(objects | scalars, max_size=3),  # arrays of objects, for nested filters and k[].x
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2)
        ),
        max_leaves=6,
    ),
)
payloads = st.none() | st.fixed_dictionaries({}, optional={"a": values, "b": values, "d": values})

KEYS = ["a", "a", "a[]", "d", "b", "a.x", "a[].x", "a[0]", "a[]", "d[].y", "a.x.y", "d[].x[]", "a[1].x"]
INNER_KEYS = ["x", "y", "x.y", "x[]", "y[].x"]
NESTED_KEYS = ["a", "d[]", "a[].x", "d"]
match_values = st.one_of(st.booleans(), st.integers(-2, 3), st.sampled_from([*WORDS, "good red", ""]))
# Qdrant's any/except lists hold strs or ints, one kind per list (vectorforge takes any mix)
value_lists = st.lists(st.integers(-2, 3), max_size=3) | st.lists(
    st.sampled_from([*WORDS, "good red", ""]), max_size=3
)
bounds = st.sampled_from([-2, -1.5, 0, 0.5, 1, 2.5, 3])


def field_conditions(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    key = st.sampled_from(keys)
    ops = st.sampled_from(["gt", "gte", "lt", "lte"])
    return st.one_of(
        st.builds(lambda k, v: {"key": k, "match": {"value": v}}, key, match_values),
        st.builds(lambda k, v: {"key": k, "match": {"any": v}}, key, value_lists),
        st.builds(lambda k, v: {"key": k, "match": {"except": v}}, key, value_lists),
        st.builds(lambda k, v: {"key": k, "match": {"text": v}}, key, st.sampled_from(WORDS)),
        st.builds(lambda k, r: {"key": k, "range": r}, key, st.dictionaries(ops, bounds, min_size=1)),
        st.builds(
            lambda k, r: {"key": k, "values_count": r},
            key,
            st.dictionaries(ops, st.integers(0, 3), min_size=1),
        ),
        st.builds(lambda k: {"is_empty": {"key": k}}, key),
        st.builds(lambda k: {"is_null": {"key": k}}, key),
    )


def filters(keys: list[str], with_ids: bool, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaves = [field_conditions(keys)]
    if with_ids:
        leaves.append(st.builds(lambda ids: {"has_id": ids}, st.lists(st.integers(0, 14), max_size=4)))
    conditions = st.one_of(*leaves)
    if depth > 0:
        inner = filters(INNER_KEYS, False, depth - 1)
        nested = st.builds(
            lambda k, f: {"nested": {"key": k, "filter": f}}, st.sampled_from(NESTED_KEYS), inner
        )
        conditions = st.one_of(conditions, nested, filters(keys, with_ids, depth - 1))
    clause = st.lists(conditions, max_size=2)
    min_should = st.builds(
        lambda cs, n: {"conditions": cs, "min_count": n}, st.lists(conditions, max_size=3), st.integers(1, 3)
    )
    return st.fixed_dictionaries(
        {}, optional={"must": clause, "should": clause, "must_not": clause, "min_should": min_should}
    )


def shorten(flt: Any) -> Any:
    """The same filter with vectorforge's short forms where they apply."""
    if isinstance(flt, list):
        return [shorten(c) for c in flt]
    if not isinstance(flt, dict):
        return flt
    match = flt.get("match")
    if isinstance(match, dict) and "value" in match:
        return {"key": flt["key"], "match": match["value"]}
    if isinstance(match, dict) and match.get("any"):
        return {"key": flt["key"], "match_any": match["any"]}
    return {k: shorten(v) for k, v in flt.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.dictionaries(st.integers(0, 14), payloads, min_size=1, max_size=6), min_size=1, max_size=4
    ),
    deletes=st.lists(st.integers(0, 16), max_size=4),
    # one condition alone shows its own semantics; larger trees, how they combine
    queries=st.lists(
        st.builds(lambda c: {"must": [c]}, field_conditions(KEYS)) | filters(KEYS, True, 2),
        min_size=1,
        max_size=5,
    ),
    short=st.booleans(),
)
def test_random_filters_agree_with_qdrant(
    mem_db: vf.Database,
    qdrant: QdrantClient,
    batches: list[dict[int, Any]],
    deletes: list[int],
    queries: list[dict[str, Any]],
    short: bool,
) -> None:
    col = mem_db.create_collection("p", dim=DIM, metric="dot", index="flat", max_segment_points=3)
    try:
        rng = np.random.default_rng(0)
        points: dict[int, Any] = {}
        for batch in batches:  # re-upserts leave old versions in older segments: they must stay invisible
            col.upsert(list(batch), rng.normal(size=(len(batch), DIM)), list(batch.values()))
            points.update(batch)
        if deletes:
            col.delete(ids=deletes)
            for pid in deletes:
                points.pop(pid, None)
        for flt in queries:
            expected = qdrant_ids(qdrant, points, flt)
            assert engine_ids(col, shorten(flt) if short else flt) == expected, flt
    finally:
        mem_db.delete_collection("p")
