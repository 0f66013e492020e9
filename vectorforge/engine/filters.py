"""Qdrant's payload filter grammar: parsing into a small condition tree (evaluated by filter_index).

Grammar::

    filter    := {"must": [cond...], "should": [cond...], "must_not": [cond...],
                  "min_should": {"conditions": [cond...], "min_count": n}}      (any subset; n >= 1)
    cond      := filter                                          (nested clauses)
               | {"key": k, "match": {"value": v}}               v: str | number | bool
               | {"key": k, "match": {"any": [v, ...]}}          one of them ([] matches nothing)
               | {"key": k, "match": {"except": [v, ...]}}       a value that is none of them
               | {"key": k, "match": {"text": "..."}}            a string containing the text
               | {"key": k, "match": v}  {"key": k, "match_any": [v, ...]}        (short forms)
               | {"key": k, "range": {"gt"|"gte"|"lt"|"lte": number, ...}}        (null: no bound)
               | {"key": k, "values_count": {"gt"|"gte"|"lt"|"lte": n, ...}}
               | {"is_empty": {"key": k}}  | {"is_null": {"key": k}}
               | {"has_id": [id, ...]}
               | {"nested": {"key": k, "filter": filter}}        (no has_id inside)

`key` is a dotted path into nested objects ("meta.lang"); `k[]` steps into every element of an
array and `k[2]` into one ("diet[].food"). A payload value that is a list matches when any element
matches, as in Qdrant: `match`, `range` and `except` look at the elements (`except` holds when one
element, not null, is none of the values: a missing key, null or [] never holds). `text` is substring
containment, case-sensitive (Qdrant's documented behaviour without a full-text index; there is no
full-text index here). `is_empty`: the key is missing, null or []; `is_null`: the value is null (or
an array holding null). `values_count` counts a list's elements, 1 for any other value, 0 for missing
or null. `nested` holds when one and the same object of the array at `key` satisfies its filter.
`should` holds when at least one of its conditions does; `min_should` when `min_count` of them do.
`{}` as a condition is a filter without clauses (true). Beyond Qdrant, `any`/`except` may mix types.

Numbers are compared by value, exactly, as JSON has one number type: `match` 1 matches 1 and 1.0
(and `range` agrees), integers beyond 2**53 compare exactly (2**53 + 1 > 2**53), and a bool is not
a number (True does not match 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vectorforge.engine.filter_paths import parse_key
from vectorforge.errors import InvalidFilter, InvalidParameter
from vectorforge.types import PointId

__all__ = [
    "Condition",
    "Except",
    "HasId",
    "IsEmpty",
    "IsNull",
    "Match",
    "MinShould",
    "Nested",
    "Range",
    "Text",
    "ValuesCount",
    "Where",
    "matches_everything",
    "parse_delete_filter",
    "parse_filter",
]

_RANGE_OPS = ("gt", "gte", "lt", "lte")
_CLAUSES = ("must", "should", "must_not", "min_should")
_MATCH_FORMS = ("value", "any", "except", "text")
MAX_DEPTH = 32  # nesting levels of a filter

Number = int | float


@dataclass(frozen=True, slots=True)
class _KeyValues:
    """A key and values to compare it with (the shape of `Match` and `Except`)."""

    key: str
    values: tuple[Any, ...]
    # True == 1 and hash(True) == hash(1): without this a cached mask of `match: true` would answer
    # `match: 1` (the filter is the key of each segment's mask cache)
    bools: tuple[bool, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "bools", tuple(isinstance(v, bool) for v in self.values))


@dataclass(frozen=True, slots=True)
class Match(_KeyValues):
    """The key holds one of `values`."""


@dataclass(frozen=True, slots=True)
class Except(_KeyValues):
    """The key holds none of `values` (and is there)."""


@dataclass(frozen=True, slots=True)
class Text:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None


@dataclass(frozen=True, slots=True)
class ValuesCount:
    key: str
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None


@dataclass(frozen=True, slots=True)
class IsEmpty:
    key: str


@dataclass(frozen=True, slots=True)
class IsNull:
    key: str


@dataclass(frozen=True, slots=True)
class HasId:
    ids: frozenset[PointId]


@dataclass(frozen=True, slots=True)
class Nested:
    key: str  # the array of objects, without a trailing "[]"
    filter: Where


@dataclass(frozen=True, slots=True)
class MinShould:
    conditions: tuple[Condition, ...]
    min_count: int


@dataclass(frozen=True, slots=True)
class Where:
    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()
    min_should: MinShould | None = None


Condition = Match | Except | Text | Range | ValuesCount | IsEmpty | IsNull | HasId | Nested | Where


def parse_filter(raw: object) -> Where | None:
    """Parse a filter dict; None/{} mean no filter. Raises InvalidFilter naming the bad part."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidFilter(f"filter must be a dict like {{'must': [...]}}, not {type(raw).__name__}")
    if not raw:
        return None
    return _parse_where(raw, "filter", in_nested=False)


