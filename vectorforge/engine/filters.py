"""Qdrant-style payload filters: parsing into a small condition tree, and evaluation to row masks.

Grammar::

    filter    := {"must": [cond...], "should": [cond...], "must_not": [cond...]}   (any subset)
    cond      := filter                                          (nested)
               | {"key": k, "match": v}                          v: str | number | bool
               | {"key": k, "match_any": [v, ...]}
               | {"key": k, "range": {"gt"|"gte"|"lt"|"lte": number, ...}}
               | {"has_id": [id, ...]}

`key` may be a dotted path into nested objects ("meta.lang"). A payload value that is a list matches
when any element matches, as in Qdrant. `should` holds when at least one of its conditions does.

Numbers are compared by value, exactly, as JSON has one number type: `match` 1 matches 1 and 1.0
(and `range` agrees), integers beyond 2**53 compare exactly (2**53 + 1 > 2**53), and a bool is not
a number (True does not match 1).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vectorforge.errors import InvalidFilter, InvalidParameter
from vectorforge.types import PointId

__all__ = [
    "Condition",
    "FieldIndex",
    "HasId",
    "Match",
    "Range",
    "Where",
    "evaluate",
    "matches_everything",
    "parse_delete_filter",
    "parse_filter",
]

_RANGE_OPS = ("gt", "gte", "lt", "lte")
MAX_DEPTH = 32  # nesting levels of a filter


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    values: tuple[Any, ...]


Number = int | float


@dataclass(frozen=True, slots=True)
class Range:
    key: str
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None


@dataclass(frozen=True, slots=True)
class HasId:
    ids: frozenset[PointId]


@dataclass(frozen=True, slots=True)
class Where:
    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()


Condition = Match | Range | HasId | Where


def parse_filter(raw: object) -> Where | None:
    """Parse a filter dict; None/{} mean no filter. Raises InvalidFilter naming the bad part."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidFilter(f"filter must be a dict like {{'must': [...]}}, not {type(raw).__name__}")
    if not raw:
        return None
    where = _parse_where(raw, "filter")
    return where


def _parse_where(raw: dict[str, Any], path: str) -> Where:
    if path.count("[") > MAX_DEPTH:
        raise InvalidFilter(f"{path}: filters nest at most {MAX_DEPTH} levels deep")
    unknown = set(raw) - {"must", "should", "must_not"}
    if unknown:
        raise InvalidFilter(
            f"{path}: unknown keys {sorted(unknown)}; a filter has 'must', 'should' and/or 'must_not' lists"
        )
    parts: dict[str, tuple[Condition, ...]] = {}
    for clause in ("must", "should", "must_not"):
        items = raw.get(clause, [])
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise InvalidFilter(f"{path}.{clause} must be a list of conditions, not {type(items).__name__}")
        parts[clause] = tuple(_parse_condition(c, f"{path}.{clause}[{i}]") for i, c in enumerate(items))
    return Where(**parts)


def _parse_condition(raw: object, path: str) -> Condition:
    if not isinstance(raw, dict):
        raise InvalidFilter(f"{path} must be a dict, not {type(raw).__name__}")
    if set(raw) & {"must", "should", "must_not"}:
        return _parse_where(raw, path)
    if "has_id" in raw:
        if set(raw) != {"has_id"} or not isinstance(raw["has_id"], list):
            raise InvalidFilter(f"{path}: has_id takes a list of point ids and nothing else")
        for pid in raw["has_id"]:
            if isinstance(pid, bool) or not isinstance(pid, int | str):
                raise InvalidFilter(f"{path}: has_id holds {pid!r}, but ids are int or str")
        return HasId(frozenset(raw["has_id"]))
    key = raw.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidFilter(
            f"{path}: a condition needs a 'key' (payload field) with 'match', 'match_any' or 'range', "
            "or is 'has_id' or a nested filter"
        )
    ops = set(raw) - {"key"}
    if len(ops) != 1:
        raise InvalidFilter(f"{path}: give exactly one of 'match', 'match_any', 'range' for key {key!r}")
    (op,) = ops
    value = raw[op]
    if op == "match":
        return Match(key, (_match_value(value, path),))
    if op == "match_any":
        if not isinstance(value, list) or not value:
            raise InvalidFilter(f"{path}: match_any takes a non-empty list of values")
        return Match(key, tuple(_match_value(v, path) for v in value))
    if op == "range":
        if not isinstance(value, dict) or not value or set(value) - set(_RANGE_OPS):
            raise InvalidFilter(f"{path}: range takes a dict with some of {list(_RANGE_OPS)}")
        for bound in value.values():
            if isinstance(bound, bool) or not isinstance(bound, int | float):
                raise InvalidFilter(f"{path}: range bounds must be numbers, not {type(bound).__name__}")
            if isinstance(bound, float) and math.isnan(bound):
                raise InvalidFilter(f"{path}: range bounds must be numbers, not NaN")
            if isinstance(bound, int) and not -(2**1023) < bound < 2**1023:
                raise InvalidFilter(
                    f"{path}: a range bound of {bound.bit_length()} bits is beyond any payload number"
                )
        return Range(key, **value)  # ints stay ints: they compare exactly
    raise InvalidFilter(f"{path}: unknown condition {op!r}; use 'match', 'match_any' or 'range'")


