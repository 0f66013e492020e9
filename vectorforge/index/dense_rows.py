"""Exact search over a named dense vector that a point may lack: the `flat` index of a collection's
second (third, ...) dense vector.

A segment keeps one float32 row per point (zeros where the point has none) and a mask of the rows
that have one; those without never score. Scores are exact, higher-is-better as for the primary
dense vector (cosine and dot: the inner product; l2: minus the distance), and every row tied with
the k-th comes back, so that the merge breaks ties by point id.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vectorforge.errors import CorruptionError
from vectorforge.index.sparse import top_with_ties
from vectorforge.storage import fsio
from vectorforge.types import Metric

__all__ = ["DenseRows"]


class DenseRows:
    """The rows of one segment for one optional dense vector (None: the point has none)."""

    def __init__(self, dim: int, metric: Metric) -> None:
        self.dim = dim
        self.metric = metric
        self._parts: list[np.ndarray] = []
        self._has: list[bool] = []
        self._compiled: tuple[np.ndarray, np.ndarray] | None = None  # (matrix, has), published whole

    @property
    def ntotal(self) -> int:
        return len(self._has)

    def add(self, rows: Sequence[np.ndarray | None]) -> None:
        """Append rows (float32 of `dim`, already normalized for cosine) or None."""
        block = np.zeros((len(rows), self.dim), dtype=np.float32)
        present = [(i, row) for i, row in enumerate(rows) if row is not None]
        if present:
            block[[i for i, _ in present]] = np.stack([row for _, row in present])
        self._parts.append(block)
        self._has.extend(row is not None for row in rows)
        self._compiled = None

    def _matrix(self) -> tuple[np.ndarray, np.ndarray]:
        found = self._compiled
        if found is None:
            matrix = np.concatenate(self._parts) if self._parts else np.empty((0, self.dim), np.float32)
            self._parts = [matrix] if len(matrix) else []
            found = self._compiled = (matrix, np.asarray(self._has, dtype=bool))
        return found

    def add_kept(self, rows: Sequence[np.ndarray | None]) -> None:
        """Rows as another index of these rows keeps them (`add` transforms nothing here)."""
        self.add(rows)

    def row(self, row: int) -> np.ndarray | None:
        matrix, has = self._matrix()
        return matrix[row].copy() if has[row] else None

    def search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` rows that have a vector, among `mask`, and every row tied with the k-th."""
        matrix, has = self._matrix()
        allowed = has if mask is None else has & mask[: len(has)]
        candidates = np.flatnonzero(allowed)
        scores = np.full(len(has), -np.inf, dtype=np.float32)
        if len(candidates):
            rows = matrix[candidates]
            if self.metric is Metric.L2:
                scores[candidates] = -np.sqrt(np.maximum(((rows - query) ** 2).sum(axis=1), 0))
            else:
                # row by row, not BLAS: a row's score must not depend on where it sits in the matrix
                scores[candidates] = np.einsum("ij,j->i", rows, query)
                if self.metric is Metric.COSINE:  # float32 rounding: a self-score of 1.0000001
                    np.minimum(scores, 1.0, out=scores)
        return top_with_ties(scores, candidates, k)

    def save(self, path: Path) -> None:
        """One file: the rows and the mask of the rows that have a vector."""
        matrix, has = self._matrix()
        fsio.write_with(path, lambda target: np.savez(target, rows=matrix, has=has))

    @classmethod
    def load(cls, path: Path, rows: int, dim: int, metric: Metric) -> DenseRows:
        try:
            with np.load(path, allow_pickle=False) as data:
                matrix, has = data["rows"], data["has"]
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptionError(f"dense vectors {path.name} cannot be read: {exc}") from exc
        well_formed = (
            matrix.dtype == np.float32
            and matrix.ndim == 2
            and matrix.shape == (rows, dim)
            and has.dtype == bool
            and has.shape == (rows,)
            and bool(np.isfinite(matrix).all())
        )
        if not well_formed:
            raise CorruptionError(
                f"dense vectors {path.name} do not match the segment's {rows} rows of {dim}"
            )
        index = cls(dim, metric)
        index._parts = [matrix] if rows else []
        index._has = has.tolist()
        return index