def _parse_where(raw: dict[str, Any], path: str, in_nested: bool) -> Where:
    if path.count("[") > MAX_DEPTH:
        raise InvalidFilter(f"{path}: filters nest at most {MAX_DEPTH} levels deep")
    unknown = set(raw) - set(_CLAUSES)
    if unknown:
        raise InvalidFilter(
            f"{path}: unknown keys {sorted(unknown)}; a filter has 'must', 'should', 'must_not' "
            "and/or 'min_should'"
        )
    parts: dict[str, tuple[Condition, ...]] = {}
    for clause in ("must", "should", "must_not"):
        items = raw.get(clause)
        parts[clause] = _parse_conditions(items, f"{path}.{clause}", in_nested, single_ok=True)
    min_should = None
    if raw.get("min_should") is not None:
        min_should = _parse_min_should(raw["min_should"], f"{path}.min_should", in_nested)
    return Where(**parts, min_should=min_should)


def _parse_conditions(items: object, path: str, in_nested: bool, single_ok: bool) -> tuple[Condition, ...]:
    if items is None:  # Qdrant's JSON writes an unused clause as null
        return ()
    if isinstance(items, dict) and single_ok:
        items = [items]
    if not isinstance(items, list):
        raise InvalidFilter(f"{path} must be a list of conditions, not {type(items).__name__}")
    return tuple(_parse_condition(c, f"{path}[{i}]", in_nested) for i, c in enumerate(items))


def _parse_min_should(raw: object, path: str, in_nested: bool) -> MinShould:
    if not isinstance(raw, dict) or set(raw) != {"conditions", "min_count"}:
        raise InvalidFilter(f"{path} takes {{'conditions': [...], 'min_count': n}} and nothing else")
    count = raw["min_count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidFilter(f"{path}.min_count must be an integer of at least 1, not {count!r}")
    conditions = _parse_conditions(raw["conditions"], f"{path}.conditions", in_nested, single_ok=False)
    return MinShould(conditions, count)


def _parse_condition(raw: object, path: str, in_nested: bool) -> Condition:
    if not isinstance(raw, dict):
        raise InvalidFilter(f"{path} must be a dict, not {type(raw).__name__}")
    if not raw or set(raw) & set(_CLAUSES):  # {} is a filter without clauses, as in Qdrant
        return _parse_where(raw, path, in_nested)
    if "has_id" in raw:
        if in_nested:
            raise InvalidFilter(
                f"{path}: has_id does not work inside a nested filter (it sees array elements, not "
                "points); put it in a 'must' beside the nested condition"
            )
        if set(raw) != {"has_id"} or not isinstance(raw["has_id"], list):
            raise InvalidFilter(f"{path}: has_id takes a list of point ids and nothing else")
        for pid in raw["has_id"]:
            if isinstance(pid, bool) or not isinstance(pid, int | str):
                raise InvalidFilter(f"{path}: has_id holds {pid!r}, but ids are int or str")
        return HasId(frozenset(raw["has_id"]))
    for name, node in (("is_empty", IsEmpty), ("is_null", IsNull)):
        if name in raw:
            inner = raw[name]
            if set(raw) != {name} or not isinstance(inner, dict) or set(inner) != {"key"}:
                raise InvalidFilter(f"{path}: {name} takes {{'key': field}} and nothing else")
            return node(_key(inner["key"], f"{path}.{name}"))
    if "nested" in raw:
        return _parse_nested(raw, path)
    if "key" not in raw:
        raise InvalidFilter(
            f"{path}: a condition needs a 'key' (payload field) with 'match', 'match_any', 'range' or "
            "'values_count', or is 'has_id', 'is_empty', 'is_null', 'nested' or a filter of clauses"
        )
    key = _key(raw["key"], path)
    ops = set(raw) - {"key"}
    if len(ops) != 1:
        raise InvalidFilter(
            f"{path}: give exactly one of 'match', 'match_any', 'range', 'values_count' for key {key!r}"
        )
    (op,) = ops
    value = raw[op]
    if op == "match":
        if isinstance(value, dict):
            return _parse_match(key, value, f"{path}.match")
        return Match(key, (_match_value(value, path),))
    if op == "match_any":
        if not isinstance(value, list) or not value:
            raise InvalidFilter(f"{path}: match_any takes a non-empty list of values")
        return Match(key, tuple(_match_value(v, path) for v in value))
    if op == "range":
        return Range(key, **_bounds(value, f"{path}.range", _range_bound))
    if op == "values_count":
        return ValuesCount(key, **_bounds(value, f"{path}.values_count", _count_bound))
    raise InvalidFilter(
        f"{path}: unknown condition {op!r}; use 'match', 'match_any', 'range' or 'values_count'"
    )


def _key(key: object, path: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidFilter(f"{path}: a condition needs a 'key' (payload field), a non-empty str")
    try:
        parse_key(key)
    except ValueError as e:
        raise InvalidFilter(f"{path}: key {key!r}: {e}") from None
    return key


def _parse_match(key: str, raw: dict[str, Any], path: str) -> Match | Except | Text:
    if len(raw) != 1 or not set(raw) <= set(_MATCH_FORMS):
        raise InvalidFilter(
            f"{path} takes exactly one of {{'value': v}}, {{'any': [...]}}, {{'except': [...]}}, "
            f"{{'text': str}}, not the keys {sorted(raw)}"
        )
    ((form, value),) = raw.items()
    if form == "value":
        return Match(key, (_match_value(value, path),))
    if form == "text":
        if not isinstance(value, str) or not value:
            raise InvalidFilter(f"{path}.text takes a non-empty str, not {value!r}")
        return Text(key, value)
    if not isinstance(value, list):
        raise InvalidFilter(f"{path}.{form} takes a list of values, not {type(value).__name__}")
    values = tuple(_match_value(v, f"{path}.{form}") for v in value)
    return Match(key, values) if form == "any" else Except(key, values)


def _match_value(value: object, path: str) -> Any:
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    hint = " (is_null finds null values)" if value is None else ""
    raise InvalidFilter(f"{path}: match values are str, numbers or bool, not {value!r}{hint}")


def _bounds(raw: object, path: str, check: Any) -> dict[str, Any]:
    what = path.rsplit(".", 1)[-1]
    if not isinstance(raw, dict) or not raw or set(raw) - set(_RANGE_OPS):
        raise InvalidFilter(f"{path}: {what} takes a dict with some of {list(_RANGE_OPS)}")
    bounds = {op: bound for op, bound in raw.items() if bound is not None}  # null: no bound (Qdrant)
    for bound in raw.values():
        check(bound, path, what)
    if not bounds:
        raise InvalidFilter(f"{path}: {what} bounds must be numbers; null leaves one out, but give one")
    return bounds


def _range_bound(bound: object, path: str, what: str) -> None:
    if bound is None:
        return
    if isinstance(bound, bool) or not isinstance(bound, int | float):
        raise InvalidFilter(f"{path}: range bounds must be numbers, not {type(bound).__name__}")
    if isinstance(bound, float) and math.isnan(bound):
        raise InvalidFilter(f"{path}: range bounds must be numbers, not NaN")
    if isinstance(bound, int) and not -(2**1023) < bound < 2**1023:
        bits = bound.bit_length()
        raise InvalidFilter(f"{path}: a range bound of {bits} bits is beyond any payload number")


def _count_bound(bound: object, path: str, what: str) -> None:
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int) or bound < 0):
        raise InvalidFilter(f"{path}: values_count bounds are counts (integers >= 0), not {bound!r}")


