"""`flat`: exact search, FAISS IndexFlat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vectorforge.index.base import SearchParams, VectorIndex, bitmap_selector, write_faiss
from vectorforge.index.exact import distances_to_scores, exact_topk, faiss_metric
from vectorforge.types import IndexKind, Metric

__all__ = ["FlatIndex", "flat_vectors"]


def flat_vectors(index: Any, dim: int) -> np.ndarray:
    """A zero-copy (n, dim) view of an IndexFlat's storage."""
    n = index.ntotal
    if n == 0:
        return np.empty((0, dim), dtype=np.float32)
    view: np.ndarray = faiss.rev_swig_ptr(index.get_xb(), n * dim).reshape(n, dim)
    return view


def flat_exact_search(
    index: Any, queries: np.ndarray, k: int, mask: np.ndarray | None, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k over an IndexFlat, restricted to `mask`.

    Few rows: copy them out and scan them (cheapest). Many rows: let FAISS scan in place, skipping
    rows outside the bitmap; copying a tenth of 200k x 384 floats costs ~8x more than that.
    """
    n = index.ntotal
    if mask is not None:
        rows = np.flatnonzero(mask)
        if rows.shape[0] * 50 < n:
            return exact_topk(flat_vectors(index, index.d), queries, k, metric, rows)
        selector, bits = bitmap_selector(mask)
        dist, labels = index.search(queries, k, params=faiss.SearchParameters(sel=selector))
        del bits
    else:
        dist, labels = index.search(queries, k)
    scores = distances_to_scores(dist, metric)
    return np.where(labels >= 0, scores, -np.inf).astype(np.float32), labels


class FlatIndex(VectorIndex):
    """Exact search over every row. No parameters. Best up to ~100k vectors or as an oracle."""

    kind = IndexKind.FLAT
    faiss_types = ("IndexFlat", "IndexFlatIP", "IndexFlatL2")

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
        return self.exact_search(queries, k, mask)

    def exact_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return flat_exact_search(self.index, queries, k, mask, self.metric)

    def save(self, folder: Path) -> None:
        write_faiss(self.index, folder / "index.faiss")

    @classmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> FlatIndex:
        return cls(dim, metric, params, faiss.read_index(str(folder / "index.faiss")))
