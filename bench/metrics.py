"""IR metrics: vectorforge's `evaluate` against pytrec_eval (trec_eval's C code) and ranx (numba),
from the input dicts to the means, on one synthetic run.

10,000 queries (`--queries`) of 100 retrieved documents each, from a corpus of 1,000,000 ids;
1-5 relevant documents per query graded 1-3 plus 0-3 judged non-relevant ones, the relevant ones
scored higher on average (so the metrics are far from 0 and 1), some left unretrieved; 5% of the
queries are missing from the run and count as 0 in every mean. Scores are distinct floats: ranx
breaks ties its own way, trec_eval by document id.

Metrics: ndcg@10, recall@100, mrr@10, map@100, precision@10, success@1 (ranx: hit_rate@1 for
success@1). trec_eval has no cutoff for the reciprocal rank: pytrec_eval computes recip_rank in
the timed part, and mrr@10 is derived from it afterwards for the agreement check.

Timed, per system, from the dicts to the means: pytrec_eval builds its evaluator from the qrels
and evaluates the run; ranx builds Qrels and Run from the dicts and evaluates (make_comparable,
after one untimed warm-up call so that numba's compilation and cache loading are excluded; its
kernels run on numba's threads, the others on one). The garbage collector is paused while timing.
Rounds are interleaved, the order rotating; the figure is the median.

    python bench/metrics.py                 # 10,000 queries, 5 rounds
    python bench/metrics.py --queries 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any

import numpy as np
import pytrec_eval
import ranx
from common import print_table, write_result

from vectorforge.evaluation import evaluate

OURS = ["ndcg@10", "recall@100", "mrr@10", "map@100", "precision@10", "success@1"]
RANX = {"ndcg@10": "ndcg@10", "recall@100": "recall@100", "mrr@10": "mrr@10", "map@100": "map@100"}
RANX |= {"precision@10": "precision@10", "success@1": "hit_rate@1"}
TREC = {"ndcg@10": "ndcg_cut_10", "recall@100": "recall_100", "mrr@10": "recip_rank"}
TREC |= {"map@100": "map_cut_100", "precision@10": "P_10", "success@1": "success_1"}
TREC_MEASURES = {"ndcg_cut.10", "recall.100", "recip_rank", "map_cut.100", "P.10", "success.1"}

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]


def synthetic(n_queries: int, depth: int = 100, corpus: int = 1_000_000, seed: int = 0) -> tuple[Qrels, Run]:
    rng = np.random.default_rng(seed)
    qrels: Qrels = {}
    run: Run = {}
    for i in range(n_queries):
        qid = f"q{i}"
        docs = [f"d{j}" for j in rng.choice(corpus, depth + 8, replace=False)]
        n_rel, n_non = int(rng.integers(1, 6)), int(rng.integers(0, 4))
        judged = {d: int(g) for d, g in zip(docs[:n_rel], rng.integers(1, 4, n_rel), strict=True)}
        judged |= dict.fromkeys(docs[n_rel : n_rel + n_non], 0)
        qrels[qid] = judged
        if rng.random() < 0.05:
            continue  # a query the system answered nothing for
        retrieved = docs[int(rng.integers(0, 3)) :][:depth]  # drops up to 2 relevant ones
        scores = rng.random(depth) + np.array([0.6 * judged.get(d, 0) for d in retrieved])
        run[qid] = dict(zip(retrieved, scores.tolist(), strict=True))
    return qrels, run


def ours(qrels: Qrels, run: Run) -> dict[str, float]:
    return evaluate(qrels, run, OURS)  # type: ignore[return-value]


def ours_per_query(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    return evaluate(qrels, run, OURS, per_query=True)  # type: ignore[return-value]


def trec(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """pytrec_eval's per-query values, every qrels query present (0 where the run lacks it)."""
    per_query = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES).evaluate(run)
    zero = dict.fromkeys(TREC.values(), 0.0)
    return {q: per_query.get(q, zero) for q in qrels}


