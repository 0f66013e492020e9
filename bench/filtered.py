"""Filtered search: recall@10 against exact filtered search, at selectivity 0.1%, 1%, 10% and 50%.

Every point carries {"bucket": b} with b uniform in 0..999; a filter {"bucket" < s * 1000} keeps a
fraction s. Ground truth: exact top-10 over the matching points. Baseline in the same run: FAISS HNSW
with an IDSelector (the filter pushed into the graph walk, ef unchanged), which is what a thin
wrapper over FAISS does. Target: vectorforge recall@10 >= 0.99 at every selectivity.

    python bench/filtered.py [--n 200000] [--queries 200]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import faiss
import numpy as np
from common import clustered_set, console, print_table, recall_at_k, write_result

import vectorforge as vf

SELECTIVITIES = [0.001, 0.01, 0.1, 0.5]
K = 10
EF = 64
BATCH = 10_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default="filtered")
    args = ap.parse_args()
    base, queries = clustered_set(args.n)
    queries = queries[: args.queries]
    buckets = np.random.default_rng(7).integers(0, 1000, len(base))

    db = vf.connect()
    col = db.create_collection(
        "f",
        dim=base.shape[1],
        metric="dot",
        index="hnsw",
        index_params={"M": 32, "ef_construction": 200, "ef": EF},
    )
    start = time.perf_counter()
    for i in range(0, len(base), BATCH):
        col.upsert(
            list(range(i, min(i + BATCH, len(base)))),
            base[i : i + BATCH],
            [{"bucket": int(b)} for b in buckets[i : i + BATCH]],
        )
    console.print(f"inserted {len(base):,} in {time.perf_counter() - start:.1f} s")
    index = col._segments[0].index.index  # the same FAISS graph, for the baseline

    rows: list[dict[str, Any]] = []
    for sel in SELECTIVITIES:
        limit = int(sel * 1000)
        allowed = np.flatnonzero(buckets < limit)
        _, gt_local = faiss.knn(
            queries, np.ascontiguousarray(base[allowed]), K, metric=faiss.METRIC_INNER_PRODUCT
        )
        truth = allowed[gt_local]
        flt = {"must": [{"key": "bucket", "range": {"lt": limit}}]}

        col.search(queries[0], k=K, filter=flt)  # warm-up: the first use of a key builds its payload index
        found = []
        t0 = time.perf_counter()
        for q in queries:
            found.append([h.id for h in col.search(q, k=K, filter=flt, with_payload=False)])
        vf_qps = len(queries) / (time.perf_counter() - t0)

        mask = np.zeros(len(base), dtype=bool)
        mask[allowed] = True
        bits = np.packbits(mask, bitorder="little")
        params = faiss.SearchParametersHNSW(
            efSearch=EF, sel=faiss.IDSelectorBitmap(len(base), faiss.swig_ptr(bits))
        )
        base_found = []
        t0 = time.perf_counter()
        for i in range(len(queries)):
            _, ids = index.search(queries[i : i + 1], K, params=params)
            base_found.append([int(x) for x in ids[0] if x >= 0])
        base_qps = len(queries) / (time.perf_counter() - t0)

        rows.append(
            {
                "selectivity": sel,
                "matching": len(allowed),
                "vectorforge_recall": recall_at_k(found, truth),
                "vectorforge_qps": vf_qps,
                "faiss_idselector_recall": recall_at_k(base_found, truth),
                "faiss_idselector_qps": base_qps,
            }
        )
    print_table(
        f"filtered search, {len(base):,} x {base.shape[1]}, k={K}, ef={EF}",
        [
            "selectivity",
            "matching",
            "vectorforge recall",
            "vectorforge QPS",
            "FAISS+IDSelector recall",
            "FAISS+IDSelector QPS",
        ],
        [
            [
                f"{r['selectivity']:.1%}",
                r["matching"],
                r["vectorforge_recall"],
                r["vectorforge_qps"],
                r["faiss_idselector_recall"],
                r["faiss_idselector_qps"],
            ]
            for r in rows
        ],
    )
    write_result(args.out, {"n": len(base), "queries": len(queries), "k": K, "ef": EF, "rows": rows})


if __name__ == "__main__":
    main()
