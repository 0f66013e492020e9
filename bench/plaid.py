"""PLAID against exhaustive MaxSim on a clustered synthetic set of token matrices.

Documents are bags of 16 to 48 unit tokens (128-d) around topic centres; a query is 32 tokens around
the topics of one document (so that it has a real answer). Each row runs in this process on the same
rows: the `flat` multi index (exhaustive MaxSim, the baseline and the truth) and the `plaid` index
sealed over the same tokens, at the reference's default search parameters for k = 10.

Reported: recall@10 of PLAID's top 10 within the exhaustive top 10 (goal >= 0.95); the share of the
exhaustive top 10 among the centroid-only candidates (stages 1-2) at depth 10,000 (goal >= 0.99);
latency per query, PLAID beside exhaustive (goal <= 30 ms at 100k passages; query encoding is not
part of it: the queries are token matrices); bytes per token; build time. Writes
bench/results/plaid.json.

    python bench/plaid.py [--passages 100000] [--queries 100] [--nbits 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import print_table, write_result
from tqdm.auto import tqdm

from vectorforge.index.maxsim import MultiVectorIndex
from vectorforge.multivector.plaid import PLAIDIndex, _candidates, _centroid_top, parse_search


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def synthetic(n: int, queries: int, dim: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(max(n // 5, 100), dim)))
    docs, doc_topics = [], []
    for _ in tqdm(range(n), desc="documents", leave=False):
        t = rng.integers(0, len(topics), size=int(rng.integers(16, 49)))
        doc_topics.append(t)
        docs.append(unit(topics[t] + 0.08 * rng.normal(size=(len(t), dim))))
    qs = []
    for d in rng.integers(0, n, size=queries):
        t = rng.choice(doc_topics[d], size=32)
        qs.append(unit(topics[t] + 0.08 * rng.normal(size=(32, dim))))
    return docs, qs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nbits", type=int, nargs="+", default=[2])
    args = parser.parse_args()
    dim, k = 128, 10
    docs, queries = synthetic(args.passages, args.queries, dim)
    tokens = sum(len(d) for d in docs)
    flat = MultiVectorIndex(dim)
    flat.add(docs)
    truth, exact_times = [], []
    for q in tqdm(queries, desc="exhaustive MaxSim", leave=False):
        start = time.perf_counter()
        truth.append(set(flat.search(q, k)[1].tolist()))
        exact_times.append(time.perf_counter() - start)
    rows, runs = [], []
    for nbits in args.nbits:
        plaid = PLAIDIndex(dim, {"exact_below_tokens": 0, "nbits": nbits})
        plaid.add(docs)
        start = time.perf_counter()
        plaid.seal()
        build = time.perf_counter() - start
        compressed = plaid._compressed
        assert compressed is not None
        recall, times, candidate_recall = [], [], []
        for q, want in tqdm(list(zip(queries, truth, strict=True)), desc=f"plaid {nbits} bits", leave=False):
            start = time.perf_counter()
            got = set(plaid.search(q, k)[1].tolist())
            times.append(time.perf_counter() - start)
            recall.append(len(got & want) / k)
            p = parse_search({"ncells": 4}, k)  # stages 1-2 only, to depth 10,000
            cs = q @ compressed.codec.centroids.T
            allowed = np.ones(args.passages, bool)
            cand = _candidates(compressed, cs, p.ncells, allowed)
            cand = _centroid_top(compressed, cs, cand, 10_000, p.centroid_score_threshold)
            candidate_recall.append(len(set(cand.tolist()) & want) / k)
        ram = compressed.codes.nbytes + compressed.packed.nbytes + compressed.ivf_rows.nbytes
        run = {
            "nbits": nbits,
            "centroids": len(compressed.codec.centroids),
            "build_s": build,
            "recall_at_10": float(np.mean(recall)),
            "candidates_10k_recall": float(np.mean(candidate_recall)),
            "latency_ms_median": 1000 * float(np.median(times)),
            "latency_ms_p95": 1000 * float(np.percentile(times, 95)),
            "exhaustive_ms_median": 1000 * float(np.median(exact_times)),
            "speedup_vs_exhaustive": float(np.median(exact_times) / np.median(times)),
            "codec_bytes_per_token": compressed.codec.bytes_per_token,
            "ram_bytes_per_token": ram / tokens,
            "float32_bytes_per_token": 4 * dim,
        }
        runs.append(run)
        rows.append(
            [
                f"plaid {nbits} bits",
                run["centroids"],
                run["recall_at_10"],
                run["candidates_10k_recall"],
                run["latency_ms_median"],
                run["exhaustive_ms_median"],
                run["speedup_vs_exhaustive"],
                run["codec_bytes_per_token"],
                run["ram_bytes_per_token"],
                run["build_s"],
            ]
        )
    print_table(
        f"PLAID vs exhaustive MaxSim: {args.passages:,} passages, {tokens:,} tokens, {args.queries} queries",
        [
            "index",
            "K",
            "recall@10",
            "cand@10k",
            "ms/q",
            "exhaustive ms/q",
            "speed-up",
            "B/token codec",
            "B/token RAM",
            "build s",
        ],
        rows,
    )
    write_result(
        "plaid",
        {
            "set": {
                "passages": args.passages,
                "tokens": tokens,
                "dim": dim,
                "queries": args.queries,
                "kind": "clustered synthetic (topics = passages / 5, noise 0.08)",
            },
            "baseline": "flat multi index: exhaustive MaxSim (numpy), same process",
            "goals": {
                "recall_at_10": 0.95,
                "candidates_10k_recall": 0.99,
                "latency_ms_at_100k": 30,
                "codec_bytes_per_token_2bits": 36,
            },
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
