"""Plain data shared by the engine, the server and the client.

`Hit`, `Record` and `ScrollPage` are slotted dataclasses: a search builds many of them, and a pydantic
model costs several times more per object. `CollectionConfig` is a pydantic model because it is
validated once, stored as JSON and sent over HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vectorforge.errors import InvalidName, InvalidParameter

__all__ = [
    "Dense",
    "Multi",
    "Sparse",
    "SparseVector",
    "NAME_PATTERN",
    "CollectionConfig",
    "Consistency",
    "EmbedderInfo",
    "Hit",
    "IndexKind",
    "Metric",
    "PointId",
    "Record",
    "ScrollPage",
    "Sharding",
    "UpdateResult",
    "check_consistency",
    "check_name",
]

PointId = int | str
"""A point id: a non-negative int below 2**63, or a non-empty str of at most 256 characters."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_name(name: object, what: str = "collection") -> str:
    """Return `name` if it is a safe name (it becomes a folder name), else raise InvalidName."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise InvalidName(
            f"{what} name {name!r} is not allowed; use 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'",
            name=repr(name),
        )
    return name


class Metric(StrEnum):
    """How vectors are compared. Every metric reports scores where higher is better."""

    COSINE = "cosine"  # vectors are normalized on write; score = cosine similarity
    DOT = "dot"  # score = inner product
    L2 = "l2"  # score = -euclidean distance


class IndexKind(StrEnum):
    """The ANN structure of each segment (all built on FAISS)."""

    FLAT = "flat"  # exact; parameters: none
    HNSW = "hnsw"  # graph; parameters: M, ef_construction, ef
    IVFPQ = "ivfpq"  # inverted lists + product quantization; parameters: nlist, nprobe, m, nbits, rerank
    IVFFLAT = "ivfflat"  # inverted lists of full vectors (exact distances); parameters: nlist, nprobe


class Consistency(StrEnum):
    """What a read is guaranteed to see (Milvus's four levels). One copy is always `strong`."""

    STRONG = "strong"  # every write acknowledged before the read began
    BOUNDED = "bounded"  # everything older than max_staleness seconds
    SESSION = "session"  # every write this client object made
    EVENTUAL = "eventual"  # whatever the replica it lands on has applied


def check_consistency(value: str | None) -> Consistency:
    """The level named by `value` (None: strong); InvalidParameter for anything else."""
    try:
        return Consistency(value or Consistency.STRONG)
    except ValueError:
        from vectorforge.errors import InvalidParameter

        raise InvalidParameter(
            f"consistency {value!r} is unknown; use 'strong', 'bounded', 'session' or 'eventual'"
        ) from None


class Sharding(StrEnum):
    """How a sharded collection assigns points to shards."""

    HASH = "hash"  # by point id: the same id always lands on the same shard
    KEY = "key"  # by a payload field (`shard_key`): a tenant's points share a shard
    SEMANTIC = "semantic"  # by the nearest k-means centroid; a query probes its `n_probe` nearest shards


class EmbedderInfo(BaseModel):
    """Which model made a collection's vectors: queries must be embedded by the same one."""

    model_config = ConfigDict(frozen=True)

    name: str
    model: str
    version: str
    dim: int


VECTOR_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


class _VectorSpec(BaseModel):
    """A named vector's settings; a bad one is an InvalidParameter that names the setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _help: ClassVar[str] = ""

    def __init__(self, **settings: Any) -> None:
        try:
            super().__init__(**settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "settings"
            raise InvalidParameter(
                f"vf.{type(self).__name__}({where}=...): {first['msg']}; {self._help}"
            ) from None


class Dense(_VectorSpec):
    """A dense vector of a collection: `dim` floats compared by `metric`, searched by `index`."""

    kind: ClassVar[str] = "dense"
    _help: ClassVar[str] = "e.g. vf.Dense(dim=384, metric='cosine', index='hnsw')"

    dim: int = Field(gt=0, le=65536)
    metric: Metric = Metric.COSINE
    index: IndexKind = IndexKind.HNSW
    index_params: dict[str, Any] = Field(default_factory=dict)


class Sparse(_VectorSpec):
    """A sparse (lexical) vector of a collection: BM25 over an analyzer's terms (`modifier="idf"`,
    Lucene's k1 and b), or a plain dot product of given weights (`modifier=None`)."""

    kind: ClassVar[str] = "sparse"
    _help: ClassVar[str] = "defaults: modifier='idf', analyzer='english', k1=1.2 (0 to 10), b=0.75 (0 to 1)"

    modifier: Literal["idf"] | None = "idf"
    analyzer: str | None = "english"
    k1: float = Field(default=1.2, ge=0, le=10)
    b: float = Field(default=0.75, ge=0, le=1)


class Multi(_VectorSpec):
    """A multi vector (a token matrix per point: ColBERT, ColPali) scored by late interaction
    (MaxSim); with `metric="cosine"` each token is normalized on write and on query."""

    kind: ClassVar[str] = "multi"
    _help: ClassVar[str] = "e.g. vf.Multi(dim=128, metric='cosine', index='flat')"

    dim: int = Field(gt=0, le=65536)
    metric: Literal["cosine", "dot"] = "cosine"
    index: str = "flat"  # a kind the index registry has for multi vectors (checked at creation)
    index_params: dict[str, Any] = Field(default_factory=dict)  # parsed by the index kind
    encoder: str | None = None  # a token encoder's name (embed/tokens.py): add(texts) and query(text)


PayloadSchema = Literal["keyword", "integer", "float", "bool", "datetime", "uuid", "text"]  # Qdrant's names


class CollectionConfig(BaseModel):
    """Everything that defines a collection; stored as JSON next to its data."""

    model_config = ConfigDict(extra="forbid")

    name: str
    dim: int = Field(gt=0, le=65536)
    metric: Metric = Metric.COSINE
    index: IndexKind = IndexKind.HNSW
    index_params: dict[str, Any] = Field(default_factory=dict)
    embedder: EmbedderInfo | None = None
    max_segment_points: int = Field(default=250_000, gt=0)
    shards: int = Field(default=1, ge=1, le=1024)
    replicas: int = Field(default=1, ge=1, le=16)
    write_quorum: str = "majority"
    sharding: Sharding = Field(default_factory=lambda: Sharding.HASH)
    shard_key: str | None = None
    n_probe: int | None = Field(default=None, ge=1)
    layout: int = Field(default=0, ge=0)  # the shard layout's generation: one more after each reshard
    # Named vectors. The dense vector's name ("": unnamed, the `dim=` form) and the others by kind.
    # Without a dense vector (`has_dense` False: sparse or multi vectors alone) every point lacks the
    # primary one, and a one-number zero row per point holds its place in the index (dim 1, flat).
    has_dense: bool = True
    dense_name: str = ""
    extra_dense: dict[str, Dense] = Field(default_factory=dict)  # optional per point, searched exactly
    sparse: dict[str, Sparse] = Field(default_factory=dict)
    multi: dict[str, Multi] = Field(default_factory=dict)
    # Payload keys indexed on every segment from the start (others: on the first filter of the key).
    payload_indexes: dict[str, PayloadSchema] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("extra_dense", "sparse", "multi")
    @classmethod
    def _vector_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            check_vector_name(name)
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> CollectionConfig:
        if self.dense_name:
            check_vector_name(self.dense_name)
        names = [self.dense_name, *self.extra_dense, *self.sparse, *self.multi]
        clash = {name for name in names if names.count(name) > 1}
        if clash:
            raise ValueError(
                f"vector name {sorted(clash)[0]!r} is given twice; each vector needs its own name"
            )
        return self

    @property
    def dense_dim(self) -> int | None:
        """The primary dense vector's length (None: the collection has no dense vector)."""
        return self.dim if self.has_dense else None

    def dense_info(self) -> dict[str, Any]:
        """The primary dense vector's settings as `info()` shows them (None without one)."""
        if not self.has_dense:
            return {"dim": None, "metric": None, "index": None, "index_params": {}}
        return {
            "dim": self.dim,
            "metric": self.metric.value,
            "index": self.index.value,
            "index_params": self.index_params,
        }

    def vector_kind(self, using: str | None) -> Literal["dense", "sparse", "multi"] | None:
        """The kind of the named vector `using` (None and the dense vector's name: "dense")."""
        if (using is None or using == self.dense_name) and not self.has_dense:
            return None
        if using is None or using == self.dense_name or using in self.extra_dense:
            return "dense"
        if using in self.sparse:
            return "sparse"
        if using in self.multi:
            return "multi"
        return None

    def vector_names(self) -> list[str]:
        """Every vector's name: the dense one first ("" when unnamed), then the others, sorted."""
        primary = [self.dense_name] if self.has_dense else []
        return [*primary, *sorted([*self.extra_dense, *self.sparse, *self.multi])]

    def vectors_spec(self) -> dict[str, dict[str, Any]]:
        """Each named vector's kind and settings (what `info()` shows)."""
        out = {}
        if self.has_dense:
            dense = Dense(dim=self.dim, metric=self.metric, index=self.index, index_params=self.index_params)
            out[self.dense_name] = {"kind": "dense", **dense.model_dump(mode="json")}
        out.update({n: {"kind": "dense", **d.model_dump(mode="json")} for n, d in self.extra_dense.items()})
        out.update({n: {"kind": "sparse", **s.model_dump(mode="json")} for n, s in self.sparse.items()})
        out.update({n: {"kind": "multi", **m.model_dump(mode="json")} for n, m in self.multi.items()})
        return out


def check_vector_name(name: object) -> str:
    """A vector's name: 1-32 of a-z, 0-9 and _, starting with a letter (it becomes part of a file name)."""
    if not isinstance(name, str) or not VECTOR_NAME.fullmatch(name):
        raise ValueError(f"vector name {name!r} must be 1-32 of a-z, 0-9, _ and start with a letter")
    return name


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector: distinct integer indices (int64, ascending) and their values (float32).

    A BM25 document vector holds term counts (indices from `embed.analyzer.term_id`); a learned
    sparse model (SPLADE) gives weights."""

    indices: Any
    values: Any

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What every write returns once it is durable (Qdrant's UpdateResult), wherever it ran.

    `operation_id` grows with every write of the collection: a plain collection's sequence number,
    a sharded one's hybrid-clock timestamp; it is the session token that `consistency="session"`
    reads wait for. A retry with the same idempotency key returns the first write's `count` and an
    `operation_id` that covers it. `count`: the points written (upsert, add, a payload update) or
    deleted. `status` is always "completed": the write is durable (at its write quorum)."""

    operation_id: int
    count: int
    status: Literal["completed"] = "completed"


@dataclass(slots=True)
class Hit:
    """One search result. `score` is higher-is-better for every metric."""

    id: PointId
    score: float
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


@dataclass(slots=True)
class Record:
    """One stored point, as returned by `get` and `scroll`. With `with_vectors=True`, `vector` is the
    dense vector and `vectors` the other named vectors the point has (a `SparseVector` of lists, or
    a token matrix as a list of lists); None when it has none."""

    id: PointId
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None
    vectors: dict[str, Any] | None = None


@dataclass(slots=True)
class ScrollPage:
    """A page of `scroll`: pass `next_cursor` back to get the next page; None when done."""

    records: list[Record] = field(default_factory=list)
    next_cursor: str | None = None
