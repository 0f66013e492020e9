"""A segment: a run of rows (id, vector, payload) with its own index and liveness bitmap.

The newest segment of a collection grows; older ones are sealed and never change on disk. A row is
live until its id is upserted again or deleted; which rows are live is derived state, rebuilt on
open from the segments' ids, their rows dead at sealing and their tombstones, in segment order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from vectorforge.engine.filters import FieldIndex
from vectorforge.index import VectorIndex
from vectorforge.types import PointId

__all__ = ["Segment"]


class Segment:
    """Rows in insertion order; row numbers are the index labels."""

    def __init__(
        self,
        name: str,
        index: VectorIndex,
        ids: list[PointId] | None = None,
        payloads: list[bytes | None] | None = None,
        tombstones: set[PointId] | None = None,
        max_seq: int = 0,
        sealed: bool = False,
    ) -> None:
        self.name = name
        self.index = index
        self.ids: list[PointId] = ids if ids is not None else []
        self.payloads: list[bytes | None] = payloads if payloads is not None else []
        self.tombstones: set[PointId] = tombstones if tombstones is not None else set()
        self.max_seq = max_seq
        self.sealed = sealed
        self._live = np.ones(max(len(self.ids), 1024), dtype=bool)
        self.n_live = len(self.ids)
        self._fields: dict[str, FieldIndex] = {}

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> np.ndarray:
        """Liveness of rows 0..n-1 (a view)."""
        return self._live[: self.n]

    def append(self, ids: Sequence[PointId], vectors: np.ndarray, payloads: Sequence[bytes | None]) -> int:
        """Add rows; returns the first new row number."""
        start = self.n
        end = start + len(ids)
        if end > self._live.shape[0]:
            grown = np.ones(max(end, 2 * self._live.shape[0]), dtype=bool)
            grown[:start] = self._live[:start]
            self._live = grown
        self._live[start:end] = True
        self.index.add(vectors)
        self.ids.extend(ids)
        self.payloads.extend(payloads)
        self.n_live += len(ids)
        for field in self._fields.values():
            field.extend(self.payload(r) for r in range(start, end))
        return start

    def kill(self, row: int) -> None:
        if self._live[row]:
            self._live[row] = False
            self.n_live -= 1

    def dead_rows(self) -> list[int]:
        return np.flatnonzero(~self.live).tolist()

    def payload(self, row: int) -> dict[str, Any] | None:
        blob = self.payloads[row]
        return None if blob is None else msgpack.unpackb(blob, raw=False)

    def field(self, key: str) -> FieldIndex:
        """The payload index of `key`, built on first use and kept up to date by `append`."""
        found = self._fields.get(key)
        if found is None:
            found = FieldIndex(key)
            found.extend(self.payload(r) for r in range(self.n))
            self._fields[key] = found
        return found

    def vector(self, row: int) -> list[float]:
        return [float(x) for x in self.index.vectors()[row]]
