"""A workload: what a retrieval system must hold and serve, read from YAML and checked field by field.

    name: support-bot
    corpus: {points: 100000, growth_per_year: 0.5}
    vectors:
      - {name: dense, kind: dense, dim: 384}
      - {name: bm25, kind: sparse, nnz: 60}
    index: auto            # or hnsw, ivfflat, flat, ...
    quantization: auto     # or none, fp16, sq8, rabitq
    payload_bytes: 512
    qps: {peak: 10, average: 2}
    latency_p99_ms: 100
    recall: 0.95
    availability: {replicas: 1, zones: 1}
    model_releases_per_year: 2
    catalog: aws-us-east-1

A bad field is refused with its place in the file and what is wrong with it (`InvalidParameter`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vectorforge.errors import InvalidParameter
from vectorforge.extras import missing_extra

__all__ = ["Availability", "Corpus", "Qps", "VectorSpec", "Workload", "load_workload", "parse_workload"]

AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Corpus(_Strict):
    points: int = Field(gt=0, le=10**12, description="points (chunks, passages, pages) stored today")
    growth_per_year: float = Field(
        default=0.0, ge=0, le=100, description="0.5: 50% more points a year from now"
    )
    horizon_years: float = Field(default=1.0, ge=0, le=10, description="plan for the corpus this far ahead")

    def points_at_horizon(self) -> int:
        return int(self.points * (1 + self.growth_per_year) ** self.horizon_years + 0.5)


class VectorSpec(_Strict):
    name: str = "dense"
    kind: Literal["dense", "sparse", "multi"] = "dense"
    dim: int = Field(default=384, gt=0, le=65536, description="dense: the length; multi: each token's")
    dtype: Literal["float32", "float16"] = "float32"
    nnz: int = Field(default=100, gt=0, description="sparse: non-zero entries per point")
    vocabulary: int = Field(default=100_000, gt=0, description="sparse: distinct terms in the corpus")
    tokens_per_point: int = Field(default=128, gt=0, description="multi: token vectors per point")
    index: str = Field(default=AUTO, description="this vector's index kind (auto: the planner chooses)")
    use: Literal["search", "rerank"] = Field(
        default="search",
        description="search: every query searches it; rerank (multi only): MaxSim re-scores the first "
        "stage's rerank_depth candidates (a has_id search, as query_pages does)",
    )
    rerank_depth: int = Field(default=100, ge=1, le=10_000, description="rerank: candidates re-scored")
    quantization: str = Field(
        default=AUTO, description="dense: none, fp16, sq8, rabitq (auto: the planner chooses)"
    )

    @field_validator("quantization")
    @classmethod
    def _known_quantization(cls, value: str) -> str:
        from vectorforge.index.rescore import QUANTIZATIONS

        if value != AUTO and value not in QUANTIZATIONS:
            raise ValueError(f"{value!r} is not one of {AUTO}, {', '.join(QUANTIZATIONS)}")
        return value


class Qps(_Strict):
    peak: float = Field(gt=0, le=1e8)
    average: float = Field(gt=0, le=1e8)

    @model_validator(mode="after")
    def _average_below_peak(self) -> Qps:
        if self.average > self.peak:
            raise ValueError(f"average ({self.average:g}) is above peak ({self.peak:g})")
        return self


class Availability(_Strict):
    replicas: int = Field(default=1, ge=1, le=9, description="copies of every shard")
    zones: int = Field(default=1, ge=1, le=9, description="failure domains the replicas spread over")

    @model_validator(mode="after")
    def _zones_need_replicas(self) -> Availability:
        if self.zones > self.replicas:
            raise ValueError(f"{self.zones} zones need at least {self.zones} replicas, not {self.replicas}")
        return self


class Workload(_Strict):
    """What the system must hold and serve; every field has a unit in its name or its description."""

    name: str = Field(min_length=1, max_length=100)
    corpus: Corpus
    vectors: list[VectorSpec] = Field(default_factory=lambda: [VectorSpec()], min_length=1, max_length=8)
    payload_bytes: int = Field(default=256, ge=0, description="stored payload per point")
    qps: Qps
    latency_p99_ms: float = Field(gt=0)
    recall: float = Field(default=0.95, gt=0, le=1, description="recall@10 target of the ANN indexes")
    filter_selectivity: float = Field(
        default=1.0, gt=0, le=1, description="share of points a typical filter keeps"
    )
    availability: Availability = Field(default_factory=Availability)
    model_releases_per_year: float = Field(
        default=0, ge=0, le=52, description="re-embeddings of the corpus a year"
    )
    reembed_days: float = Field(
        default=3, ge=0, le=60, description="days the old and new copies live side by side"
    )
    regions: int = Field(default=1, ge=1, le=20, description="full copies of the system, one per region")
    catalog: str = Field(
        default="aws-us-east-1", description="a bundled price catalog's name, or a YAML file"
    )
    profile: str | None = Field(
        default=None, description="a calibration profile (JSON); default: the bundled one"
    )

    @model_validator(mode="after")
    def _unique_vector_names(self) -> Workload:
        names = [v.name for v in self.vectors]
        if len(set(names)) != len(names):
            raise ValueError(f"vector names must differ: {names}")
        rerankers = [v for v in self.vectors if v.use == "rerank"]
        if any(v.kind != "multi" for v in rerankers):
            raise ValueError("vectors: only a multi vector can rerank (MaxSim over its token matrices)")
        if rerankers and len(rerankers) == len(self.vectors):
            raise ValueError(
                "vectors: a rerank vector re-scores another vector's candidates; add one to search"
            )
        return self


def parse_workload(data: Any, source: str = "the workload") -> Workload:
    """A `Workload` from parsed YAML/JSON; `InvalidParameter` names each bad field."""
    if not isinstance(data, dict):
        raise InvalidParameter(f"{source} must be a mapping of fields, not {type(data).__name__}")
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{where}: {err['msg']}")
        raise InvalidParameter(f"{source}: " + "; ".join(problems), fields=len(problems)) from None


def load_workload(path: str | Path) -> Workload:
    """Read and check a workload file (YAML or JSON)."""
    with missing_extra("capacity planning"):
        import yaml

    file = Path(path)
    if not file.is_file():
        raise InvalidParameter(f"workload file {file} does not exist")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InvalidParameter(f"workload file {file} is not YAML: {exc}") from None
    return parse_workload(data, str(file))
