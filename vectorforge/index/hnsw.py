"""`hnsw`: FAISS IndexHNSWFlat, a navigable small-world graph over full-precision vectors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from vectorforge.errors import InvalidParameter
from vectorforge.index.base import (
    MAX_EF,
    MAX_OVERSAMPLE,
    Allowed,
    SearchParams,
    VectorIndex,
    bitmap_selector,
    write_faiss,
)
from vectorforge.index.exact import distances_to_scores, faiss_metric
from vectorforge.index.flat import flat_exact_search, flat_vectors
from vectorforge.index.ivfpq import MIN_TRAIN_ROWS
from vectorforge.index.rescore import (
    QUANTIZATIONS,
    SQ_TYPES,
    FullVectors,
    candidate_width,
    code_bytes,
    default_oversample,
    rescore,
)
from vectorforge.types import IndexKind, Metric

__all__ = ["HNSWIndex"]


class HNSWIndex(VectorIndex):
    """Graph index.

    Args (index_params):
        M: links per node (default 32): more links, better recall, more memory.
        ef_construction: candidate list while building (default 200).
        ef: candidate list while searching (default 64); raise it for recall, lower it for speed.
        quantization: what the graph's nodes hold: "none" (full vectors), "fp16", "sq8" (a byte a
            dimension) or "rabitq" (a bit a dimension; cosine and l2 only).
        oversample: a quantized graph finds `k * oversample` candidates by their codes and re-scores
            them from the full vectors, memory-mapped from the segment (default 1 for fp16, 2 for
            sq8, 10 for rabitq); also a search parameter.

    A filtered search lets FAISS skip rows outside the filter and widens `ef` by 1/sqrt(selectivity),
    because a graph walk that must skip many nodes otherwise ends before finding k matches. A
    quantized graph is built once its segment holds `MIN_TRAIN_ROWS` rows (its codes are trained
    on them); until then the segment is searched exactly.
    """

    kind = IndexKind.HNSW
    faiss_types = ("IndexHNSWFlat", "IndexHNSWSQ", "IndexHNSWRaBitQ")
    allowed_params: ClassVar[dict[str, Allowed]] = {
        "M": (4, 256),
        "ef_construction": (8, 4096),
        "ef": (1, MAX_EF),
        "quantization": QUANTIZATIONS,
        "oversample": (1.0, MAX_OVERSAMPLE),
    }

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """Each node's vector (or its code: a quantized graph keeps the full vectors on disk), plus
        the graph: 2M links of 4 bytes at level 0 and M on each level above, which a node reaches
        with probability 1/M**l (so about M / (M - 1) links in all), its level and its offset."""
        m = int(params.get("M", 32))
        links = 2 * m + m / (m - 1)
        return int(n * (code_bytes(params.get("quantization", "none"), dim) + 4 * links + 12))

    def __init__(
        self,
        dim: int,
        metric: Metric,
        params: dict[str, Any],
        index: Any = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        super().__init__(dim, metric, params)
        self.quantization: str = self.params.get("quantization", "none")
        if self.quantization == "rabitq" and metric is Metric.DOT:
            raise InvalidParameter(
                "hnsw with quantization 'rabitq' ranks by euclidean distance: it serves cosine and l2 "
                "collections; for dot products use index 'ivfflat' with quantization 'rabitq'"
            )
        self.oversample = default_oversample(self.params)
        self.default_ef = int(self.params.get("ef", 64))
        self._plain_params: dict[int, Any] = {}
        self._full: FullVectors | None = None
        if self.quantization != "none":
            self._full = FullVectors(dim, vectors)
            self.vectors_on_disk = True  # the full vectors, read only to re-score
        elif index is None:
            index = faiss.IndexHNSWFlat(dim, self.params.get("M", 32), faiss_metric(metric))
            index.hnsw.efConstruction = self.params.get("ef_construction", 200)
        self.index = index
        self._storage = None if self._full is not None else faiss.downcast_index(index.storage)

    @property
    def stored_metric(self) -> int:
        if self.quantization == "rabitq":  # a euclidean graph, also for cosine (unit vectors)
            return int(faiss.METRIC_L2)
        return super().stored_metric

    def _graph(self) -> Any:
        """An empty graph over codes of this quantization (trained by the caller)."""
        m = self.params.get("M", 32)
        if self.quantization == "rabitq":  # euclidean only; on unit vectors it ranks as cosine
            graph = faiss.IndexHNSWRaBitQ(self.dim, m, faiss.METRIC_L2)
        else:
            qtype = getattr(faiss.ScalarQuantizer, SQ_TYPES[self.quantization])
            graph = faiss.IndexHNSWSQ(self.dim, qtype, m, faiss_metric(self.metric))
        graph.hnsw.efConstruction = self.params.get("ef_construction", 200)
        return graph

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal) if self._full is None else self._full.n

    def add(self, vectors: np.ndarray) -> None:
        if self._full is None:
            self.index.add(vectors)
            return
        self._full.add(vectors)
        if self.index is not None:
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        elif self._full.n >= MIN_TRAIN_ROWS:  # enough rows to train the codes: build the graph
            data = np.ascontiguousarray(self._full.view())
            graph = self._graph()
            graph.train(data)
            graph.add(data)
            self.index = graph

    def vectors(self) -> np.ndarray:
        if self._full is not None:
            return self._full.view()
        return flat_vectors(self._storage, self.dim)

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._full is None:
            dist, rows = self._walk(queries, k, mask, selectivity, params.ef or self.default_ef)
            return distances_to_scores(dist, self.metric), rows
        if self.index is None:
            return self.exact_search(queries, k, mask)
        width = candidate_width(k, params.oversample or self.oversample, self.ntotal)
        _, candidates = self._walk(queries, width, mask, selectivity, params.ef or self.default_ef)
        return rescore(self._full.view(), queries, candidates, k, self.metric)

    def _walk(
        self, queries: np.ndarray, n: int, mask: np.ndarray | None, selectivity: float, ef: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The graph's best `n` rows among `mask`: FAISS's (distances, rows)."""
        ef = max(ef, n)
        if mask is None:
            search_params = self._plain_params.get(ef)
            if search_params is None:  # immutable once made: shared by concurrent searches
                search_params = faiss.SearchParametersHNSW(efSearch=ef)
                if len(self._plain_params) < 64:  # a few settings are in use at a time
                    self._plain_params[ef] = search_params
            # FAISS's Python wrapper re-checks and re-converts what the engine has already validated.
            nq = queries.shape[0]
            dist = np.empty((nq, n), dtype=np.float32)
            rows = np.empty((nq, n), dtype=np.int64)
            self.index.search_c(
                nq, faiss.swig_ptr(queries), n, faiss.swig_ptr(dist), faiss.swig_ptr(rows), search_params
            )
            return dist, rows
        # Widen by 1/sqrt(selectivity): the planner sends only filters keeping >= 8% of the rows
        # here, where this keeps recall@10 at 1.0 (bench/filtered.py) while 1/selectivity made
        # the walk several times slower than an exact scan.
        ef = min(MAX_EF, math.ceil(ef / math.sqrt(max(selectivity, 1e-6))))
        selector, bits = bitmap_selector(mask)
        search_params = faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
        dist, rows = self.index.search(queries, n, params=search_params)
        del bits
        return dist, rows

    def exact_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._full is not None:
            return super().exact_search(queries, k, mask)
        return flat_exact_search(self._storage, queries, k, mask, self.metric)

    def save(self, folder: Path) -> None:
        if self._full is not None:
            self._full.save(folder)
        if self.index is not None:
            write_faiss(self.index, folder / "index.faiss")

    @classmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> HNSWIndex:
        path = folder / "index.faiss"
        if params.get("quantization", "none") == "none":  # the graph holds the vectors: it must be there
            return cls(dim, metric, params, faiss.read_index(str(path)))
        index = faiss.read_index(str(path)) if path.exists() else None  # none: too few rows to train
        return cls(dim, metric, params, index, FullVectors.load(folder, dim).view())
