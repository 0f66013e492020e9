"""One evaluation of a collection on a gold set: search every query, score it, summarize each
segment with a bootstrap interval, and describe the system measured."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np

from vectorforge.api import CollectionAPI
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun, SegmentScore
from vectorforge.evaluation.metrics import evaluate
from vectorforge.evaluation.runs import Run, SearchConfig, describe_collection, search_goldset
from vectorforge.evaluation.stats import bootstrap_ci

__all__ = ["DEFAULT_METRICS", "evaluate_collection", "score_run"]

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100", "precision@10", "success@1")


def evaluate_collection(
    collection: CollectionAPI,
    goldset: GoldSet,
    metrics: Sequence[str] = DEFAULT_METRICS,
    config: SearchConfig | None = None,
    *,
    label: str = "",
    progress: bool = False,
    seed: int = 0,
) -> EvalRun:
    """Search `collection` for `goldset`'s queries and score the run (nothing is recorded here:
    `History.record` does that)."""
    cfg = config or SearchConfig()
    run = search_goldset(collection, goldset, cfg, progress=progress)
    return score_run(
        run,
        goldset,
        metrics,
        collection=collection.name,
        config=cfg.model_dump(),
        system=describe_collection(collection),
        label=label,
        seed=seed,
    )


def score_run(
    run: Run,
    goldset: GoldSet,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    collection: str = "",
    config: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    label: str = "",
    seed: int = 0,
) -> EvalRun:
    """An `EvalRun` for a run made elsewhere: per-query scores and every segment's summary."""
    per_query = cast(dict[str, dict[str, float]], evaluate(goldset.qrels, run, list(metrics), per_query=True))
    segments = {
        seg: {m: summarize([per_query[q][m] for q in qids], seed=seed) for m in metrics}
        for seg, qids in goldset.segment_queries().items()
    }
    now = datetime.now(UTC)
    return EvalRun(
        run_id=f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}",
        created_at=now.isoformat(timespec="microseconds"),
        goldset=goldset.name,
        goldset_version=goldset.version,
        collection=collection,
        segments=segments,
        per_query=per_query,
        config=config or {},
        system=system or {},
        label=label,
    )


def summarize(values: Sequence[float], *, confidence: float = 0.95, seed: int = 0) -> SegmentScore:
    """The mean and its bootstrap interval (percentile; one query gives a zero-width interval)."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean()) if len(arr) else 0.0
    low, high = bootstrap_ci(arr, confidence=confidence, seed=seed)
    return SegmentScore(mean, low, high, len(arr))
