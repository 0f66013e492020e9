"""`hnsw`: FAISS IndexHNSWFlat, a navigable small-world graph over full-precision vectors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from vectorforge.index.base import MAX_EF, SearchParams, VectorIndex, bitmap_selector, write_faiss
from vectorforge.index.exact import distances_to_scores, faiss_metric
from vectorforge.index.flat import flat_exact_search, flat_vectors
from vectorforge.types import IndexKind, Metric

__all__ = ["HNSWIndex"]


class HNSWIndex(VectorIndex):
    """Graph index.

    Args (index_params):
        M: links per node (default 32): more links, better recall, more memory.
        ef_construction: candidate list while building (default 200).
        ef: candidate list while searching (default 64); raise it for recall, lower it for speed.

    A filtered search lets FAISS skip rows outside the filter and widens `ef` by 1/sqrt(selectivity),
    because a graph walk that must skip many nodes otherwise ends before finding k matches.
    """

    kind = IndexKind.HNSW
    faiss_types = ("IndexHNSWFlat",)
    allowed_params: ClassVar[dict[str, tuple[int, int]]] = {
        "M": (4, 256),
        "ef_construction": (8, 4096),
        "ef": (1, MAX_EF),
    }

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """Float32 vectors, plus the graph: 2M links of 4 bytes at level 0 and about M / (M - 1) times
        that over every level (a node reaches level l with probability 1/M**l), plus its level."""
        m = int(params.get("M", 32))
        links = 2 * m + m / (m - 1) * m
        return int(n * (4 * dim + 4 * links + 9))

    def __init__(self, dim: int, metric: Metric, params: dict[str, Any], index: Any = None) -> None:
        super().__init__(dim, metric, params)
        if index is None:
            index = faiss.IndexHNSWFlat(dim, self.params.get("M", 32), faiss_metric(metric))
            index.hnsw.efConstruction = self.params.get("ef_construction", 200)
        self.index = index
        self.default_ef = int(self.params.get("ef", 64))
        self._storage = faiss.downcast_index(index.storage)
        self._plain_params: dict[int, Any] = {}

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(vectors)

    def vectors(self) -> np.ndarray:
        return flat_vectors(self._storage, self.dim)

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        ef = max(params.ef or self.default_ef, k)
        if mask is None:
            search_params = self._plain_params.get(ef)
            if search_params is None:  # immutable once made: shared by concurrent searches
                search_params = self._plain_params[ef] = faiss.SearchParametersHNSW(efSearch=ef)
            # FAISS's Python wrapper re-checks and re-converts what the engine has already validated.
            nq = queries.shape[0]
            dist = np.empty((nq, k), dtype=np.float32)
            rows = np.empty((nq, k), dtype=np.int64)
            self.index.search_c(
                nq, faiss.swig_ptr(queries), k, faiss.swig_ptr(dist), faiss.swig_ptr(rows), search_params
            )
        else:
            # Widen by 1/sqrt(selectivity): the planner sends only filters keeping >= 8% of the rows
            # here, where this keeps recall@10 at 1.0 (bench/filtered.py) while 1/selectivity made
            # the walk several times slower than an exact scan.
            ef = min(MAX_EF, math.ceil(ef / math.sqrt(max(selectivity, 1e-6))))
            selector, bits = bitmap_selector(mask)
            search_params = faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
            dist, rows = self.index.search(queries, k, params=search_params)
            del bits
        return distances_to_scores(dist, self.metric), rows

    def exact_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return flat_exact_search(self._storage, queries, k, mask, self.metric)

    def save(self, folder: Path) -> None:
        write_faiss(self.index, folder / "index.faiss")

    @classmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> HNSWIndex:
        return cls(dim, metric, params, faiss.read_index(str(folder / "index.faiss")))
