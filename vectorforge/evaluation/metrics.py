"""IR metrics as plain functions over plain data, with trec_eval's definitions and conventions.

Shapes are pytrec_eval's: `qrels: {qid: {docid: grade}}`, `run: {qid: {docid: score}}`.
Conventions (trec_eval's):
- a run is ranked by score, highest first; ties go by document id, descending;
- a document with a grade of at least `relevance_level` (1) is relevant; unjudged ones are not;
  negative grades count as 0;
- nDCG uses the linear gain (the grade) and log2(rank + 1) discounts, against the ideal ranking of
  every judged document of the query;
- a query of the qrels that the run lacks scores 0 and is counted in the mean (trec_eval -c, as
  BEIR reports); `drop_missing=True` leaves it out instead. A query without a relevant document
  scores 0 everywhere and is counted, as pytrec_eval reports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from vectorforge.errors import InvalidParameter

__all__ = ["METRICS", "evaluate"]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

METRICS = ("ndcg", "recall", "precision", "map", "mrr", "success")


def evaluate(
    qrels: Qrels,
    run: Run,
    metrics: Iterable[str],
    *,
    per_query: bool = False,
    relevance_level: int = 1,
    drop_missing: bool = False,
) -> dict[str, float] | dict[str, dict[str, float]]:
    """The mean of each metric over the queries (or, with `per_query`, {qid: {metric: value}}).

    `metrics`: "name@k" with name one of ndcg, recall, precision, map, mrr (reciprocal rank within
    the top k), success (a relevant document within the top k), e.g. ["ndcg@10", "recall@100"]."""
    parsed = [_parse(m) for m in metrics]
    scores: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        grades = {doc: max(int(g), 0) for doc, g in judged.items()}
        relevant = {doc for doc, g in grades.items() if g >= relevance_level}
        if qid not in run and drop_missing:
            continue
        ranking = _ranked(run.get(qid, {}))
        scores[qid] = {f"{name}@{k}": _metric(name, k, ranking, grades, relevant) for name, k in parsed}
    if per_query:
        return scores
    names = [f"{name}@{k}" for name, k in parsed]
    n = len(scores)
    return {m: (sum(q[m] for q in scores.values()) / n if n else 0.0) for m in names}


def _parse(metric: str) -> tuple[str, int]:
    name, _, cut = metric.partition("@")
    if name not in METRICS or not cut.isdigit() or int(cut) < 1:
        raise InvalidParameter(
            f"metric {metric!r} is not understood; use name@k with name one of {', '.join(METRICS)}, "
            "e.g. 'ndcg@10'"
        )
    return name, int(cut)


def _ranked(scored: Mapping[str, float]) -> list[str]:
    """trec_eval's order: score descending, then document id descending."""
    return [doc for doc, _ in sorted(scored.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def _metric(name: str, k: int, ranking: list[str], grades: dict[str, int], relevant: set[str]) -> float:
    top = ranking[:k]
    hits = [doc in relevant for doc in top]
    if name == "precision":
        return sum(hits) / k
    if not relevant:
        return 0.0
    if name == "recall":
        return sum(hits) / len(relevant)
    if name == "success":
        return 1.0 if any(hits) else 0.0
    if name == "mrr":
        return next((1.0 / (i + 1) for i, hit in enumerate(hits) if hit), 0.0)
    if name == "map":
        found, total = 0, 0.0
        for i, hit in enumerate(hits):
            if hit:
                found += 1
                total += found / (i + 1)
        return total / len(relevant)
    dcg = sum(grades.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(top))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0