def trec_means(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    """The means; mrr@10 from recip_rank: the first relevant document is in the top 10 exactly when
    1 / rank >= 0.1."""
    out = {m: float(np.mean([v[key] for v in per_query.values()])) for m, key in TREC.items()}
    rr = np.array([v["recip_rank"] for v in per_query.values()])
    out["mrr@10"] = float(np.where(rr >= 0.1 - 1e-12, rr, 0.0).mean())
    return out


def with_ranx(qrels: Qrels, run: Run) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety warnings
        means = ranx.evaluate(
            ranx.Qrels.from_dict(qrels), ranx.Run.from_dict(run), list(RANX.values()), make_comparable=True
        )
    return {m: float(means[key]) for m, key in RANX.items()}


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        out = call()
        return out, time.perf_counter() - start
    finally:
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    qrels, run = synthetic(args.queries)
    entries = sum(len(r) for r in run.values())
    print(f"{len(qrels):,} queries ({len(qrels) - len(run):,} missing from the run), {entries:,} run entries")

    _, warm = timed(lambda: with_ranx(qrels, run))
    print(f"ranx warm-up (numba compilation or cache load, untimed below): {warm:.1f} s")
    systems: dict[str, Callable[[], Any]] = {
        "vectorforge": lambda: ours(qrels, run),
        "vectorforge per_query=True": lambda: ours_per_query(qrels, run),
        "pytrec_eval": lambda: trec(qrels, run),
        "ranx (Qrels/Run from dicts included)": lambda: with_ranx(qrels, run),
    }
    names = list(systems)
    times: dict[str, list[float]] = {name: [] for name in names}
    answers: dict[str, Any] = {}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate who goes first
            answers[name], seconds = timed(systems[name])
            times[name].append(seconds)

    means = {
        "vectorforge": answers["vectorforge"],
        "pytrec_eval": trec_means(answers["pytrec_eval"]),
        "ranx": answers["ranx (Qrels/Run from dicts included)"],
    }
    diff_trec = max(abs(means["vectorforge"][m] - means["pytrec_eval"][m]) for m in OURS)
    diff_ranx = max(abs(means["vectorforge"][m] - means["ranx"][m]) for m in OURS)
    per_query = answers["vectorforge per_query=True"]
    diff_per_query = max(
        abs(per_query[q][m] - answers["pytrec_eval"][q][TREC[m]])
        for q in qrels
        for m in OURS
        if m != "mrr@10"
    )
    median = {name: statistics.median(t) for name, t in times.items()}
    base = median["vectorforge"]
    print_table(
        f"IR metrics, {len(qrels):,} queries x 100 documents, 6 metrics (median of {args.rounds} rounds)",
        ["system", "seconds", "queries/s", "time / vectorforge's"],
        [[name, median[name], len(qrels) / median[name], median[name] / base] for name in names],
    )
    print_table(
        "means",
        ["metric", "vectorforge", "pytrec_eval", "ranx"],
        [[m, means["vectorforge"][m], means["pytrec_eval"][m], means["ranx"][m]] for m in OURS],
    )
    print(
        f"max |difference| of the means: pytrec_eval {diff_trec:.2e}, ranx {diff_ranx:.2e}; "
        f"of the per-query values against pytrec_eval (mrr@10 aside): {diff_per_query:.2e}"
    )
    ratio_ranx = base / median["ranx (Qrels/Run from dicts included)"]
    ratio_trec = base / median["pytrec_eval"]
    print(f"time ratio vectorforge / ranx: {ratio_ranx:.3f}; vectorforge / pytrec_eval: {ratio_trec:.3f}")
    write_result(
        "metrics",
        {
            "queries": len(qrels),
            "queries_missing_from_run": len(qrels) - len(run),
            "run_entries": entries,
            "metrics": OURS,
            "rounds": args.rounds,
            "timed": "from the qrels and run dicts to the means; ranx includes Qrels.from_dict and "
            "Run.from_dict, after one untimed warm-up call (numba compilation excluded)",
            "ranx_warmup_s": round(warm, 2),
            "versions": {p: metadata.version(p) for p in ("ranx", "numba", "pytrec_eval-terrier")},
            "seconds": {name: round(median[name], 4) for name in names},
            "seconds_all_rounds": {name: [round(t, 4) for t in times[name]] for name in names},
            "time_ratio_vectorforge_over_ranx": round(ratio_ranx, 4),
            "time_ratio_vectorforge_over_pytrec_eval": round(ratio_trec, 4),
            "means": means,
            "max_abs_diff_means": {"pytrec_eval": diff_trec, "ranx": diff_ranx},
            "max_abs_diff_per_query_pytrec_eval": diff_per_query,
        },
    )


if __name__ == "__main__":
    main()
