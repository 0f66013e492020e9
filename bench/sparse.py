"""BM25 on SciFact: vectorforge's sparse index against bm25s (the baseline, same tokenization and
Lucene's formula) in the same run: nDCG@10 on the test queries, single-query QPS and p99, build time.

    python bench/sparse.py
"""

from __future__ import annotations

import time

import bm25s
import numpy as np
import pytrec_eval
import Stemmer
from common import print_table, shared_path, write_result

from vectorforge.datasets.beir import load_beir
from vectorforge.embed.analyzer import get_analyzer
from vectorforge.index.sparse import BM25Params, SparseIndex

K = 10


def ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    per_query = evaluator.evaluate(run)
    return float(np.mean([per_query[q]["ndcg_cut_10"] if q in per_query else 0.0 for q in qrels]))


def latencies(call: object, queries: list[object]) -> tuple[float, float, list[object]]:
    times, answers = [], []
    for q in queries:
        t = time.perf_counter()
        answers.append(call(q))  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    arr = np.asarray(times)
    return len(queries) / arr.sum(), float(np.percentile(arr, 99) * 1000), answers


def main() -> None:
    data = load_beir(shared_path() / "data" / "scifact", split="test")
    ids = list(data.corpus)
    docs = [data.doc_text(i) for i in ids]
    qids = list(data.queries)
    texts = [data.queries[q] for q in qids]
    analyzer = get_analyzer("english")
    params = BM25Params(k1=1.2, b=0.75)

    t = time.perf_counter()
    index = SparseIndex()
    index.add(analyzer.encode(docs))
    index.stats([])  # builds the inverted lists
    ours_build = time.perf_counter() - t

    stemmer = Stemmer.Stemmer("english")
    stop = sorted(analyzer.stopwords)
    t = time.perf_counter()
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(
        bm25s.tokenize(docs, stopwords=stop, stemmer=stemmer, show_progress=False), show_progress=False
    )
    theirs_build = time.perf_counter() - t

    def ours(text: str) -> dict[str, float]:
        q = analyzer.counts(text)
        scores, rows = index.bm25(q, index.stats(q.indices.tolist()), K, params=params)
        return {ids[r]: float(s) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)}

    def theirs(text: str) -> dict[str, float]:
        tokens = bm25s.tokenize([text], stopwords=stop, stemmer=stemmer, show_progress=False)
        rows, scores = reference.retrieve(tokens, k=K, show_progress=False)
        return {ids[r]: float(s) for r, s in zip(rows[0].tolist(), scores[0].tolist(), strict=True) if s > 0}

    results = {}
    for name, call in (("vectorforge", ours), ("bm25s (baseline)", theirs)):
        latencies(call, texts[:20])  # warm up
        qps, p99, answers = latencies(call, texts)
        run = dict(zip(qids, answers, strict=True))
        results[name] = {
            "qps": round(qps, 1),
            "p99_ms": round(p99, 2),
            "ndcg@10": round(ndcg(data.qrels, run), 4),
        }
    results["vectorforge"]["build_s"] = round(ours_build, 2)
    results["bm25s (baseline)"]["build_s"] = round(theirs_build, 2)
    ratio = results["vectorforge"]["qps"] / results["bm25s (baseline)"]["qps"]
    rows = [[name, r["ndcg@10"], r["qps"], r["p99_ms"], r["build_s"]] for name, r in results.items()]
    print_table(
        f"BM25 on SciFact ({len(docs):,} docs, {len(texts)} test queries, k1=1.2 b=0.75, one at a time)",
        ["system", "nDCG@10", "QPS", "p99 ms", "build s"],
        rows,
    )
    print(f"QPS ratio vectorforge / bm25s: {ratio:.2f}")
    write_result(
        "sparse",
        {
            "corpus": "scifact",
            "documents": len(docs),
            "queries": len(texts),
            "results": results,
            "qps_ratio": round(ratio, 3),
        },
    )


if __name__ == "__main__":
    main()
