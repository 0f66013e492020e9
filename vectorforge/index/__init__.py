"""ANN indexes behind one interface, all on FAISS: `flat` (exact), `hnsw`, `ivfpq`."""

from __future__ import annotations

from typing import Any

from vectorforge.index.base import SearchParams, VectorIndex
from vectorforge.index.exact import exact_topk
from vectorforge.index.flat import FlatIndex
from vectorforge.index.hnsw import HNSWIndex
from vectorforge.index.ivfpq import IVFFlatIndex, IVFPQIndex
from vectorforge.types import IndexKind, Metric

__all__ = [
    "FlatIndex",
    "HNSWIndex",
    "IVFPQIndex",
    "SearchParams",
    "VectorIndex",
    "exact_topk",
    "index_class",
    "new_index",
]

_CLASSES: dict[IndexKind, type[VectorIndex]] = {
    IndexKind.FLAT: FlatIndex,
    IndexKind.HNSW: HNSWIndex,
    IndexKind.IVFPQ: IVFPQIndex,
    IndexKind.IVFFLAT: IVFFlatIndex,
}


def index_class(kind: IndexKind) -> type[VectorIndex]:
    """The class implementing `kind`."""
    return _CLASSES[kind]


def new_index(kind: IndexKind, dim: int, metric: Metric, params: dict[str, Any]) -> VectorIndex:
    """An empty index of `kind`; search-time keys (ef, nprobe, rerank) in `params` become defaults."""
    return _CLASSES[kind](dim, metric, params)
