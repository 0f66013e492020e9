"""IR metrics as plain functions over plain data, with trec_eval's definitions and conventions.

Shapes are pytrec_eval's: `qrels: {qid: {docid: grade}}`, `run: {qid: {docid: score}}`.
Conventions (trec_eval's):
- a run is ranked by score, highest first; ties go by document id, descending;
- a document with a grade of at least `relevance_level` (1) is relevant; unjudged ones are not;
  negative grades count as 0;
- nDCG uses the linear gain (the grade; `ndcg_exp`: 2**grade - 1) and log2(rank + 1) discounts,
  against the ideal ranking of every judged document of the query;
- a query of the qrels that the run lacks scores 0 and is counted in the mean (trec_eval -c, as
  BEIR reports); `drop_missing=True` leaves it out instead. A query without a relevant document
  scores 0 everywhere and is counted, as pytrec_eval reports it.

All queries are scored at once: the run is flattened to one array per field (query, score, grade),
sorted once, and each metric is a few array operations over all of them; most of the time goes to
reading the dicts (bench/metrics.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import chain, repeat

import numpy as np

from vectorforge.errors import InvalidParameter

__all__ = ["METRICS", "canonical_metrics", "evaluate"]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

CUTOFF = ("ndcg", "ndcg_exp", "recall", "precision", "map", "mrr", "success")
"""Metrics of the top k: written name@k."""
WHOLE = ("rprec", "recip_rank", "mrr")
"""Metrics of the whole ranking: written alone (`mrr` alone is `recip_rank`)."""
METRICS = tuple(dict.fromkeys(CUTOFF + WHOLE))

_UNJUDGED = -(2**62)  # below any relevance level; a gain of 0


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

    `metrics`: "name@k" with name one of ndcg, ndcg_exp (exponential gain), recall, precision, map,
    mrr (reciprocal rank within the top k), success (a relevant document within the top k); or,
    over the whole ranking, rprec (precision at R, the number of relevant documents) and recip_rank
    (or mrr). E.g. ["ndcg@10", "recall@100", "rprec"]."""
    parsed = [_parse(m) for m in metrics]
    if relevance_level < 1:
        raise InvalidParameter(
            f"relevance_level must be at least 1 (grade 0 is 'judged not relevant'), got {relevance_level}"
        )
    qids = [q for q in qrels if q in run or not drop_missing]
    columns = _score(_flatten(qrels, run, qids, relevance_level), parsed)
    if per_query:
        rows = zip(*(c.tolist() for c in columns.values()), strict=True)
        names = list(columns)
        return {qid: dict(zip(names, row, strict=True)) for qid, row in zip(qids, rows, strict=True)}
    return {m: float(c.mean()) if len(qids) else 0.0 for m, c in columns.items()}


def canonical_metrics(metrics: Iterable[str]) -> list[str]:
    """The names as `evaluate` reports them ("ndcg@010" -> "ndcg@10"); an unknown one is refused."""
    return [_parse(m)[0] for m in metrics]


def _parse(metric: str) -> tuple[str, str, int]:
    """(output name, metric, cutoff; 0 for the whole ranking)."""
    name, at, cut = metric.partition("@")
    if not at and name in WHOLE:
        return name, name, 0
    if name in CUTOFF and cut.isdigit() and int(cut) >= 1:
        return f"{name}@{int(cut)}", name, int(cut)
    raise InvalidParameter(
        f"metric {metric!r} is not understood; use name@k with name one of {', '.join(CUTOFF)} "
        f"(e.g. 'ndcg@10'), or one of {', '.join(WHOLE)} alone (no cutoff)"
    )


@dataclass
class _Flat:
    """Every query's ranked documents, one array per field, queries one after the other."""

    nq: int
    starts: np.ndarray  # (nq,) where each query's documents begin
    lengths: np.ndarray  # (nq,) documents retrieved per query
    query: np.ndarray  # (n,) query index of each document
    pos: np.ndarray  # (n,) 0-based rank within its query
    relevant: np.ndarray  # (n,) bool
    gain: np.ndarray  # (n,) the grade, at least 0
    num_rel: np.ndarray  # (nq,) relevant documents in the qrels
    # the ideal ranking: each query's judged documents, best grade first
    ideal_query: np.ndarray  # (m,)
    ideal_pos: np.ndarray  # (m,)
    ideal_gain: np.ndarray  # (m,) the grade, at least 0


