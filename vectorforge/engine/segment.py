"""A segment: a run of rows (id, vector, payload) with its own index and liveness bitmap.

A point may lack the primary dense vector: its row holds zeros in the index (row numbers stay the
index's labels) and is left out of every dense search by `dense_mask`.

The newest segment of a collection grows; older ones are sealed and never change on disk. A row is
live until its id is upserted again or deleted; which rows are live is derived state, rebuilt on
open from the segments' ids, their rows dead at sealing and their tombstones, in segment order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from vectorforge.engine.filter_index import FieldIndex, PayloadIndex
from vectorforge.engine.filters import Where
from vectorforge.index import VectorIndex

if TYPE_CHECKING:
    from vectorforge.engine.named import RowIndex
from vectorforge.types import Hit, PointId, SparseVector

__all__ = ["Segment"]

MASK_CACHE_SIZE = 16


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
        named: dict[str, RowIndex] | None = None,
        absent: Sequence[int] = (),
    ) -> None:
        self.name = name
        self.index = index
        self.named: dict[str, RowIndex] = named if named is not None else {}  # sparse and multi vectors
        self.ids: list[PointId] = ids if ids is not None else []
        self.payloads: list[bytes | None] = payloads if payloads is not None else []
        self.tombstones: set[PointId] = tombstones if tombstones is not None else set()
        self.max_seq = max_seq
        self.sealed = sealed
        self._live = np.ones(max(len(self.ids), 1024), dtype=bool)
        self.n_live = len(self.ids)
        # Rows without the primary dense vector; None while every row has it (the common case).
        self._has_dense: np.ndarray | None = None
        if len(absent):
            self._has_dense = np.ones(self._live.shape[0], dtype=bool)
            self._has_dense[list(absent)] = False
        # Payload indexes by key, built on first use and kept up to date by `append`.
        self.payload_index = PayloadIndex(
            lambda start, end: [self.payload(r) for r in range(start, end)], lambda: self.n
        )
        # Recent filter masks: an application sends the same filter (a tenant, a language) again and
        # again, and evaluating it costs more than the search. Keyed by the parsed filter; valid while
        # (rows, live rows) is unchanged, which holds until the next append or kill of this segment.
        self._masks: OrderedDict[Hashable, tuple[tuple[int, int], np.ndarray, int]] = OrderedDict()
        self._masks_lock = threading.Lock()

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def live(self) -> np.ndarray:
        """Liveness of rows 0..n-1 (a view)."""
        return self._live[: self.n]

    def append(
        self,
        ids: Sequence[PointId],
        vectors: np.ndarray,
        payloads: Sequence[bytes | None],
        named: dict[str, list[Any]] | None = None,
        absent: np.ndarray | None = None,
        kept: bool = False,
    ) -> int:
        """Add rows (and their named vectors by name; a row may lack them); the first new row number.
        `absent`: which rows lack the primary dense vector (their `vectors` rows are zeros). `kept`:
        the named rows are as an index of this collection keeps them (a payload update writes a
        point again with its own vectors), so no transform such as PLAID's pooling applies again."""
        start = self.n
        end = start + len(ids)
        if end > self._live.shape[0]:
            size = max(end, 2 * self._live.shape[0])
            self._live = _grown(self._live, start, size)
            if self._has_dense is not None:
                self._has_dense = _grown(self._has_dense, start, size)
        self._live[start:end] = True
        if absent is not None and absent.any():
            if self._has_dense is None:
                self._has_dense = np.ones(self._live.shape[0], dtype=bool)
            self._has_dense[start:end] = ~absent
        elif self._has_dense is not None:
            self._has_dense[start:end] = True
        self.index.add(vectors)
        for name, rows in self.named.items():
            add = rows.add_kept if kept else rows.add
            add((named or {}).get(name) or [None] * len(ids))
        self.ids.extend(ids)
        self.payloads.extend(payloads)
        self.n_live += len(ids)
        self.payload_index.extend(start, end)
        return start

    @property
    def absent(self) -> list[int]:
        """The rows without the primary dense vector."""
        if self._has_dense is None:
            return []
        rows: list[int] = np.flatnonzero(~self._has_dense[: self.n]).tolist()
        return rows

    def has_dense(self, row: int) -> bool:
        return self._has_dense is None or bool(self._has_dense[row])

    def dense_mask(
        self, where: Where | None, mask: np.ndarray | None, n_allowed: int
    ) -> tuple[np.ndarray | None, int]:
        """`mask` (None: every row; its count `n_allowed`) less the rows without the dense vector."""
        has_dense = self._has_dense
        if has_dense is None:
            return mask, n_allowed
        return self.filter_mask(
            ("dense", where), lambda: (self.live if mask is None else mask) & has_dense[: self.n]
        )

    def filter_mask(self, where: Hashable, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, int]:
        """The rows matching `where` (live rows only) and their number, cached per segment state."""
        version = (self.n, self.n_live)
        with self._masks_lock:
            found = self._masks.get(where)
            if found is not None and found[0] == version:
                self._masks.move_to_end(where)
                return found[1], found[2]
        mask = compute()
        count = int(mask.sum())
        with self._masks_lock:
            self._masks[where] = (version, mask, count)
            while len(self._masks) > MASK_CACHE_SIZE:
                self._masks.popitem(last=False)
        return mask, count

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
        return self.payload_index.field(key)

    def hits(self, scores: list[float], rows: list[int]) -> list[Hit]:
        """Hits of rows found by an index (a row below 0: FAISS found fewer than asked)."""
        ids = self.ids
        return [Hit(ids[r], s) for s, r in zip(scores, rows, strict=True) if r >= 0]

    def vector(self, row: int) -> list[float] | None:
        if not self.has_dense(row):
            return None
        return [float(x) for x in self.index.vectors()[row]]

    def named_vectors(self, row: int) -> dict[str, Any]:
        """The named vectors that row `row` has, as `Record.vectors` shows them."""
        out: dict[str, Any] = {}
        for name, rows in self.named.items():
            value = rows.row(row)
            if isinstance(value, SparseVector):
                out[name] = SparseVector(value.indices.tolist(), value.values.tolist())
            elif value is not None:
                out[name] = value.tolist()
        return out


def _grown(flags: np.ndarray, keep: int, size: int) -> np.ndarray:
    """`flags` resized to `size`, its first `keep` kept and the rest True."""
    grown = np.ones(size, dtype=bool)
    grown[:keep] = flags[:keep]
    return grown
