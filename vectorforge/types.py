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
    dense_name: str = ""
    sparse: dict[str, Sparse] = Field(default_factory=dict)
    multi: dict[str, Multi] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("sparse", "multi")
    @classmethod
    def _vector_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            check_vector_name(name)
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> CollectionConfig:
        if self.dense_name:
            check_vector_name(self.dense_name)
        clash = (set(self.sparse) & set(self.multi)) | (
            {self.dense_name} & (set(self.sparse) | set(self.multi))
        )
        if clash:
            raise ValueError(
                f"vector name {sorted(clash)[0]!r} is given twice; each vector needs its own name"
            )
        return self

    def vector_kind(self, using: str | None) -> Literal["dense", "sparse", "multi"] | None:
        """The kind of the named vector `using` (None and the dense vector's name: "dense")."""
        if using is None or using == self.dense_name:
            return "dense"
        if using in self.sparse:
            return "sparse"
        if using in self.multi:
            return "multi"
        return None

    def vector_names(self) -> list[str]:
        """Every vector's name: the dense one first ("" when unnamed), then the others, sorted."""
        return [self.dense_name, *sorted([*self.sparse, *self.multi])]

    def vectors_spec(self) -> dict[str, dict[str, Any]]:
        """Each named vector's kind and settings (what `info()` shows)."""
        dense = Dense(dim=self.dim, metric=self.metric, index=self.index, index_params=self.index_params)
        out = {self.dense_name: {"kind": "dense", **dense.model_dump(mode="json")}}
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
    out = {"id": rec.id, "payload": rec.payload, "vector": rec.vector}
    if rec.vectors:
        out["vectors"] = {
            name: {"indices": v.indices, "values": v.values} if isinstance(v, SparseVector) else v
            for name, v in rec.vectors.items()
        }
    return out


def record_from_dict(d: dict[str, Any]) -> Record:
    named = d.get("vectors")
    if named:
        named = {
            name: SparseVector(v["indices"], v["values"]) if isinstance(v, dict) else v
            for name, v in named.items()
        }
    return Record(d["id"], d.get("payload"), d.get("vector"), named or None)


def named_to_wire(vectors: dict[str, Any]) -> dict[str, Any]:
    """An upsert's `vectors` by name in the compact form: the dense array as `vectors_to_wire` makes
    it; sparse rows as {"sparse_b64": indices, "values_b64", "lengths"} and token matrices as
    {"b64", "shape": [tokens, dim], "lengths"}, where a length of -1 marks a point without one."""
    import base64

    import numpy as np

    def b64(arr: Any, dtype: str) -> str:
        return base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode()

    out: dict[str, Any] = {}
    for name, value in vectors.items():
        if isinstance(value, np.ndarray) and value.ndim == 3:  # token matrices of equal length
            value = list(value)
        rows = value if isinstance(value, list) else None
        if rows is not None and rows and all(r is None or isinstance(r, SparseVector) for r in rows):
            present = [r for r in rows if r is not None]
            out[name] = {
                "sparse_b64": b64(np.concatenate([r.indices for r in present] or [[]]), "<i8"),
                "values_b64": b64(np.concatenate([r.values for r in present] or [[]]), "<f4"),
                "lengths": [-1 if r is None else len(r) for r in rows],
            }
        elif rows is not None and rows and all(r is None or np.ndim(r) == 2 for r in rows):
            present = [np.asarray(r, dtype="<f4") for r in rows if r is not None]
            dim = present[0].shape[1] if present else 0
            out[name] = {
                "b64": b64(np.concatenate(present) if present else np.empty((0, 0)), "<f4"),
                "shape": [sum(len(m) for m in present), dim],
                "lengths": [-1 if r is None else len(r) for r in rows],
            }
        elif rows is None or not rows or all(isinstance(r, list | tuple) for r in rows):
            out[name] = vectors_to_wire(value) if rows is None and np.ndim(value) == 2 else _listed(value)
        else:  # mixed or unknown rows: sent as they are, for the server to refuse with its message
            out[name] = value
    return out


def named_from_wire(value: dict[str, Any]) -> dict[str, Any]:
    """Undo `named_to_wire`; the JSON forms (lists, {"indices", "values"} objects) pass through."""
    import base64
    import binascii

    import numpy as np

    from vectorforge.errors import InvalidVector

    def decode(text: Any, dtype: str, what: str) -> Any:
        try:
            return np.frombuffer(base64.b64decode(text, validate=True), dtype=dtype)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise InvalidVector(f"vectors[{what!r}] is not valid base64 of {dtype}: {exc}") from exc

    def lengths_of(v: dict[str, Any], name: str, total: int) -> list[int]:
        lengths = v.get("lengths")
        if not (isinstance(lengths, list) and all(type(n) is int and n >= -1 for n in lengths)):
            raise InvalidVector(f"vectors[{name!r}].lengths must be a list of integers (-1: no vector)")
        if sum(max(n, 0) for n in lengths) != total:
            raise InvalidVector(f"vectors[{name!r}].lengths add up to more or less than the data it holds")
        return lengths

    def split(flat: Any, lengths: list[int]) -> list[Any]:
        rows: list[Any] = []
        at = 0
        for n in lengths:
            rows.append(None if n < 0 else flat[at : at + n])
            at += max(n, 0)
        return rows

    out: dict[str, Any] = {}
    for name, v in value.items():
        if isinstance(v, dict) and set(v) == {"sparse_b64", "values_b64", "lengths"}:
            indices = decode(v["sparse_b64"], "<i8", name)
            values = decode(v["values_b64"], "<f4", name)
            if len(indices) != len(values):
                raise InvalidVector(f"vectors[{name!r}] holds {len(indices)} indices, {len(values)} values")
            lengths = lengths_of(v, name, len(indices))
            out[name] = [
                None if i is None else SparseVector(i, x)
                for i, x in zip(split(indices, lengths), split(values, lengths), strict=True)
            ]
        elif isinstance(v, dict) and set(v) == {"b64", "shape", "lengths"}:
            tokens = vectors_from_wire({"b64": v["b64"], "shape": v["shape"]})
            out[name] = split(tokens, lengths_of(v, name, len(tokens)))
        else:
            out[name] = vectors_from_wire(v)
    return out


def _listed(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value
