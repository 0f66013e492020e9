"""Request bodies of the HTTP API (they make the OpenAPI document). Responses are plain JSON objects."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, StrictInt, StrictStr

__all__ = [
    "AddBody",
    "AliasBody",
    "CountBody",
    "CreateCollectionBody",
    "DeleteBody",
    "GetBody",
    "QueryBody",
    "ScrollBody",
    "SearchBatchBody",
    "SearchBody",
    "UpsertBody",
    "ReshardBody",
    "VectorBlob",
]

PointIdIn = StrictInt | StrictStr


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VectorBlob(_Body):
    """Bulk vectors: base64 of little-endian float32, row-major, with their shape."""

    b64: str
    shape: Annotated[list[StrictInt], Field(min_length=2, max_length=2)]


# A vector component is a JSON number: "1" and true are refused, as the embedded API refuses them.
Number = Annotated[float, Strict()]
Vectors = list[list[Number]] | VectorBlob
Filter = dict[str, Any] | None


class AliasBody(_Body):
    """The collection an alias points at (`PUT /aliases/{alias}`, `POST /aliases/{alias}/switch`)."""

    collection: StrictStr


class CreateCollectionBody(_Body):
    dim: StrictInt | None = None
    metric: str = "cosine"
    index: str = "hnsw"
    index_params: dict[str, Any] | None = None
    embedder: str | None = None
    max_segment_points: StrictInt | None = None
    shards: StrictInt = 1
    sharding: str = "hash"
    shard_key: str | None = None
    n_probe: StrictInt | None = None
    replicas: StrictInt = 1
    write_quorum: str = "majority"
    sparse: dict[str, dict[str, Any]] | None = None
    vectors: dict[str, dict[str, Any]] | None = None  # name -> {"kind": "dense" | "sparse" | "multi", ...}


class ReshardBody(_Body):
    shards: StrictInt
    n_probe: StrictInt | None = None
    batch_size: StrictInt = 100


class SparseIn(_Body):
    """One sparse vector: its indices and their values."""

    indices: list[StrictInt]
    values: list[Number]


class SparseBlob(_Body):
    """Sparse vectors in the binary form (base64 int64 indices and float32 values, with each row's
    length); a search takes one row."""

    sparse_b64: str
    values_b64: str
    lengths: list[StrictInt]


class UpsertBody(_Body):
    ids: list[PointIdIn]
    # The dense vectors; or by vector name: the dense ones, and for a sparse vector a list of
    # {"indices", "values"} (or None) or {"sparse_b64", "values_b64", "lengths"}; for a multi vector
    # a list of token matrices (or None) or {"b64", "shape", "lengths"}. The engine checks each.
    vectors: Vectors | dict[str, Any]
    payloads: list[dict[str, Any] | None] | None = None


class GetBody(_Body):
    ids: list[PointIdIn]
    with_payload: bool = True
    with_vectors: bool = False
    consistency: str | None = None
    session_ts: StrictInt | None = None  # the client's session token (its last write)


class DeleteBody(_Body):
    ids: list[PointIdIn] | None = None
    filter: Filter = None


class PayloadBody(_Body):
    """Set or overwrite the payload of the points chosen by ids and/or filter."""

    # Any: the engine checks them, so a bad value gets the same error embedded and over HTTP.
    payload: Any
    ids: Any = None
    filter: Filter = None


class PayloadIndexBody(_Body):
    field_name: Any  # checked by the engine, as embedded
    field_schema: Any = "keyword"


class DeletePayloadBody(_Body):
    keys: Any
    ids: Any = None
    filter: Filter = None


class CountBody(_Body):
    filter: Filter = None
    consistency: str | None = None
    session_ts: StrictInt | None = None  # the client's session token (its last write)


class ScrollBody(_Body):
    limit: StrictInt = 1000
    cursor: str | None = None
    filter: Filter = None
    with_payload: bool = True
    with_vectors: bool = False
    consistency: str | None = None
    session_ts: StrictInt | None = None  # the client's session token (its last write)


class _SearchOptions(_Body):
    k: StrictInt = 10
    offset: StrictInt = 0
    filter: Filter = None
    params: dict[str, Any] | None = None
    with_payload: bool = True
    with_vectors: bool = False
    consistency: str | None = None
    session_ts: StrictInt | None = None  # the client's session token (its last write)


class SearchBody(_SearchOptions):
    # A dense vector; a sparse one (with `using`); or a token matrix (with `using`, a multi vector).
    # (text is taken too, for the engine to refuse with what to do instead)
    vector: list[Number] | VectorBlob | SparseIn | SparseBlob | list[list[Number]] | StrictStr
    using: str | None = None


class SearchBatchBody(_SearchOptions):
    vectors: Vectors


class AddBody(_Body):
    texts: list[str]
    ids: list[PointIdIn] | None = None
    payloads: list[dict[str, Any] | None] | None = None


class QueryBody(_SearchOptions):
    text: str
    using: str | None = None  # a sparse vector's name (BM25)
    mode: str | None = None  # "hybrid": the dense vector and every sparse one, fused
    fusion: str = "rrf"
    weights: list[Number] | None = None  # fusion="weighted": one per list, dense first
