"""`ivfpq`: inverted lists with product-quantized codes, for collections larger than RAM as float32.

The codes live in RAM (dim / 8 bytes a vector by default, 48 bytes for 384 dims against 1,536 as
float32); the full vectors stay on disk (memory-mapped) and are read only to re-score candidates.
Re-scoring makes the scores exact, so that segments and shards, each with its own codebook, merge
correctly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from vectorforge.errors import InvalidParameter
from vectorforge.index.base import (
    MAX_OVERSAMPLE,
    Allowed,
    SearchParams,
    VectorIndex,
    bitmap_selector,
    write_faiss,
)
from vectorforge.index.exact import distances_to_scores, faiss_metric
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

__all__ = ["IVFFlatIndex", "IVFPQIndex"]

# Below this many rows a segment is searched exactly: k-means and PQ need data to train on.
MIN_TRAIN_ROWS = 2_000


class IVFPQIndex(VectorIndex):
    """Compressed index.

    Args (index_params):
        nlist: inverted lists (default about 4 * sqrt(rows)).
        m: sub-quantizers, must divide dim (default: dim / 8, or the nearest divisor below).
        nbits: bits per code (default 8).
        nprobe: lists visited per query (default 16).
        rerank: candidates re-scored at full precision, as a multiple of k (default 4).

    Rows are searched exactly until the segment is sealed and trained.
    """

    kind = IndexKind.IVFPQ
    vectors_on_disk = True
    faiss_types: ClassVar[tuple[str, ...]] = ("IndexIVFPQ",)
    allowed_params: ClassVar[dict[str, Allowed]] = {
        "nlist": (1, 1 << 20),
        "m": (1, 4096),
        "nbits": (4, 12),
        "nprobe": (1, 1 << 20),
        "rerank": (1, 1000),
    }

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """In RAM: each row's code (m * nbits bits) and its 8-byte id in an inverted list, and the
        coarse centroids; the full vectors stay on disk (memory-mapped, read to re-score)."""
        m = int(params.get("m") or _default_m(dim))
        nbits = int(params.get("nbits", 8))
        nlist = int(params.get("nlist") or max(1, 4 * math.sqrt(max(n, 1))))
        return int(n * (m * nbits / 8 + 8) + nlist * dim * 4 + (1 << nbits) * dim * 4)

    def __init__(
        self,
        dim: int,
        metric: Metric,
        params: dict[str, Any],
        index: Any = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        super().__init__(dim, metric, params)
        m = self.params.get("m")
        if m is not None and dim % m:
            raise InvalidParameter(f"ivfpq parameter m={m} must divide dim={dim}")
        self.index = index
        self._full = FullVectors(dim, vectors)
        self._plain_params: dict[int, Any] = {}

    @property
    def ntotal(self) -> int:
        return self._full.n

    @property
    def trained(self) -> bool:
        return self.index is not None

    def add(self, vectors: np.ndarray) -> None:
        # A trained index takes rows too: a seal that failed to reach the disk leaves the segment
        # growing with its index already trained, and it must go on taking writes.
        if self.index is not None:
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self._full.add(vectors)

    def vectors(self) -> np.ndarray:
        return self._full.view()

    def seal(self) -> None:
        n = self._full.n
        if self.index is not None or n < MIN_TRAIN_ROWS:
            return
        data = np.ascontiguousarray(self.vectors())
        # FAISS's k-means wants about 39 points per list; a segment with fewer rows than the `nlist`
        # asked for gets fewer lists (a write must never fail because its segment is small).
        most = max(1, n // 39)
        nlist = min(self.params.get("nlist") or int(np.clip(4 * math.sqrt(n), 1, most)), most)
        index = self._make_ivf(self._coarse_quantizer(), nlist)
        index.train(data)
        index.add(data)
        self.index = index
        self._full.keep(data)

    def _coarse_quantizer(self) -> Any:
        """What assigns a vector to its list: exact over the centroids (an HNSW graph over them for
        `ivfflat` with coarse="hnsw")."""
        return faiss.IndexFlat(self.dim, faiss_metric(self.metric))

    def _make_ivf(self, quantizer: Any, nlist: int) -> Any:
        """The untrained FAISS index this kind builds at sealing."""
        m = self.params.get("m") or _default_m(self.dim)
        nbits = self.params.get("nbits", 8)
        return faiss.IndexIVFPQ(quantizer, self.dim, nlist, m, nbits, faiss_metric(self.metric))

    def _ivf_search(
        self, queries: np.ndarray, n: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's IVF search for `n` results; a filter widens nprobe by 1/selectivity."""
        nprobe = params.nprobe or self.params.get("nprobe", 16)
        nq = queries.shape[0]
        dist = np.empty((nq, n), dtype=np.float32)
        rows = np.empty((nq, n), dtype=np.int64)
        bits = None
        if mask is None:
            nprobe = min(nprobe, self.index.nlist)
            search_params = self._plain_params.get(nprobe)
            if search_params is None:  # immutable once made: shared by concurrent searches
                search_params = self._search_parameters(nprobe)
                if len(self._plain_params) < 64:  # a few settings are in use at a time
                    self._plain_params[nprobe] = search_params
        else:
            nprobe = min(self.index.nlist, math.ceil(nprobe / max(selectivity, 1e-6)))
            selector, bits = bitmap_selector(mask)
            search_params = self._search_parameters(nprobe, selector)
        # FAISS's Python wrapper re-checks and re-converts what the engine has already validated.
        self.index.search_c(
            nq, faiss.swig_ptr(queries), n, faiss.swig_ptr(dist), faiss.swig_ptr(rows), search_params
        )
        del bits  # the selector reads the bitmap until the search returns
        return dist, rows

    def _search_parameters(self, nprobe: int, selector: Any = None) -> Any:
        made = faiss.SearchParametersIVF(nprobe=nprobe)
        if selector is not None:
            made.sel = selector
        return made

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return self.exact_search(queries, k, mask)
        multiple = params.oversample or params.rerank or self.params.get("rerank", 4)
        return self._rescored(queries, k, multiple, mask, selectivity, params)

    def _rescored(
        self,
        queries: np.ndarray,
        k: int,
        multiple: float,
        mask: np.ndarray | None,
        selectivity: float,
        params: SearchParams,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The codes' best `k * multiple` rows, re-scored at full precision: the best k of them."""
        width = candidate_width(k, multiple, self.ntotal)
        _, candidates = self._ivf_search(queries, width, mask, selectivity, params)
        return rescore(self.vectors(), queries, candidates, k, self.metric)

    def save(self, folder: Path) -> None:
        self._full.save(folder)
        if self.index is not None:
            write_faiss(self.index, folder / "index.faiss")

    @classmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> IVFPQIndex:
        vectors = FullVectors.load(folder, dim).view()
        path = folder / "index.faiss"
        index = faiss.read_index(str(path)) if path.exists() else None
        return cls(dim, metric, params, index, vectors)


def _default_m(dim: int) -> int:
    target = max(1, dim // 8)
    return max(d for d in range(1, target + 1) if dim % d == 0)


class IVFFlatIndex(IVFPQIndex):
    """Inverted lists; what they hold is the `quantization`.

    Args (index_params):
        nlist: inverted lists (default about 4 * sqrt(rows)).
        nprobe: lists visited per query (default 16).
        quantization: "none" (full vectors: exact distances within the lists probed), "fp16",
            "sq8" (a byte a dimension) or "rabitq" (a bit a dimension, RaBitQ).
        oversample: a quantized index finds `k * oversample` candidates by their codes and
            re-scores them from the full vectors, memory-mapped from the segment (default 1 for
            fp16, 2 for sq8, 10 for rabitq); also a search parameter.
        coarse: "flat" (exact nearest lists) or "hnsw" (a graph over the centroids: cheaper with
            many lists).

    Fast where the data falls into clusters (a query needs few lists). Without quantization it
    keeps full vectors in RAM, as `hnsw` without the graph.
    """

    kind = IndexKind.IVFFLAT
    faiss_types = ("IndexIVFFlat", "IndexIVFScalarQuantizer", "IndexIVFRaBitQ")
    allowed_params: ClassVar[dict[str, Allowed]] = {
        "nlist": (1, 1 << 20),
        "nprobe": (1, 1 << 20),
        "quantization": QUANTIZATIONS,
        "oversample": (1.0, MAX_OVERSAMPLE),
        "coarse": ("flat", "hnsw"),
    }

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """The inverted lists hold each vector's code and its 8-byte id, plus the centroids (and
        their graph); a quantized index's full vectors stay on disk (memory-mapped, read to re-score)."""
        nlist = int(params.get("nlist") or max(1, 4 * math.sqrt(max(n, 1))))
        centroids = nlist * (dim * 4 + (8 * 32 + 16 if params.get("coarse") == "hnsw" else 0))
        return int(n * (code_bytes(params.get("quantization", "none"), dim) + 8) + centroids)

    def __init__(
        self,
        dim: int,
        metric: Metric,
        params: dict[str, Any],
        index: Any = None,
        vectors: np.ndarray | None = None,
    ) -> None:
        super().__init__(dim, metric, params, index, vectors)
        self.quantization: str = self.params.get("quantization", "none")
        self.oversample = default_oversample(self.params)

    def _coarse_quantizer(self) -> Any:
        if self.params.get("coarse") == "hnsw":
            return faiss.IndexHNSWFlat(self.dim, 32, faiss_metric(self.metric))
        return super()._coarse_quantizer()

    def _make_ivf(self, quantizer: Any, nlist: int) -> Any:
        metric = faiss_metric(self.metric)
        if self.quantization == "rabitq":
            return faiss.IndexIVFRaBitQ(quantizer, self.dim, nlist, metric)
        if self.quantization in SQ_TYPES:
            qtype = getattr(faiss.ScalarQuantizer, SQ_TYPES[self.quantization])
            # codes of the vectors, not of their residuals: the same recall here, and no distance
            # table to build for each list a query visits (bench/quantized.py)
            return faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, qtype, metric, False)
        return faiss.IndexIVFFlat(quantizer, self.dim, nlist, metric)

    def _search_parameters(self, nprobe: int, selector: Any = None) -> Any:
        made = (
            faiss.IVFRaBitQSearchParameters()
            if self.quantization == "rabitq"
            else faiss.SearchParametersIVF()
        )
        made.nprobe = nprobe
        if self.params.get("coarse") == "hnsw":
            # The walk over the centroids need not be wide: ef 16 finds the nearest lists as well as
            # 64 (recall@10 0.960 against 0.962 at nprobe 2, 200k x 384) in half the time.
            made.quantizer_params = faiss.SearchParametersHNSW(efSearch=max(16, 2 * nprobe))
        if selector is not None:
            made.sel = selector
        return made

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return self.exact_search(queries, k, mask)
        if self.quantization != "none":
            multiple = params.oversample or self.oversample
            return self._rescored(queries, k, multiple, mask, selectivity, params)
        dist, rows = self._ivf_search(queries, k, mask, selectivity, params)
        scores = np.where(rows >= 0, distances_to_scores(dist, self.metric), -np.inf).astype(np.float32)
        return scores, rows
