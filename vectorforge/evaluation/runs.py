"""Runs (`qid -> docid -> score`) from vectorforge's hits, and the search that makes one for every
query of a gold set, on any collection (embedded, sharded or remote: the public API only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm.auto import tqdm

from vectorforge.api import CollectionAPI
from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.types import Hit

__all__ = ["Run", "SearchConfig", "describe_collection", "search_goldset", "validation_problems"]


class Run(dict[str, dict[str, float]]):
    """A run in pytrec_eval's shape, `{qid: {docid: score}}`; document ids are strings."""

    @classmethod
    def from_hits(cls, hits: Mapping[str, Sequence[Hit]]) -> Run:
        """`{qid: [Hit, ...]}` as a run. A document twice in one query's hits is refused: a ranking
        holds each document once, and a dict would silently keep one of the two scores."""
        run = cls()
        for qid, ranked in hits.items():
            scored: dict[str, float] = {}
            for hit in ranked:
                doc = str(hit.id)
                if doc in scored:
                    raise InvalidParameter(
                        f"document {doc!r} appears twice in the hits of query {qid!r}; "
                        "a ranking lists each document once"
                    )
                scored[doc] = float(hit.score)
            run[str(qid)] = scored
        return run


class SearchConfig(BaseModel):
    """How each query is searched: `CollectionAPI.query`'s arguments (a YAML file holds the same keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(default=100, ge=1, le=1000, description="hits per query (the deepest metric cutoff)")
    using: str | None = Field(default=None, description="the named vector to search (default: the dense one)")
    mode: Literal["hybrid"] | None = Field(default=None, description="'hybrid': dense and sparse, fused")
    fusion: Literal["rrf", "dbsf", "weighted"] = "rrf"
    weights: list[float] | None = None
    filter: dict[str, Any] | None = None
    params: dict[str, Any] | None = Field(default=None, description="index parameters, e.g. {'ef': 128}")

    def query_args(self) -> dict[str, Any]:
        """The keyword arguments of `CollectionAPI.query` this configuration stands for (k aside)."""
        return self.model_dump(exclude={"k"})

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        """Read a YAML (or JSON) file; an unknown or bad key is refused by name."""
        p = Path(path)
        try:
            obj = yaml.safe_load(p.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidParameter(f"search configuration {p}: {exc}") from exc
        return cls.parse(obj, str(p))

    @classmethod
    def parse(cls, obj: Any, where: str = "search configuration") -> SearchConfig:
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise InvalidParameter(f"{where}: {validation_problems(exc)}") from None


def validation_problems(exc: ValidationError) -> str:
    """pydantic's errors as one line: "field: problem; field: problem"."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors())


def search_goldset(
    collection: CollectionAPI,
    goldset: GoldSet,
    config: SearchConfig | None = None,
    *,
    progress: bool = False,
) -> Run:
    """Search `collection` for every judged query of `goldset` with `config` (text queries through
    the collection's embedder, or its sparse vector with `using`). Ctrl-C stops it: the
    KeyboardInterrupt goes to the caller and nothing half-done is returned."""
    cfg = config or SearchConfig()
    hits: dict[str, list[Hit]] = {}
    qids = goldset.judged
    for qid in tqdm(qids, desc=f"searching {goldset.name}", unit="query", disable=not progress):
        hits[qid] = collection.query(goldset.queries[qid], cfg.k, **cfg.query_args(), with_payload=False)
    return Run.from_hits(hits)


def describe_collection(collection: CollectionAPI) -> dict[str, Any]:
    """What a run records about the system it measured: size, log position, index, embedder."""
    info = collection.info()
    keep = ("name", "points", "dim", "metric", "index", "index_params", "vectors", "embedder", "last_seq")
    described = {key: info[key] for key in keep if key in info}
    for key in ("shards", "replicas"):
        if key in info:
            described[key] = info[key]
    return described
