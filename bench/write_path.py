"""Where a small write's time goes, and what a busy writer costs the readers of the same collection.

Baselines in the same run: raw FAISS (IndexHNSWFlat.add of the same 10 vectors into a graph of the
same size and parameters) and the raw write-ahead log (append + fsync of the same record), against
one `upsert` of 10 points on a persistent HNSW collection; then single-query search latency with no
writer, against the same searches while one thread upserts 10-point batches back to back.

    python bench/write_path.py [--n 20000] [--writes 200]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import faiss
import numpy as np
from common import clustered_set, print_table, write_result

import vectorforge as vf
from vectorforge.storage import WriteAheadLog

PARAMS = {"M": 32, "ef_construction": 200, "ef": 64}


def per_call_ms(fn: object, calls: int) -> float:
    start = time.perf_counter()
    for i in range(calls):
        fn(i)  # type: ignore[operator]
    return (time.perf_counter() - start) * 1000 / calls


def latencies(col: vf.Collection, queries: np.ndarray) -> dict[str, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        col.search(q, k=10, with_payload=False)
        times.append((time.perf_counter() - t) * 1000)
    arr = np.array(times)
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--out", default="write_path")
    args = ap.parse_args()
    data, queries = clustered_set()
    base, fresh, queries = data[: args.n], data[args.n : args.n + 20 * args.writes], queries[:300]
    with tempfile.TemporaryDirectory() as tmp:
        graph = faiss.IndexHNSWFlat(base.shape[1], PARAMS["M"], faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = PARAMS["ef_construction"]
        graph.add(base)
        faiss_ms = per_call_ms(lambda i: graph.add(fresh[10 * i : 10 * i + 10]), args.writes)
        log = WriteAheadLog(Path(tmp) / "wal")
        log.open_for_append(1)
        record = {"op": "upsert", "ids": list(range(10)), "vectors": fresh[:10].tobytes(), "payloads": None}
        wal_ms = per_call_ms(lambda i: log.append({**record, "seq": i + 1}), args.writes)
        log.close()
        with vf.connect(Path(tmp) / "db") as db:
            col = db.create_collection("w", dim=base.shape[1], metric="dot", index_params=PARAMS)
            for i in range(0, len(base), 2000):
                col.upsert(list(range(i, i + len(base[i : i + 2000]))), base[i : i + 2000])

            def upsert(i: int) -> None:
                col.upsert(list(range(10**7 + 10 * i, 10**7 + 10 * i + 10)), fresh[10 * i : 10 * i + 10])

            upsert_ms = per_call_ms(upsert, args.writes)
            quiet = latencies(col, queries)
            stop = threading.Event()

            def writer() -> None:
                i = args.writes
                while not stop.is_set():
                    j = i % (len(fresh) // 10 - 1)
                    col.upsert(list(range(10**8 + 10 * i, 10**8 + 10 * i + 10)), fresh[10 * j : 10 * j + 10])
                    i += 1

            t = threading.Thread(target=writer)
            t.start()
            busy = latencies(col, queries)
            stop.set()
            t.join()
    print_table(
        f"one upsert of 10 points into {args.n:,} x {base.shape[1]} HNSW (M=32, efC=200), ms per call",
        ["part", "ms"],
        [
            ["vectorforge upsert (log + fsync + HNSW insert + bookkeeping)", upsert_ms],
            ["raw FAISS IndexHNSWFlat.add of the same 10 vectors", faiss_ms],
            ["raw write-ahead log append + fsync of the same record", wal_ms],
        ],
    )
    print_table(
        "single-query search while one thread upserts 10-point batches back to back",
        ["writer", "p50 ms", "p99 ms"],
        [["none", quiet["p50_ms"], quiet["p99_ms"]], ["busy", busy["p50_ms"], busy["p99_ms"]]],
    )
    write_result(
        args.out,
        {
            "n": args.n,
            "params": PARAMS,
            "upsert_10_ms": upsert_ms,
            "faiss_add_10_ms": faiss_ms,
            "wal_append_fsync_ms": wal_ms,
            "search_no_writer": quiet,
            "search_with_writer": busy,
            "p50_with_writer_x_without": busy["p50_ms"] / quiet["p50_ms"],
        },
    )


if __name__ == "__main__":
    main()
