"""Plain data shared by the engine, the server and the client.

`Hit`, `Record` and `ScrollPage` are slotted dataclasses: a search builds many of them, and a pydantic
model costs several times more per object. `CollectionConfig` is a pydantic model because it is
validated once, stored as JSON and sent over HTTP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vectorforge.errors import InvalidName

__all__ = [
    "NAME_PATTERN",
    "CollectionConfig",
    "EmbedderInfo",
    "Hit",
    "IndexKind",
    "Metric",
    "PointId",
    "Record",
    "ScrollPage",
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


class EmbedderInfo(BaseModel):
    """Which model made a collection's vectors: queries must be embedded by the same one."""

    model_config = ConfigDict(frozen=True)

    name: str
    model: str
    version: str
    dim: int


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

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_name(value)


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