def _match_value(value: object, path: str) -> Any:
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise InvalidFilter(f"{path}: match values are str, numbers or bool, not {value!r}")


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
        return (
            all(matches_everything(c) for c in cond.must)
            and (not cond.should or any(matches_everything(c) for c in cond.should))
            and all(_matches_nothing(c) for c in cond.must_not)
        )
    return False


def _matches_nothing(cond: Condition) -> bool:
    if isinstance(cond, HasId):
        return not cond.ids
    if isinstance(cond, Where):
        return (
            any(_matches_nothing(c) for c in cond.must)
            or (bool(cond.should) and all(_matches_nothing(c) for c in cond.should))
            or any(matches_everything(c) for c in cond.must_not)
        )
    return False


def _tag(value: Any) -> tuple[bool, Any]:
    # True == 1 in Python; a filter on 1 must not match True.
    return (type(value) is bool, value)


def get_path(payload: dict[str, Any] | None, key: str) -> Any:
    """The value at a dotted `key`, or None."""
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class FieldIndex:
    """Rows by value for one payload key of one segment: equality lookups and numeric ranges."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.n = 0
        self._by_value: dict[tuple[bool, Any], list[int]] = {}
        self._num_rows: list[int] = []
        self._num_vals: list[Number] = []  # as stored: ints stay exact
        self._num_cache: tuple[np.ndarray, np.ndarray] | None = None

    def extend(self, payloads: Iterable[dict[str, Any] | None]) -> None:
        """Index the next rows, in order."""
        for payload in payloads:
            value = get_path(payload, self.key)
            for v in value if isinstance(value, list) else (value,):
                if isinstance(v, bool | int | float | str):  # 1.0 == 1 (and hashes alike): one key
                    self._by_value.setdefault(_tag(v), []).append(self.n)
                if isinstance(v, int | float) and not isinstance(v, bool):
                    self._num_rows.append(self.n)
                    self._num_vals.append(v)
            self.n += 1
        self._num_cache = None

    def match(self, values: Sequence[Any], n: int) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        for v in values:
            rows = self._by_value.get(_tag(v))
            if rows:
                mask[rows] = True
        return mask

    def range(self, cond: Range, n: int) -> np.ndarray:
        if self._num_cache is None:
            approx = np.asarray([float(v) for v in self._num_vals], dtype=np.float64)
            self._num_cache = (np.asarray(self._num_rows, dtype=np.int64), approx)
        rows, vals = self._num_cache
        keep = np.ones(vals.shape[0], dtype=bool)
        for bound, compare in ((cond.gt, _GT), (cond.gte, _GE), (cond.lt, _LT), (cond.lte, _LE)):
            if bound is None:
                continue
            # Rounding to float64 keeps order, so the float comparison is exact wherever the two
            # sides round apart; where they round equal (2**53 + 1 and 2**53) Python compares exactly.
            approx_bound = float(bound)
            holds = compare(vals, approx_bound)
            tied = np.flatnonzero(vals == approx_bound)
            if tied.size:
                holds[tied] = [bool(compare(self._num_vals[i], bound)) for i in tied.tolist()]
            keep &= holds
        mask = np.zeros(n, dtype=bool)
        mask[rows[keep]] = True
        return mask


_GT, _GE, _LT, _LE = operator.gt, operator.ge, operator.lt, operator.le


def evaluate(
    cond: Condition,
    n: int,
    field: Callable[[str], FieldIndex],
    rows_of_ids: Callable[[frozenset[PointId]], np.ndarray],
) -> np.ndarray:
    """The mask of the `n` rows of one segment that satisfy `cond`."""
    if isinstance(cond, Match):
        return field(cond.key).match(cond.values, n)
    if isinstance(cond, Range):
        return field(cond.key).range(cond, n)
    if isinstance(cond, HasId):
        mask = np.zeros(n, dtype=bool)
        mask[rows_of_ids(cond.ids)] = True
        return mask
    mask = np.ones(n, dtype=bool)
    for c in cond.must:
        mask &= evaluate(c, n, field, rows_of_ids)
    if cond.should:
        any_of = np.zeros(n, dtype=bool)
        for c in cond.should:
            any_of |= evaluate(c, n, field, rows_of_ids)
        mask &= any_of
    for c in cond.must_not:
        mask &= ~evaluate(c, n, field, rows_of_ids)
    return mask
