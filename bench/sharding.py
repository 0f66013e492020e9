"""Sharding: recall@10 and QPS for 1, 2, 4, 8 shards against one unsharded collection, same data.

Same index parameters everywhere (HNSW M=32, efConstruction=200, ef=64). `hash` shards ask every
shard; `semantic` shards route each vector to its nearest k-means centroid, and a query probes its
n_probe nearest shards: the recall/cost curve below is the trade it offers. Merge overhead is the
time a sharded search_batch spends outside the shards' own searches (run in parallel, as the
collection runs them), as a ratio of the whole.

    python bench/sharding.py [--n 100000] [--queries 500]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from common import clustered_set, console, exact_ground_truth, print_table, recall_at_k, write_result

import vectorforge as vf
from vectorforge.cluster.collection import _POOL

K = 10
PARAMS = {"M": 32, "ef_construction": 200, "ef": 64}
BATCH = 10_000


def build(db: Any, name: str, base: np.ndarray, **sharding: Any) -> tuple[Any, float]:
    col = db.create_collection(
        name, dim=base.shape[1], metric="dot", index="hnsw", index_params=PARAMS, **sharding
    )
    start = time.perf_counter()
    for i in range(0, len(base), BATCH):
        col.upsert(list(range(i, min(i + BATCH, len(base)))), base[i : i + BATCH])
    return col, time.perf_counter() - start


def measure(col: Any, queries: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    start = time.perf_counter()
    found = [[h.id for h in col.search(q, k=K, with_payload=False)] for q in queries]
    single = len(queries) / (time.perf_counter() - start)
    start = time.perf_counter()
    batch = col.search_batch(queries, k=K, with_payload=False)
    batch_qps = len(queries) / (time.perf_counter() - start)
    shard_seconds = 0.0
    shards = getattr(col, "shards", None)
    if shards:  # the shards' own searches for the same batch, run in parallel as the collection runs
        probes = col.router.probe(queries, None)
        work = []
        for shard_no, shard in enumerate(shards):
            asking = [qi for qi, p in enumerate(probes) if shard_no in p]
            if asking:
                work.append((shard.replicas[0].collection, queries[asking]))
        t0 = time.perf_counter()
        list(_POOL.map(lambda w: w[0].search_batch(w[1], k=K, with_payload=False), work))
        shard_seconds = time.perf_counter() - t0
    total_seconds = len(queries) / batch_qps
    return {
        "recall": recall_at_k(found, truth),
        "recall_batch": recall_at_k([[h.id for h in hits] for hits in batch], truth),
        "single_qps": single,
        "batch_qps": batch_qps,
        "merge_overhead": max(0.0, 1 - shard_seconds / total_seconds) if shards else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--out", default="sharding")
    args = ap.parse_args()
    base, queries = clustered_set()
    base, queries = base[: args.n], queries[: args.queries]
    truth = exact_ground_truth(base, queries, K, name=f"clustered-first{args.n}-q{args.queries}")
    db = vf.connect()
    rows: list[dict[str, Any]] = []
    col, seconds = build(db, "one", base)
    rows.append(
        {"shards": 1, "sharding": "none", "n_probe": 1, "insert_s": seconds, **measure(col, queries, truth)}
    )
    db.delete_collection("one")
    for shards in (2, 4, 8):
        col, seconds = build(db, f"hash{shards}", base, shards=shards, sharding="hash")
        rows.append(
            {
                "shards": shards,
                "sharding": "hash",
                "n_probe": shards,
                "insert_s": seconds,
                **measure(col, queries, truth),
            }
        )
        db.delete_collection(f"hash{shards}")
        col, seconds = build(db, f"sem{shards}", base, shards=shards, sharding="semantic", n_probe=1)
        for n_probe in sorted({1, 2, max(1, shards // 2), shards}):
            col.router.n_probe = n_probe
            rows.append(
                {
                    "shards": shards,
                    "sharding": "semantic",
                    "n_probe": n_probe,
                    "insert_s": seconds,
                    **measure(col, queries, truth),
                }
            )
        db.delete_collection(f"sem{shards}")
        console.print(rows[-1])
    baseline = rows[0]
    for r in rows:
        r["qps_vs_unsharded"] = r["single_qps"] / baseline["single_qps"]
        r["recall_vs_unsharded"] = r["recall"] - baseline["recall"]
    print_table(
        f"sharding, {len(base):,} x {base.shape[1]}, {len(queries)} queries, HNSW ef=64",
        [
            "shards",
            "sharding",
            "n_probe",
            "recall@10",
            "single QPS",
            "x unsharded",
            "batch QPS",
            "merge overhead",
        ],
        [
            [
                r["shards"],
                r["sharding"],
                r["n_probe"],
                r["recall"],
                r["single_qps"],
                r["qps_vs_unsharded"],
                r["batch_qps"],
                f"{r['merge_overhead']:.0%}",
            ]
            for r in rows
        ],
    )
    write_result(
        args.out, {"n": len(base), "queries": len(queries), "k": K, "index_params": PARAMS, "rows": rows}
    )


if __name__ == "__main__":
    main()
