"""What an index that searches codes needs besides them: the quantizations it may use, the
full-precision vectors (a growing buffer in RAM, memory-mapped from the segment's `vectors.npy`
once it is on disk) and the exact re-scoring of the candidates its codes found.

Re-scoring is what lets such an index keep the merge contract (`VectorIndex`): the scores that leave
a segment are full-precision ones, whatever codes found the rows.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from vectorforge.storage import fsio
from vectorforge.types import Metric

__all__ = [
    "DEFAULT_OVERSAMPLE",
    "QUANTIZATIONS",
    "SQ_TYPES",
    "FullVectors",
    "candidate_width",
    "code_bytes",
    "default_oversample",
    "rescore",
]

VECTORS_FILE = "vectors.npy"
QUANTIZATIONS = ("none", "fp16", "sq8", "rabitq")
SQ_TYPES = {"fp16": "QT_fp16", "sq8": "QT_8bit"}
# How many times k candidates the codes find for the full vectors to re-score, by default.
# One bit a dimension ranks coarsely: RaBitQ needs about 10x (recall@10 0.96 at 384 dims on
# clustered unit vectors, against 0.64 at 1x).
DEFAULT_OVERSAMPLE = {"none": 1.0, "fp16": 1.0, "sq8": 2.0, "rabitq": 10.0}


def default_oversample(params: dict[str, Any]) -> float:
    """An index's oversampling: its `oversample` parameter, or its quantization's default."""
    return float(params.get("oversample", DEFAULT_OVERSAMPLE[params.get("quantization", "none")]))


def candidate_width(k: int, oversample: float, rows: int) -> int:
    """How many candidates the codes find for `k` results: `k * oversample`, at most every row."""
    return min(rows, max(k, math.ceil(k * oversample)))


def code_bytes(quantization: str, dim: int) -> float:
    """Bytes of one vector's code under `quantization` (RaBitQ: one bit a dimension and its
    correction factors)."""
    return {"none": 4.0 * dim, "fp16": 2.0 * dim, "sq8": float(dim), "rabitq": dim / 8 + 8}[quantization]


class FullVectors:
    """Row-aligned float32 vectors: appended in RAM, or read from a segment's file (a memory map:
    the kernel keeps the rows re-scoring touches, and may drop them under memory pressure)."""

    def __init__(self, dim: int, data: np.ndarray | None = None) -> None:
        self.dim = dim
        self._data = data if data is not None else np.empty((1024, dim), dtype=np.float32)
        self.n = 0 if data is None else int(data.shape[0])

    def add(self, vectors: np.ndarray) -> None:
        need = self.n + vectors.shape[0]
        if need > self._data.shape[0]:  # a mapped file is full: its first add copies it to RAM
            grown = np.empty((max(need, 2 * self._data.shape[0]), self.dim), dtype=np.float32)
            grown[: self.n] = self._data[: self.n]
            self._data = grown
        self._data[self.n : need] = vectors
        self.n = need

    def view(self) -> np.ndarray:
        return self._data[: self.n]

    def keep(self, data: np.ndarray) -> None:
        """Hold `data` (the same rows, contiguous) in place of the buffer."""
        self._data, self.n = data, int(data.shape[0])

    def save(self, folder: Path) -> None:
        vectors = np.ascontiguousarray(self.view())
        fsio.write_with(folder / VECTORS_FILE, lambda path: np.save(path, vectors))

    @classmethod
    def load(cls, folder: Path, dim: int) -> FullVectors:
        return cls(dim, np.load(folder / VECTORS_FILE, mmap_mode="r"))


def rescore(
    vectors: np.ndarray, queries: np.ndarray, candidates: np.ndarray, k: int, metric: Metric
) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` of each query's candidate rows (-1: none) by their full-precision score:
    (scores, rows), each (nq, k), best first, -inf and -1 where fewer candidates were found.

    One FAISS call over the rows by index (no gathered copy), which reads a memory map in place."""
    nq, width = candidates.shape
    if width == 0 or vectors.shape[0] == 0:
        return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
    if (candidates < 0).any():  # FAISS reads a query's candidates up to the first -1: put them last
        order = np.argsort(candidates < 0, axis=1, kind="stable")
        candidates = np.take_along_axis(candidates, order, axis=1)
    ids = np.ascontiguousarray(candidates, dtype=np.int64)
    base = np.ascontiguousarray(vectors, dtype=np.float32)  # a view when it already is (a memory map)
    dist = np.empty((nq, k), dtype=np.float32)
    rows = np.empty((nq, k), dtype=np.int64)
    ptr = faiss.swig_ptr
    by_idx = faiss.knn_L2sqr_by_idx if metric is Metric.L2 else faiss.knn_inner_products_by_idx
    # the stride between queries' candidates is given: its default, -1, is not read as documented
    by_idx(
        ptr(queries),
        ptr(base),
        ptr(ids),
        base.shape[1],
        nq,
        base.shape[0],
        width,
        k,
        ptr(dist),
        ptr(rows),
        width,
    )
    if metric is Metric.L2:
        np.sqrt(np.maximum(dist, 0.0, out=dist), out=dist)
        np.negative(dist, out=dist)
    elif metric is Metric.COSINE:  # as exact search caps it
        np.minimum(dist, 1.0, out=dist)
    if rows.min() < 0:
        dist[rows < 0] = -np.inf
    return dist, rows
