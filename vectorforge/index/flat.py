"""`flat`: exact search, FAISS IndexFlat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vectorforge.index.base import SearchParams, VectorIndex
from vectorforge.index.exact import distances_to_scores, faiss_metric
from vectorforge.types import IndexKind, Metric

__all__ = ["FlatIndex", "flat_vectors"]


def flat_vectors(index: Any, dim: int) -> np.ndarray:
    """A zero-copy (n, dim) view of an IndexFlat's storage."""
    n = index.ntotal
    if n == 0:
        return np.empty((0, dim), dtype=np.float32)
    view: np.ndarray = faiss.rev_swig_ptr(index.get_xb(), n * dim).reshape(n, dim)
    return view


class FlatIndex(VectorIndex):
    """Exact search over every row. No parameters. Best up to ~100k vectors or as an oracle."""

    kind = IndexKind.FLAT

    def __init__(self, dim: int, metric: Metric, params: dict[str, Any], index: Any = None) -> None:
        super().__init__(dim, metric, params)
        self.index = index if index is not None else faiss.IndexFlat(dim, faiss_metric(metric))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(vectors)

    def vectors(self) -> np.ndarray:
        return flat_vectors(self.index, self.dim)

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        if mask is not None:
            return self.exact_search(queries, k, mask)
        dist, rows = self.index.search(queries, k)
        return distances_to_scores(dist, self.metric), rows

    def save(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / "index.faiss"))

    @classmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> FlatIndex:
        return cls(dim, metric, params, faiss.read_index(str(folder / "index.faiss")))
