"""Plain data shared by the engine, the server and the client.

`Hit`, `Record` and `ScrollPage` are slotted dataclasses: a search builds many of them, and a pydantic
model costs several times more per object. `CollectionConfig` is a pydantic model because it is
validated once, stored as JSON and sent over HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vectorforge.errors import InvalidName, InvalidParameter

__all__ = [
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


class Sparse(BaseModel):
    """A sparse (lexical) vector of a collection: BM25 over an analyzer's terms (`modifier="idf"`,
    Lucene's k1 and b), or a plain dot product of given weights (`modifier=None`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modifier: Literal["idf"] | None = "idf"
    analyzer: str | None = "english"
    k1: float = Field(default=1.2, ge=0, le=10)
    b: float = Field(default=0.75, ge=0, le=1)

    def __init__(self, **settings: Any) -> None:
        try:
            super().__init__(**settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "settings"
            raise InvalidParameter(
                f"vf.Sparse({where}=...): {first['msg']}; defaults: modifier='idf', analyzer='english', "
                "k1=1.2 (0 to 10), b=0.75 (0 to 1)"
            ) from None


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
    sparse: dict[str, Sparse] = Field(default_factory=dict)  # named sparse vectors beside the dense one

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("sparse")
    @classmethod
    def _vector_names(cls, value: dict[str, Sparse]) -> dict[str, Sparse]:
        for name in value:
            if not VECTOR_NAME.fullmatch(name):
                raise ValueError(f"vector name {name!r} must be 1-32 of a-z, 0-9, _ and start with a letter")
        return value


@dataclass(frozen=True, slots=True)
class SparseVector:
    """A sparse vector: distinct integer indices (int64, ascending) and their values (float32).

    A BM25 document vector holds term counts (indices from `embed.analyzer.term_id`); a learned
    sparse model (SPLADE) gives weights."""

    indices: Any
    values: Any

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(slots=True)
class Hit:
    """One search result. `score` is higher-is-better for every metric."""

    id: PointId
    score: float
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


@dataclass(slots=True)
class Record:
    """One stored point, as returned by `get` and `scroll`."""

    id: PointId
    payload: dict[str, Any] | None = None
    vector: list[float] | None = None


@dataclass(slots=True)
class ScrollPage:
    """A page of `scroll`: pass `next_cursor` back to get the next page; None when done."""

    records: list[Record] = field(default_factory=list)
    next_cursor: str | None = None


# ---------------------------------------------------------------------------------------------------
# The wire format, shared by the server and the HTTP client.


def vectors_to_wire(vectors: Any) -> dict[str, Any]:
    """A compact form for bulk vectors: base64 of little-endian float32, with the shape.

    JSON lists of floats cost ~3x the bytes and most of the parse time; this is what the client sends.
    The server accepts both this and plain lists of lists.
    """
    import base64

    import numpy as np

    arr = np.ascontiguousarray(np.asarray(vectors, dtype="<f4"))
    if arr.ndim == 1:
        arr = arr[None, :]
    return {"b64": base64.b64encode(arr.tobytes()).decode(), "shape": list(arr.shape)}


def vectors_from_wire(value: Any) -> Any:
    """Undo `vectors_to_wire`; plain lists pass through (the engine validates both)."""
    if isinstance(value, dict) and set(value) == {"b64", "shape"}:
        import base64
        import binascii

        import numpy as np

        from vectorforge.errors import InvalidVector

        shape = value["shape"]
        if not (
            isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) and s >= 0 for s in shape)
        ):
            raise InvalidVector("vectors.shape must be [rows, dim]")
        try:
            raw = base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidVector(f"vectors.b64 is not valid base64: {exc}") from exc
        if len(raw) != 4 * shape[0] * shape[1]:
            raise InvalidVector(
                f"vectors.b64 holds {len(raw)} bytes; shape {shape} needs {4 * shape[0] * shape[1]}"
            )
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    return value


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    return {"id": hit.id, "score": hit.score, "payload": hit.payload, "vector": hit.vector}


def hit_from_dict(d: dict[str, Any]) -> Hit:
    return Hit(d["id"], d["score"], d.get("payload"), d.get("vector"))


def record_to_dict(rec: Record) -> dict[str, Any]:
    return {"id": rec.id, "payload": rec.payload, "vector": rec.vector}


def record_from_dict(d: dict[str, Any]) -> Record:
    return Record(d["id"], d.get("payload"), d.get("vector"))