def _flatten(qrels: Qrels, run: Run, qids: list[str], relevance_level: int) -> _Flat:
    nq = len(qids)
    scores: list[float] = []
    grades: list[int] = []
    lengths = np.zeros(nq, dtype=np.int64)
    for i, qid in enumerate(qids):
        ranked = run.get(qid)
        if ranked:
            judged = qrels[qid]
            scores.extend(ranked.values())
            grades.extend(map(judged.get, ranked, repeat(_UNJUDGED)))
            lengths[i] = len(ranked)
    score = np.asarray(scores, dtype=np.float64)
    if np.isnan(score).any():
        raise InvalidParameter("the run holds NaN scores; give every document a number to rank it by")
    starts = np.cumsum(lengths) - lengths
    order = _trec_order(
        starts, lengths, score, lambda: list(chain.from_iterable(run.get(q, ()) for q in qids))
    )
    grade = np.asarray(grades, dtype=np.int64)[order]

    # the ideal ranking: every judged document of the query, best grade first
    judged_lengths = np.fromiter((len(qrels[q]) for q in qids), dtype=np.int64, count=nq)
    all_grades = np.fromiter(chain.from_iterable(qrels[q].values() for q in qids), dtype=np.int64)
    judged_query = np.repeat(np.arange(nq), judged_lengths)
    ideal_gain = np.maximum(all_grades, 0)
    return _Flat(
        nq=nq,
        starts=starts,
        lengths=lengths,
        query=np.repeat(np.arange(nq), lengths),
        pos=_rank_in_group(lengths),
        relevant=grade >= relevance_level,
        gain=np.maximum(grade, 0),
        num_rel=np.bincount(judged_query[all_grades >= relevance_level], minlength=nq),
        ideal_query=judged_query,
        ideal_pos=_rank_in_group(judged_lengths),
        ideal_gain=ideal_gain[np.lexsort((-ideal_gain, judged_query))],  # queries stay in order
    )


