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
from vectorforge.index.base import SearchParams, VectorIndex, bitmap_selector, write_faiss
from vectorforge.index.exact import distances_to_scores, faiss_metric
from vectorforge.storage import fsio
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
    faiss_types = ("IndexIVFPQ",)
    allowed_params: ClassVar[dict[str, tuple[int, int]]] = {
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
        self._data = vectors if vectors is not None else np.empty((1024, dim), dtype=np.float32)
        self._n = 0 if vectors is None else vectors.shape[0]

    @property
    def ntotal(self) -> int:
        return self._n

    @property
    def trained(self) -> bool:
        return self.index is not None

    def add(self, vectors: np.ndarray) -> None:
        # A trained index takes rows too: a seal that failed to reach the disk leaves the segment
        # growing with its index already trained, and it must go on taking writes.
        if self.index is not None:
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        need = self._n + vectors.shape[0]
        if need > self._data.shape[0]:
            grown = np.empty((max(need, 2 * self._data.shape[0]), self.dim), dtype=np.float32)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = vectors
        self._n = need

    def vectors(self) -> np.ndarray:
        return self._data[: self._n]

    def seal(self) -> None:
        if self.index is not None or self._n < MIN_TRAIN_ROWS:
            return
        data = np.ascontiguousarray(self.vectors())
        # FAISS's k-means wants about 39 points per list; a segment with fewer rows than the `nlist`
        # asked for gets fewer lists (a write must never fail because its segment is small).
        most = max(1, self._n // 39)
        nlist = min(self.params.get("nlist") or int(np.clip(4 * math.sqrt(self._n), 1, most)), most)
        quantizer = faiss.IndexFlat(self.dim, faiss_metric(self.metric))
        index = self._make_ivf(quantizer, nlist)
        index.train(data)
        index.add(data)
        self.index = index
        self._data = data

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
        bits = None
        if mask is None:
            search_params = faiss.SearchParametersIVF(nprobe=nprobe)
        else:
            nprobe = min(self.index.nlist, math.ceil(nprobe / max(selectivity, 1e-6)))
            selector, bits = bitmap_selector(mask)
            search_params = faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
        dist, rows = self.index.search(queries, n, params=search_params)
        del bits  # the selector reads the bitmap until the search returns
        return dist, rows

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return self.exact_search(queries, k, mask)
        rerank = params.rerank or self.params.get("rerank", 4)
        _, candidates = self._ivf_search(queries, min(self._n, k * rerank), mask, selectivity, params)
        return self._rescore(queries, candidates, k)

    def _rescore(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores for each query's candidates, then the best k of them."""
        data = self.vectors()
        valid = candidates >= 0
        vecs = data[np.where(valid, candidates, 0)]  # (nq, c, dim)
        if self.metric is Metric.L2:
            scores = -np.linalg.norm(vecs - queries[:, None, :], axis=2)
        else:
            scores = np.einsum("qcd,qd->qc", vecs, queries)
            if self.metric is Metric.COSINE:  # as every index caps it (exact.distances_to_scores)
                scores = np.minimum(scores, 1.0)
        scores = np.where(valid, scores, -np.inf).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top_scores = np.take_along_axis(scores, order, axis=1)
        top_rows = np.where(np.isfinite(top_scores), np.take_along_axis(candidates, order, axis=1), -1)
        if top_scores.shape[1] < k:
            pad = k - top_scores.shape[1]
            top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
            top_rows = np.pad(top_rows, ((0, 0), (0, pad)), constant_values=-1)
        return top_scores, top_rows

    def save(self, folder: Path) -> None:
        vectors = np.ascontiguousarray(self.vectors())
        fsio.write_with(folder / "vectors.npy", lambda path: np.save(path, vectors))
        if self.index is not None:
            write_faiss(self.index, folder / "index.faiss")

    @classmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> IVFPQIndex:
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        path = folder / "index.faiss"
        index = faiss.read_index(str(path)) if path.exists() else None
        return cls(dim, metric, params, index, vectors)


def _default_m(dim: int) -> int:
    target = max(1, dim // 8)
    return max(d for d in range(1, target + 1) if dim % d == 0)


class IVFFlatIndex(IVFPQIndex):
    """Inverted lists of full vectors: exact distances within the lists a query probes.

    Args (index_params):
        nlist: inverted lists (default about 4 * sqrt(rows)).
        nprobe: lists visited per query (default 16).

    Fast where the data falls into clusters (a query needs few lists); it keeps full vectors, so it
    needs the memory of `hnsw` without the graph. Scores need no re-scoring: they are exact.
    """

    kind = IndexKind.IVFFLAT
    faiss_types = ("IndexIVFFlat",)
    allowed_params: ClassVar[dict[str, tuple[int, int]]] = {"nlist": (1, 1 << 20), "nprobe": (1, 1 << 20)}

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """The inverted lists hold every full vector and its 8-byte id, plus the centroids."""
        nlist = int(params.get("nlist") or max(1, 4 * math.sqrt(max(n, 1))))
        return int(n * (4 * dim + 8) + nlist * dim * 4)

    def _make_ivf(self, quantizer: Any, nlist: int) -> Any:
        return faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss_metric(self.metric))

    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.index is None:
            return self.exact_search(queries, k, mask)
        dist, rows = self._ivf_search(queries, k, mask, selectivity, params)
        scores = np.where(rows >= 0, distances_to_scores(dist, self.metric), -np.inf).astype(np.float32)
        return scores, rows
