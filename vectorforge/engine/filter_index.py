"""Evaluation of parsed filters to row masks, from per-key indexes built on first use.

A `PayloadIndex` covers a run of payloads (a segment's rows, or the objects of the arrays a nested
filter looks into) and holds, per key, a `FieldIndex` (rows by value: match, range, text, except)
and, only for the conditions that need it, a `FieldShape` (emptiness, nulls and counts of values).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from vectorforge.engine.filter_paths import flatten, parse_key, select
from vectorforge.engine.filters import (
    Condition,
    Except,
    HasId,
    IsEmpty,
    IsNull,
    Match,
    Nested,
    Range,
    Text,
    ValuesCount,
    Where,
)
from vectorforge.types import PointId

__all__ = ["FieldIndex", "FieldShape", "NestedIndex", "PayloadIndex", "evaluate", "get_path"]

Number = int | float
Payload = dict[str, Any] | None
_GT, _GE, _LT, _LE = operator.gt, operator.ge, operator.lt, operator.le


def _tag(value: Any) -> tuple[bool, Any]:
    # True == 1 in Python; a filter on 1 must not match True.
    return (type(value) is bool, value)


def get_path(payload: Payload, key: str) -> Any:
    """The value at a dotted `key` (no brackets), or None."""
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class FieldIndex:
    """Rows by value for one payload key: equality lookups, numeric ranges, substrings."""

    def __init__(self, key: str) -> None:
        self.key = key
        # None for a plain dotted key: the common case keeps its direct lookup.
        self._steps = parse_key(key) if "[" in key else None
        self.n = 0
        self._by_value: dict[tuple[bool, Any], list[int]] = {}
        self._num_rows: list[int] = []
        self._num_vals: list[Number] = []  # as stored: ints stay exact
        self._num_cache: tuple[np.ndarray, np.ndarray] | None = None

    def extend(self, payloads: Iterable[Payload]) -> None:
        """Index the next rows, in order."""
        steps = self._steps
        for payload in payloads:
            if steps is None:
                value = get_path(payload, self.key)
                elements = value if isinstance(value, list) else (value,)
            else:
                elements = flatten(select(payload, steps))
            for v in elements:
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

    def occurrences(self, values: Sequence[Any], n: int) -> np.ndarray:
        """Per row, how many of its values equal one of `values`."""
        lists = [rows for tag in {_tag(v) for v in values} if (rows := self._by_value.get(tag))]
        if not lists:
            return np.zeros(n, dtype=np.int64)
        return np.bincount(np.concatenate([np.asarray(r, dtype=np.int64) for r in lists]), minlength=n)

    def text(self, text: str, n: int) -> np.ndarray:
        """Rows with a string value containing `text` (each distinct string is tested once)."""
        mask = np.zeros(n, dtype=bool)
        for (is_bool, value), rows in self._by_value.items():
            if not is_bool and type(value) is str and text in value:
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


class FieldShape:
    """What a key holds per row beyond its values: empty or null, how many values, how many non-null."""

    def __init__(self, key: str) -> None:
        self._steps = parse_key(key)
        self._empty: list[bool] = []
        self._null: list[bool] = []
        self._non_null: list[int] = []
        self._count_rows: list[int] = []  # (row, count) per selected value: one key may select several
        self._counts: list[int] = []
        self._arrays: dict[str, np.ndarray] = {}

    def extend(self, payloads: Iterable[Payload]) -> None:
        for payload in payloads:
            row = len(self._empty)
            found = select(payload, self._steps)
            self._empty.append(all(v is None or v == [] for v in found))
            self._null.append(any(v is None or (isinstance(v, list) and None in v) for v in found))
            self._non_null.append(sum(v is not None for v in flatten(found)))
            # Qdrant counts a list's elements, 1 for another value, 0 for null or no value at all.
            counts = [0] if all(v is None for v in found) else [_count(v) for v in found]
            self._count_rows.extend([row] * len(counts))
            self._counts.extend(counts)
        self._arrays = {}

    def _array(self, name: str) -> np.ndarray:
        found = self._arrays.get(name)
        if found is None:
            found = self._arrays[name] = np.asarray(getattr(self, name))
        return found

    def empty(self) -> np.ndarray:
        return self._array("_empty").astype(bool)

    def null(self) -> np.ndarray:
        return self._array("_null").astype(bool)

    def non_null(self) -> np.ndarray:
        return self._array("_non_null")

    def values_count(self, cond: ValuesCount, n: int) -> np.ndarray:
        counts = self._array("_counts")
        keep = np.ones(counts.shape[0], dtype=bool)
        for bound, compare in ((cond.gt, _GT), (cond.gte, _GE), (cond.lt, _LT), (cond.lte, _LE)):
            if bound is not None:
                keep &= compare(counts, bound)
        mask = np.zeros(n, dtype=bool)
        mask[self._array("_count_rows")[keep].astype(np.int64)] = True
        return mask


def _count(value: Any) -> int:
    if value is None:
        return 0
    return len(value) if isinstance(value, list) else 1


class PayloadIndex:
    """Per-key indexes over payloads 0..n-1 given by `source(start, end)`, built on first use."""

    def __init__(self, source: Callable[[int, int], list[Payload]], size: Callable[[], int]) -> None:
        self._source = source
        self._size = size
        self._fields: dict[str, FieldIndex] = {}
        self._shapes: dict[str, FieldShape] = {}
        self._nested: dict[str, NestedIndex] = {}

    @property
    def n(self) -> int:
        return self._size()

    def field(self, key: str) -> FieldIndex:
        found = self._fields.get(key)
        if found is None:
            found = FieldIndex(key)
            found.extend(self._source(0, self.n))
            self._fields[key] = found
        return found

    def shape(self, key: str) -> FieldShape:
        found = self._shapes.get(key)
        if found is None:
            found = FieldShape(key)
            found.extend(self._source(0, self.n))
            self._shapes[key] = found
        return found

    def nested(self, key: str) -> NestedIndex:
        found = self._nested.get(key)
        if found is None:
            found = NestedIndex(key)
            found.extend(self._source(0, self.n))
            self._nested[key] = found
        return found

    def extend(self, start: int, end: int) -> None:
        """Index payloads start..end-1, just added."""
        if not (self._fields or self._shapes or self._nested):
            return
        payloads = self._source(start, end)  # read once for every index
        indexes: list[FieldIndex | FieldShape | NestedIndex] = [*self._fields.values()]
        for index in [*indexes, *self._shapes.values(), *self._nested.values()]:
            index.extend(payloads)


class NestedIndex:
    """The objects of the array at `key` of each payload, as payloads of their own, with their rows."""

    def __init__(self, key: str) -> None:
        self._steps = parse_key(key)
        self._objects: list[dict[str, Any]] = []
        self._rows: list[int] = []
        self._next_row = 0
        self._rows_array: np.ndarray | None = None
        self.index = PayloadIndex(lambda s, e: list(self._objects[s:e]), lambda: len(self._objects))

    def extend(self, payloads: Iterable[Payload]) -> None:
        start = len(self._objects)
        for payload in payloads:
            for value in select(payload, self._steps):
                if isinstance(value, list):  # only arrays of objects: a plain object is not looked into
                    for item in value:
                        if isinstance(item, dict):
                            self._objects.append(item)
                            self._rows.append(self._next_row)
            self._next_row += 1
        self._rows_array = None
        self.index.extend(start, len(self._objects))

    def rows(self) -> np.ndarray:
        if self._rows_array is None:
            self._rows_array = np.asarray(self._rows, dtype=np.int64)
        return self._rows_array


def _no_ids(ids: frozenset[PointId]) -> np.ndarray:
    raise AssertionError("has_id inside a nested filter is refused when parsing")


def evaluate(
    cond: Condition,
    n: int,
    index: PayloadIndex,
    rows_of_ids: Callable[[frozenset[PointId]], np.ndarray],
) -> np.ndarray:
    """The mask of the `n` rows of `index` that satisfy `cond`."""
    if isinstance(cond, Match):
        return index.field(cond.key).match(cond.values, n)
    if isinstance(cond, Range):
        return index.field(cond.key).range(cond, n)
    if isinstance(cond, Where):
        return _evaluate_where(cond, n, index, rows_of_ids)
    if isinstance(cond, HasId):
        mask = np.zeros(n, dtype=bool)
        mask[rows_of_ids(cond.ids)] = True
        return mask
    if isinstance(cond, Except):
        # A row holds when one of its non-null values is none of them: more non-null values than hits.
        hits = index.field(cond.key).occurrences(cond.values, n)
        return index.shape(cond.key).non_null() > hits
    if isinstance(cond, Text):
        return index.field(cond.key).text(cond.text, n)
    if isinstance(cond, ValuesCount):
        return index.shape(cond.key).values_count(cond, n)
    if isinstance(cond, IsEmpty):
        return index.shape(cond.key).empty()
    if isinstance(cond, IsNull):
        return index.shape(cond.key).null()
    assert isinstance(cond, Nested)
    nested = index.nested(cond.key)
    inner = evaluate(cond.filter, nested.index.n, nested.index, _no_ids)
    mask = np.zeros(n, dtype=bool)
    mask[nested.rows()[inner]] = True
    return mask


def _evaluate_where(
    cond: Where, n: int, index: PayloadIndex, rows_of_ids: Callable[[frozenset[PointId]], np.ndarray]
) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    for c in cond.must:
        mask &= evaluate(c, n, index, rows_of_ids)
    if cond.should:
        any_of = np.zeros(n, dtype=bool)
        for c in cond.should:
            any_of |= evaluate(c, n, index, rows_of_ids)
        mask &= any_of
    for c in cond.must_not:
        mask &= ~evaluate(c, n, index, rows_of_ids)
    if cond.min_should is not None:
        held = np.zeros(n, dtype=np.int64)
        for c in cond.min_should.conditions:
            held += evaluate(c, n, index, rows_of_ids)
        mask &= held >= cond.min_should.min_count
    return mask
