"""Promptagator's round-trip consistency filter: a generated query is kept only if it finds its own
passage. An LLM sometimes writes a query that is vague ("what did this study find?") or about
something else; searched, such a query does not bring back its source, and training on it would
teach the model noise. A query is kept if its passage is in the top `k` of the collection's dense
search (the current model) or of its BM25, where the collection has a sparse vector for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm.auto import tqdm

from vectorforge.api import CollectionAPI
from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample

__all__ = ["FilterReport", "consistency_filter", "sparse_text_vector"]


@dataclass
class FilterReport:
    """How many queries found their passage, and through which search."""

    examples: int = 0
    kept: int = 0
    kept_by_dense: int = 0  # found in the dense top k (whatever BM25 did)
    kept_by_bm25: int = 0  # found in the BM25 top k (whatever the dense search did)
    kept_by_bm25_only: int = 0
    dropped: int = 0
    k: int = 3
    bm25: str | None = None  # the sparse vector searched, None if the collection has none

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kept_share": self.kept / self.examples if self.examples else 0.0}


def sparse_text_vector(collection: CollectionAPI, name: str = "bm25") -> str | None:
    """`name` if the collection has a sparse vector of that name that is made from text (BM25)."""
    spec = collection.info().get("vectors", {}).get(name)
    if spec and spec.get("kind") == "sparse" and spec.get("analyzer"):
        return name
    return None


def consistency_filter(
    collection: CollectionAPI,
    examples: Sequence[TrainingExample],
    *,
    k: int = 3,
    using: str | None = "bm25",
    progress: bool = False,
) -> tuple[list[TrainingExample], FilterReport]:
    """The examples whose `positive_id` is in the top `k` of `collection.query(query)`, or of
    `collection.query(query, using=using)` when the collection has that BM25 vector (`using=None`:
    the dense search alone)."""
    if k < 1:
        raise InvalidParameter(f"k must be >= 1, got {k}")
    bm25 = sparse_text_vector(collection, using) if using else None
    report = FilterReport(examples=len(examples), k=k, bm25=bm25)
    kept = []
    for ex in tqdm(examples, desc="round-trip filter", unit="query", disable=not progress):
        if not ex.positive_id:
            raise InvalidParameter("the filter needs examples with their passage's id (positive_id)")
        dense = _finds(collection.query(ex.query, k, with_payload=False), ex.positive_id)
        sparse = bm25 is not None and _finds(
            collection.query(ex.query, k, using=bm25, with_payload=False), ex.positive_id
        )
        report.kept_by_dense += dense
        report.kept_by_bm25 += sparse
        report.kept_by_bm25_only += sparse and not dense
        if dense or sparse:
            kept.append(ex)
    report.kept = len(kept)
    report.dropped = report.examples - report.kept
    return kept, report


def _finds(hits: Sequence[Any], doc: str) -> bool:
    return any(str(h.id) == doc for h in hits)
