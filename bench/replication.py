"""Replication on the local backend: write throughput at each write_quorum, read latency at each
consistency level, and the time a write takes to fail over when its leader is down.

Baseline in the same run: the same writes and reads on an unreplicated collection. Persistent data
folder (every replica fsyncs), 3 replicas, 1 shard, HNSW.

Then what a cross-shard snapshot costs: on 4 shards x 2 replicas, read latency at each level while
a writer upserts batches spread over every shard (strong reads and writes take turns; the other
levels do not), against the same reads with no writer.

    python bench/replication.py [--n 20000] [--batch 100]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from typing import Any

import numpy as np
from common import clustered_set, print_table, write_result

import vectorforge as vf


def write_rate(col: Any, base: np.ndarray, batch: int, start_id: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(base), batch):
        col.upsert(list(range(start_id + i, start_id + i + len(base[i : i + batch]))), base[i : i + batch])
    return len(base) / (time.perf_counter() - t0)


def read_latency(col: Any, queries: np.ndarray, consistency: str | None) -> dict[str, float]:
    times = []
    for q in queries:
        t0 = time.perf_counter()
        col.search(q, k=10, with_payload=False, consistency=consistency)
        times.append(time.perf_counter() - t0)
    arr = np.array(times) * 1000
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "qps": len(arr) / arr.sum() * 1000,
    }


def reads_under_writes(db: Any, base: np.ndarray, queries: np.ndarray, batch: int) -> list[dict[str, Any]]:
    col = db.create_collection("snap", dim=base.shape[1], metric="dot", shards=4, replicas=2)
    half = len(base) // 2
    for i in range(0, half, 1000):
        col.upsert(list(range(i, min(i + 1000, half))), base[i : min(i + 1000, half)])
    rows = []
    for level in ("strong", "bounded", "session", "eventual"):
        rows.append({"consistency": level, "writer": "none", **read_latency(col, queries, level)})
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        i = half
        while not stop.is_set():
            rows_ = base[i % len(base) : i % len(base) + batch]
            col.upsert(list(range(10**8 + i, 10**8 + i + len(rows_))), rows_)
            written[0] += len(rows_)
            i += batch

    for level in ("strong", "bounded", "session", "eventual"):
        stop.clear()
        t = threading.Thread(target=writer)
        t.start()
        t0, before = time.perf_counter(), written[0]
        stats = read_latency(col, queries, level)
        rate = (written[0] - before) / (time.perf_counter() - t0)
        stop.set()
        t.join()
        rows.append({"consistency": level, "writer": f"{batch}-point batches", **stats, "writes_per_s": rate})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--out", default="replication")
    args = ap.parse_args()
    base, queries = clustered_set()
    base, queries = base[: args.n], queries[:300]
    writes: list[dict[str, Any]] = []
    reads: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, vf.connect(tmp) as db:
        plain = db.create_collection("plain", dim=base.shape[1], metric="dot")
        writes.append({"setup": "1 copy (baseline)", "vectors_per_s": write_rate(plain, base, args.batch, 0)})
        for quorum in ("1", "majority", "all"):
            col = db.create_collection(
                f"q{quorum}", dim=base.shape[1], metric="dot", replicas=3, write_quorum=quorum
            )
            writes.append(
                {
                    "setup": f"3 replicas, write_quorum={quorum}",
                    "vectors_per_s": write_rate(col, base, args.batch, 0),
                }
            )
        reads.append({"consistency": "1 copy (baseline)", **read_latency(plain, queries, None)})
        col = db.get_collection("qmajority")
        for level in ("strong", "bounded", "session", "eventual"):
            reads.append({"consistency": level, **read_latency(col, queries, level)})
        rs = col.shards[0]
        old = rs.leader
        rs.fail(old)
        t0 = time.perf_counter()
        col.upsert([10**9], base[:1])  # notices the dead leader, fails over, then writes
        failover_ms = (time.perf_counter() - t0) * 1000
        rs.recover(old)
        snapshot_reads = reads_under_writes(db, base, queries, args.batch)
    base_w = writes[0]["vectors_per_s"]
    for w in writes:
        w["x_baseline"] = w["vectors_per_s"] / base_w
    print_table(
        f"write throughput (batches of {args.batch}, fsync per replica)",
        ["setup", "vectors/s", "x 1 copy"],
        [[w["setup"], w["vectors_per_s"], w["x_baseline"]] for w in writes],
    )
    print_table(
        "search latency by consistency level (3 replicas, majority)",
        ["consistency", "p50 ms", "p99 ms", "QPS"],
        [[r["consistency"], r["p50_ms"], r["p99_ms"], r["qps"]] for r in reads],
    )
    print_table(
        "reads on 4 shards x 2 replicas, without and with a writer",
        ["consistency", "writer", "p50 ms", "p99 ms", "QPS", "writes/s meanwhile"],
        [
            [r["consistency"], r["writer"], r["p50_ms"], r["p99_ms"], r["qps"], r.get("writes_per_s", "-")]
            for r in snapshot_reads
        ],
    )
    print(
        f"failover: a write whose leader is down took {failover_ms:.1f} ms (detect, elect, catch up, write)"
    )
    write_result(
        args.out,
        {
            "n": len(base),
            "batch": args.batch,
            "writes": writes,
            "reads": reads,
            "failover_write_ms": failover_ms,
            "snapshot_reads": snapshot_reads,
        },
    )


if __name__ == "__main__":
    main()