def _rank_in_group(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... within each of the consecutive groups of these lengths."""
    ranks: np.ndarray = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return ranks


def _trec_order(
    starts: np.ndarray, lengths: np.ndarray, score: np.ndarray, doc_ids: Callable[[], list[str]]
) -> np.ndarray:
    """The permutation putting each query's documents in trec_eval's order (query by query, score
    descending, document id descending).

    The scores go in a (queries, longest run) matrix, padded with NaN (sorted last), whose rows
    are sorted at once: 10x faster than one lexsort of the flat arrays by (query, score). Document
    ids are compared only where scores tie: sorting a million strings would cost more than
    everything else together; so are reading them (`doc_ids`, in the order of `score`)."""
    nq, n = len(lengths), len(score)
    width = int(lengths.max()) if nq else 0
    if nq * width > 4 * n + 1024:  # a few long runs among short ones: the padding would dominate
        return _trec_order_flat(np.repeat(np.arange(nq), lengths), score, doc_ids)
    neg = np.full((nq, width), np.nan)
    neg[np.repeat(np.arange(nq), lengths), _rank_in_group(lengths)] = -score
    cols = np.argsort(neg, axis=1)
    ranked = np.take_along_axis(neg, cols, axis=1)
    tie = ranked[:, 1:] == ranked[:, :-1]  # NaN padding never ties
    if tie.any():
        tied = np.zeros_like(neg, dtype=bool)
        tied[:, 1:] |= tie
        tied[:, :-1] |= tie
        doc_rank = np.zeros_like(neg)
        docs = doc_ids()
        doc_rank[tied] = -_code_point_rank([docs[i] for i in (starts[:, None] + cols)[tied]])
        order = np.lexsort((doc_rank, ranked), axis=1)
        cols = np.take_along_axis(cols, order, axis=1)
    valid = np.arange(width) < lengths[:, None]  # the padding sorted to the end of each row
    return (starts[:, None] + cols)[valid]  # type: ignore[no-any-return]


def _trec_order_flat(query: np.ndarray, score: np.ndarray, doc_ids: Callable[[], list[str]]) -> np.ndarray:
    order = np.lexsort((-score, query))
    q, s = query[order], score[order]
    tie = (s[1:] == s[:-1]) & (q[1:] == q[:-1])
    if not tie.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= tie
    tied[:-1] |= tie
    doc_rank = np.zeros(len(order), dtype=np.int64)
    docs = doc_ids()
    doc_rank[tied] = _code_point_rank([docs[i] for i in order[tied]])
    return order[np.lexsort((-doc_rank, -s, q))]  # type: ignore[no-any-return]


def _code_point_rank(docs: list[str]) -> np.ndarray:
    """Each id's rank among `docs`; numpy compares str arrays by code point, as Python (and
    trec_eval's strcmp) does."""
    inverse: np.ndarray = np.unique(np.array(docs), return_inverse=True)[1]
    return inverse


def _score(f: _Flat, parsed: list[tuple[str, str, int]]) -> dict[str, np.ndarray]:
    """{output name: (nq,) per-query values}."""
    nq = f.nq
    # running count of relevant documents within each query (exact: integers), read by hits()
    seen = np.cumsum(f.relevant)
    before = np.concatenate(([0], seen))[f.starts]
    rel_count = seen - np.repeat(before, f.lengths)
    discount = np.log2(f.pos + 2.0)
    ideal_discount = np.log2(f.ideal_pos + 2.0)
    first = np.full(nq, np.inf)  # 0-based rank of the first relevant document
    hit = np.flatnonzero(f.relevant)
    if len(hit):
        leading = np.concatenate(([True], f.query[hit][1:] != f.query[hit][:-1]))
        first[f.query[hit[leading]]] = f.pos[hit[leading]]
    has_rel = f.num_rel > 0
    safe_rel = np.maximum(f.num_rel, 1)

    def hits(k: np.ndarray | int) -> np.ndarray:
        """Relevant documents within the top k of each query (k per query or one for all)."""
        upto = np.minimum(k, f.lengths)
        out = np.zeros(nq, dtype=np.int64)
        ok = upto > 0
        out[ok] = rel_count[(f.starts + upto - 1)[ok]]
        return out

    def per_query_sum(weights: np.ndarray, k: int) -> np.ndarray:
        # bincount adds each query's terms in rank order: a running sum over all queries,
        # differenced, would lose digits
        top = f.pos < k
        return np.bincount(f.query[top], weights=weights[top], minlength=nq)

    def ndcg(gain: np.ndarray, ideal: np.ndarray, k: int) -> np.ndarray:
        dcg = per_query_sum(gain / discount, k)
        top = f.ideal_pos < k
        idcg = np.bincount(f.ideal_query[top], weights=(ideal / ideal_discount)[top], minlength=nq)
        ratio: np.ndarray = np.divide(dcg, idcg, out=np.zeros(nq), where=idcg > 0)
        return ratio

    out: dict[str, np.ndarray] = {}
    for key, name, k in parsed:
        if name == "precision":
            out[key] = hits(k) / k
        elif name == "recall":
            out[key] = np.where(has_rel, hits(k) / safe_rel, 0.0)
        elif name == "success":
            out[key] = (first < k).astype(np.float64)
        elif name == "mrr" and k:
            out[key] = np.where(first < k, 1.0 / (first + 1), 0.0)
        elif name in ("mrr", "recip_rank"):
            out[key] = 1.0 / (first + 1)  # 1 / inf = 0: nothing relevant retrieved
        elif name == "rprec":
            out[key] = np.where(has_rel, hits(f.num_rel) / safe_rel, 0.0)
        elif name == "map":
            precision_at = np.where(f.relevant, rel_count / (f.pos + 1.0), 0.0)
            out[key] = np.where(has_rel, per_query_sum(precision_at, k) / safe_rel, 0.0)
        elif name == "ndcg":
            out[key] = ndcg(f.gain.astype(np.float64), f.ideal_gain.astype(np.float64), k)
        else:  # ndcg_exp
            out[key] = ndcg(np.exp2(f.gain) - 1.0, np.exp2(f.ideal_gain) - 1.0, k)
    return out
