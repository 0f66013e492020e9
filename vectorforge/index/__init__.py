"""The index registry: every kind of index, the vector kinds it serves, its parameters (parsed and
validated by the index class itself), whether it keeps full vectors on disk, the FAISS classes its
files may hold, and its memory estimate (`estimate_bytes`, for the capacity planner).

Dense kinds on FAISS: `flat` (exact), `hnsw`, `ivfpq`, `ivfflat`. Other parts register theirs with
`register_index` (the PLAID index of `multivector/` will); `index/` never imports from above.
"""

from __future__ import annotations

from typing import Any

from vectorforge.errors import InvalidParameter
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
    "estimate_bytes",
    "exact_topk",
    "index_class",
    "index_kinds",
    "new_index",
    "register_index",
]

_REGISTRY: dict[str, type[VectorIndex]] = {}


def register_index(cls: type[VectorIndex]) -> type[VectorIndex]:
    """Add an index kind (usable as a class decorator); its `kind` names it."""
    _REGISTRY[str(cls.kind)] = cls
    return cls


for _cls in (FlatIndex, HNSWIndex, IVFPQIndex, IVFFlatIndex):
    register_index(_cls)


def index_kinds(vector_kind: str = "dense") -> list[str]:
    """The registered kinds that serve `vector_kind`, sorted."""
    return sorted(k for k, c in _REGISTRY.items() if vector_kind in c.vector_kinds)


def index_class(kind: IndexKind | str) -> type[VectorIndex]:
    """The class implementing `kind`."""
    found = _REGISTRY.get(str(kind))
    if found is None:
        raise InvalidParameter(f"index {str(kind)!r} is unknown; known: {', '.join(sorted(_REGISTRY))}")
    return found


def new_index(kind: IndexKind | str, dim: int, metric: Metric, params: dict[str, Any]) -> VectorIndex:
    """An empty index of `kind`; search-time keys (ef, nprobe, rerank) in `params` become defaults."""
    return index_class(kind)(dim, metric, params)


def estimate_bytes(kind: IndexKind | str, n: int, dim: int, params: dict[str, Any] | None = None) -> int:
    """RAM that `n` vectors of `dim` take in an index of `kind` with `params` (validated first)."""
    cls = index_class(kind)
    checked = cls(dim, Metric.COSINE, dict(params or {})).params  # the index parses its own params
    return cls.estimate_bytes(n, dim, checked)
