"""The index registry: every kind of index, the vector kinds it serves, its parameters (parsed and
validated by the index class itself), whether it keeps full vectors on disk, the FAISS classes its
files may hold, and its memory estimate (`estimate_bytes`, for the capacity planner).

Kinds are keyed by the vector kind they serve. Dense, on FAISS: `flat` (exact), `hnsw`, `ivfpq`,
`ivfflat`; sparse: `inverted` (BM25 or dot products); multi: `flat` (exact MaxSim). Other parts
register theirs with `register_index` (the PLAID index of `multivector/` will); `index/` never
imports from above.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, TypeVar

from vectorforge.errors import InvalidParameter
from vectorforge.index.base import SearchParams, VectorIndex
from vectorforge.index.exact import exact_topk
from vectorforge.index.flat import FlatIndex
from vectorforge.index.hnsw import HNSWIndex
from vectorforge.index.ivfpq import IVFFlatIndex, IVFPQIndex
from vectorforge.index.maxsim import MultiVectorIndex
from vectorforge.index.sparse import SparseIndex
from vectorforge.types import IndexKind, Metric

__all__ = [
    "FlatIndex",
    "IndexClass",
    "MultiVectorIndex",
    "SparseIndex",
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


class IndexClass(Protocol):
    """What the registry keeps of an index kind (a dense `VectorIndex`, the sparse inverted index,
    the multi-vector MaxSim index)."""

    kind: ClassVar[Any]  # its name within its vector kinds
    vector_kinds: ClassVar[frozenset[str]]  # "dense", "sparse", "multi"

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int: ...


T = TypeVar("T", bound=IndexClass)
_REGISTRY: dict[tuple[str, str], Any] = {}  # (vector kind, index kind) -> class


def register_index(cls: type[T]) -> type[T]:
    """Add an index kind (an `IndexClass`) for each vector kind it serves (usable as a class
    decorator); its `kind` names it. `multivector/` registers `plaid` and `muvera` for multi vectors
    this way."""
    for vector_kind in cls.vector_kinds:
        _REGISTRY[(vector_kind, str(cls.kind))] = cls
    return cls


for _cls in (FlatIndex, HNSWIndex, IVFPQIndex, IVFFlatIndex, SparseIndex, MultiVectorIndex):
    register_index(_cls)


def index_kinds(vector_kind: str = "dense") -> list[str]:
    """The registered kinds that serve `vector_kind`, sorted."""
    return sorted(kind for vk, kind in _REGISTRY if vk == vector_kind)


def index_class(kind: IndexKind | str, vector_kind: str = "dense") -> Any:
    """The class implementing `kind` for `vector_kind` vectors."""
    found = _REGISTRY.get((vector_kind, str(kind)))
    if found is None:
        known = ", ".join(index_kinds(vector_kind)) or "none"
        raise InvalidParameter(f"index {str(kind)!r} is unknown for {vector_kind} vectors; known: {known}")
    return found


def new_index(kind: IndexKind | str, dim: int, metric: Metric, params: dict[str, Any]) -> VectorIndex:
    """An empty dense index of `kind`; search-time keys (ef, nprobe, rerank) in `params` become defaults."""
    index: VectorIndex = index_class(kind)(dim, metric, params)
    return index


def estimate_bytes(
    kind: IndexKind | str,
    n: int,
    dim: int,
    params: dict[str, Any] | None = None,
    vector_kind: str = "dense",
) -> int:
    """RAM that `n` points take in an index of `kind` with `params` (validated first). `dim` is the
    vector length; for sparse vectors, the non-zero entries per point (`params`: vocabulary); for
    multi vectors, each token's (`params`: tokens_per_point)."""
    cls = index_class(kind, vector_kind)
    if vector_kind == "dense":
        params = cls(dim, Metric.COSINE, dict(params or {})).params  # the index parses its own params
    return int(cls.estimate_bytes(n, dim, dict(params or {})))