def _parse_nested(raw: dict[str, Any], path: str) -> Nested:
    inner = raw["nested"]
    if set(raw) != {"nested"} or not isinstance(inner, dict) or set(inner) != {"key", "filter"}:
        raise InvalidFilter(
            f"{path}: nested takes {{'key': array field, 'filter': {{...}}}} and nothing else"
        )
    key = _key(inner["key"], f"{path}.nested")
    if key.endswith("[]") and len(key) > 2:  # "diet" and "diet[]" name the same array
        key = key[:-2]
    flt = inner["filter"]
    if not isinstance(flt, dict):
        raise InvalidFilter(f"{path}.nested.filter must be a dict like {{'must': [...]}}")
    return Nested(key, _parse_where(flt, f"{path}.nested.filter", in_nested=True))


def parse_delete_filter(raw: object) -> Where:
    """Parse the filter of a delete, refusing one that matches every point (an empty one, or
    `{"must": []}`, or any other that holds whatever the payload): a typo must not empty a collection."""
    where = parse_filter(raw)
    if where is None or matches_everything(where):
        raise InvalidParameter(
            f"delete with the filter {raw!r} would delete every point; name what to delete. To empty a "
            "collection on purpose, delete_collection(name) and create it again with the same settings"
        )
    return where


def matches_everything(cond: Condition) -> bool:
    """True if `cond` holds for every point, whatever its payload (decided from its shape)."""
    if isinstance(cond, Where):
        ms = cond.min_should
        return (
            all(matches_everything(c) for c in cond.must)
            and (not cond.should or any(matches_everything(c) for c in cond.should))
            and all(_matches_nothing(c) for c in cond.must_not)
            and (ms is None or sum(matches_everything(c) for c in ms.conditions) >= ms.min_count)
        )
    return False


def _matches_nothing(cond: Condition) -> bool:
    if isinstance(cond, HasId):
        return not cond.ids
    if isinstance(cond, Match):
        return not cond.values  # {"any": []}
    if isinstance(cond, Nested):
        return _matches_nothing(cond.filter)
    if isinstance(cond, Where):
        ms = cond.min_should
        return (
            any(_matches_nothing(c) for c in cond.must)
            or (bool(cond.should) and all(_matches_nothing(c) for c in cond.should))
            or any(matches_everything(c) for c in cond.must_not)
            or (ms is not None and sum(not _matches_nothing(c) for c in ms.conditions) < ms.min_count)
        )
    return False
