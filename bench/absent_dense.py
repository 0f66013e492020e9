"""Dense search when some points lack the primary dense vector: recall@10 and single-query QPS.

The shared set's first `--n` vectors in one HNSW collection; a share of the points (0%, 10%, 50%) is
upserted without its dense vector. Ground truth: exact top-10 over the points that have it. A
point without the vector is left out by a mask, so the search is a filtered one: the baseline in
the same run is the collection where every point has it (share 0%), and beside each share the
same collection searched with a payload filter that keeps the same points (what a user would do
without the feature: a dummy vector and a "has_dense" flag). QPS: the median of 5 interleaved rounds.

    python bench/absent_dense.py [--n 50000] [--queries 300]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import faiss
import numpy as np
from common import clustered_set, console, print_table, recall_at_k, write_result

import vectorforge as vf

SHARES = [0.0, 0.1, 0.5]
K = 10
BATCH = 10_000
PARAMS = {"M": 32, "ef_construction": 200, "ef": 64}
ROUNDS = 5  # timed rounds of every query set; the median is reported


def _qps(col: Any, queries: np.ndarray, **options: Any) -> tuple[list[list[int]], float]:
    for q in queries[:20]:  # warm up
        col.search(q, K, with_payload=False, **options)
    start = time.perf_counter()
    found = [[h.id for h in col.search(q, K, with_payload=False, **options)] for q in queries]
    return found, len(queries) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", default="absent_dense")
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    base, queries = clustered_set()
    base, queries = base[: args.n], queries[: args.queries]
    rng = np.random.default_rng(3)
    rows, results = [], []
    for share in SHARES:
        lacking = rng.random(len(base)) < share
        have = np.flatnonzero(~lacking)
        _, truth_rows = faiss.knn(queries, base[have], K, metric=faiss.METRIC_INNER_PRODUCT)
        truth = have[truth_rows]
        with vf.connect() as db:
            # the mask: points upserted without the dense vector
            masked = db.create_collection(
                "m", dim=base.shape[1], metric="dot", index="hnsw", index_params=PARAMS
            )
            # the workaround: a dummy vector for every such point and a payload flag to filter on
            flagged = db.create_collection(
                "f", dim=base.shape[1], metric="dot", index="hnsw", index_params=PARAMS
            )
            for i in range(0, len(base), BATCH):
                ids = list(range(i, min(i + BATCH, len(base))))
                part = base[i : i + BATCH]
                dense = [None if lacking[j] else part[j - i] for j in ids]
                masked.upsert(ids, {"": dense})
                flagged.upsert(ids, part, [{"has_dense": not lacking[j]} for j in ids])
            masked.flush()
            flagged.flush()
            keep = {"must": [{"key": "has_dense", "match": True}]}
            rounds_m, rounds_f = [], []
            for _ in range(ROUNDS):  # interleaved, so that a busy moment hits both alike
                found_m, qps = _qps(masked, queries)
                rounds_m.append(qps)
                found_f, qps = _qps(flagged, queries, filter=keep)
                rounds_f.append(qps)
            qps_m, qps_f = float(np.median(rounds_m)), float(np.median(rounds_f))
        recall_m, recall_f = recall_at_k(found_m, truth), recall_at_k(found_f, truth)
        rows.append([f"{share:.0%}", recall_m, qps_m, recall_f, qps_f])
        results.append(
            {
                "share_without_dense": share,
                "mask": {"recall_at_10": recall_m, "qps": qps_m},
                "payload_filter": {"recall_at_10": recall_f, "qps": qps_f},
            }
        )
        console.print(f"share {share:.0%}: mask {qps_m:,.0f} QPS, filter {qps_f:,.0f} QPS")
    baseline = results[0]["mask"]["qps"]
    for r in results:
        r["mask"]["qps_vs_all_present"] = r["mask"]["qps"] / baseline
    print_table(
        f"Dense search with points lacking the vector ({args.n:,} x {base.shape[1]}, HNSW, 1 thread)",
        ["share without", "mask recall@10", "mask QPS", "filter recall@10", "filter QPS"],
        rows,
    )
    write_result(args.out, {"n": args.n, "queries": len(queries), "params": PARAMS, "results": results})


if __name__ == "__main__":
    main()
