"""IVF-Flat: vectorforge's `ivfflat` index against raw FAISS IndexIVFFlat (same nlist, same nprobe).

The peer run (docs/benchmarks.md section 3) found txtai's default IVF-Flat backend fastest on the shared
clustered set; this measures vectorforge's own IVF-Flat on the same vectors, alternating with raw FAISS.

    python bench/ivfflat.py [--n 200000]
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import faiss
from common import clustered_set, exact_ground_truth, print_table, recall_at_k, write_result

import vectorforge as vf

K = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--out", default="ivfflat")
    args = ap.parse_args()
    base, queries = clustered_set(args.n)
    truth = exact_ground_truth(base, queries, K, name=f"clustered-{args.n}")
    nlist = int(4 * math.sqrt(len(base)))
    quantizer = faiss.IndexFlatIP(base.shape[1])
    raw = faiss.IndexIVFFlat(quantizer, base.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    raw.train(base)
    raw.add(base)
    raw_build = time.perf_counter() - t0
    db = vf.connect()
    col = db.create_collection(
        "ivf",
        dim=base.shape[1],
        metric="dot",
        index="ivfflat",
        index_params={"nlist": nlist},
        max_segment_points=len(base),
    )
    t0 = time.perf_counter()
    for i in range(0, len(base), 100_000):
        col.upsert(list(range(i, min(i + 100_000, len(base)))), base[i : i + 100_000])
    col.flush()  # the segment trains its inverted lists when sealed
    vf_build = time.perf_counter() - t0
    nprobe = 1
    while True:
        _, ids = raw.search(queries, K, params=faiss.SearchParametersIVF(nprobe=nprobe))
        if recall_at_k(ids, truth) >= 0.95 or nprobe >= nlist:
            break
        nprobe *= 2
    rows: dict[str, Any] = {"raw FAISS IVFFlat": {}, "vectorforge ivfflat": {}}
    for _ in range(3):
        p = faiss.SearchParametersIVF(nprobe=nprobe)
        t0 = time.perf_counter()
        found = [raw.search(queries[i : i + 1], K, params=p)[1][0].tolist() for i in range(len(queries))]
        qps = len(queries) / (time.perf_counter() - t0)
        if qps > rows["raw FAISS IVFFlat"].get("single_qps", 0):
            rows["raw FAISS IVFFlat"].update(single_qps=qps, recall=recall_at_k(found, truth))
        t0 = time.perf_counter()
        raw.search(queries, K, params=p)
        rows["raw FAISS IVFFlat"]["batch_qps"] = max(
            rows["raw FAISS IVFFlat"].get("batch_qps", 0), len(queries) / (time.perf_counter() - t0)
        )
        t0 = time.perf_counter()
        found = [
            [h.id for h in col.search(q, k=K, params={"nprobe": nprobe}, with_payload=False)] for q in queries
        ]
        qps = len(queries) / (time.perf_counter() - t0)
        if qps > rows["vectorforge ivfflat"].get("single_qps", 0):
            rows["vectorforge ivfflat"].update(single_qps=qps, recall=recall_at_k(found, truth))
        t0 = time.perf_counter()
        col.search_batch(queries, k=K, params={"nprobe": nprobe}, with_payload=False)
        rows["vectorforge ivfflat"]["batch_qps"] = max(
            rows["vectorforge ivfflat"].get("batch_qps", 0), len(queries) / (time.perf_counter() - t0)
        )
    rows["raw FAISS IVFFlat"]["build_s"] = raw_build
    rows["vectorforge ivfflat"]["build_s"] = vf_build
    r, v = rows["raw FAISS IVFFlat"], rows["vectorforge ivfflat"]
    v["x_faiss_single"], v["x_faiss_batch"] = (
        v["single_qps"] / r["single_qps"],
        v["batch_qps"] / r["batch_qps"],
    )
    print_table(
        f"IVF-Flat, {len(base):,} x {base.shape[1]}, nlist={nlist}, nprobe={nprobe}",
        ["system", "build s", "single QPS", "batch QPS", "recall@10"],
        [[name, x["build_s"], x["single_qps"], x["batch_qps"], x["recall"]] for name, x in rows.items()],
    )
    write_result(args.out, {"n": len(base), "nlist": nlist, "nprobe": nprobe, "rows": rows})


if __name__ == "__main__":
    main()
