"""Online resharding: what `col.reshard(N2)` costs, and what reads and writes see while it runs.

Baseline in the same run: the offline way, which is all Qdrant (open source) and Weaviate offer: stop
writes, copy every point into a new collection with the new shard count, switch clients over. Here
the copy is a scroll of the old collection upserted into a new one, with no traffic.

For each sharding strategy: build `--from` shards (HNSW M=32, efConstruction=200, ef=64, persistent
folder), run a reader (single-query search) and a writer (upserts of 10 new points) for
`--steady` seconds, then again while `reshard(--to)` runs. Reported: the reshard's time against the
offline copy, read QPS and latency and write rate during the reshard against the steady state,
recall@10 before and after (against exact search of the same points), and that every
acknowledged write is present afterwards.

    python bench/resharding.py [--n 50000] [--from 2] [--to 4] [--steady 10] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from typing import Any

import numpy as np
from common import clustered_set, console, print_table, recall_at_k, write_result

import vectorforge as vf

K = 10
PARAMS = {"M": 32, "ef_construction": 200, "ef": 64}
BATCH = 5_000


class Traffic:
    """A reader and a writer in threads; latencies and acknowledged ids recorded per phase."""

    def __init__(self, col: Any, queries: np.ndarray, fresh: np.ndarray, first_id: int) -> None:
        self.col, self.queries, self.fresh = col, queries, fresh
        self.first_id = self.next_id = first_id
        self.acked: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.read_ms: list[float] = []
        self.write_ms: list[float] = []

    def start(self) -> None:
        self._stop.clear()
        self.read_ms, self.write_ms = [], []
        self._threads = [threading.Thread(target=self._read), threading.Thread(target=self._write)]
        self.t0 = time.perf_counter()
        for t in self._threads:
            t.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        for t in self._threads:
            t.join()
        seconds = time.perf_counter() - self.t0
        reads = np.array(self.read_ms)
        return {
            "seconds": seconds,
            "read_qps": len(reads) / seconds,
            "read_p50_ms": float(np.percentile(reads, 50)),
            "read_p99_ms": float(np.percentile(reads, 99)),
            "read_max_ms": float(reads.max()),
            "write_points_per_s": 10 * len(self.write_ms) / seconds,
            "write_p99_ms": float(np.percentile(self.write_ms, 99)),
        }

    def _read(self) -> None:
        i = 0
        while not self._stop.is_set():
            q = self.queries[i % len(self.queries)]
            t = time.perf_counter()
            try:
                self.col.search(q, k=K, with_payload=False)
            except Exception as exc:  # a benchmark reports errors instead of dying
                self.errors.append(repr(exc))
            self.read_ms.append((time.perf_counter() - t) * 1000)
            i += 1

    def _write(self) -> None:
        while not self._stop.is_set():
            ids = list(range(self.next_id, self.next_id + 10))
            at = (self.next_id - self.first_id) % (len(self.fresh) - 10)
            rows = self.fresh[at : at + 10]
            t = time.perf_counter()
            try:
                self.col.upsert(ids, rows)
                self.acked.extend(ids)
            except Exception as exc:
                self.errors.append(repr(exc))
            self.write_ms.append((time.perf_counter() - t) * 1000)
            self.next_id += 10


def create(db: Any, name: str, dim: int, shards: int, sharding: str, n_probe: int | None) -> Any:
    return db.create_collection(
        name,
        dim=dim,
        metric="dot",
        index="hnsw",
        index_params=PARAMS,
        shards=shards,
        sharding=sharding,
        n_probe=n_probe,
    )


def build(db: Any, name: str, base: np.ndarray, shards: int, sharding: str, n_probe: int | None) -> Any:
    col = create(db, name, base.shape[1], shards, sharding, n_probe)
    for i in range(0, len(base), BATCH):
        col.upsert(list(range(i, min(i + BATCH, len(base)))), base[i : i + BATCH])
    return col


def recall(col: Any, queries: np.ndarray) -> float:
    """recall@10 against an exact search of the same points (the writer keeps adding some)."""
    found = [[h.id for h in hits] for hits in col.search_batch(queries, k=K, with_payload=False)]
    exact = col.search_batch(queries, k=K, with_payload=False, params={"exact": True})
    return recall_at_k(found, np.array([[h.id for h in hits] for hits in exact]), K)


def offline_copy(db: Any, col: Any, name: str, shards: int, sharding: str, n_probe: int | None) -> float:
    """The baseline: a new collection with `shards` shards, filled from a scroll of the old one."""
    start = time.perf_counter()
    new = create(db, name, col.dim, shards, sharding, n_probe)
    cursor = None
    while True:
        page = col.scroll(limit=BATCH, cursor=cursor, with_vectors=True, with_payload=False)
        if page.records:
            new.upsert([r.id for r in page.records], np.array([r.vector for r in page.records], np.float32))
        cursor = page.next_cursor
        if cursor is None:
            return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--from", dest="before", type=int, default=2)
    ap.add_argument("--to", dest="after", type=int, default=4)
    ap.add_argument("--steady", type=float, default=10.0)
    ap.add_argument("--batch-size", type=int, default=100, help="points per copy batch")
    ap.add_argument("--out", default="resharding")
    args = ap.parse_args()
    data, queries = clustered_set()
    base, fresh, queries = data[: args.n], data[args.n : args.n + 20_000], queries[:500]
    runs: list[dict[str, Any]] = []
    for sharding in ("hash", "semantic"):
        # Semantic shards probe every shard here: the run measures moving points, not routing recall.
        n_probe, probe_after = (args.before, args.after) if sharding == "semantic" else (None, None)
        with tempfile.TemporaryDirectory() as tmp, vf.connect(tmp) as db:
            console.print(f"[bold]{sharding}[/]: building {args.n:,} points on {args.before} shards")
            col = build(db, "c", base, args.before, sharding, n_probe)
            recall_before = recall(col, queries)
            traffic = Traffic(col, queries, fresh, first_id=10**7)
            traffic.start()
            time.sleep(args.steady)
            steady = traffic.stop()
            points_before = col.count()
            traffic.start()
            t = time.perf_counter()
            col.reshard(args.after, n_probe=probe_after, batch_size=args.batch_size, progress=True)
            reshard_s = time.perf_counter() - t
            during = traffic.stop()
            recall_after = recall(col, queries)
            present = {r.id for r in col.get(traffic.acked, with_payload=False)}
            missing = len(set(traffic.acked) - present)
            copy_s = offline_copy(db, col, "copy", args.after, sharding, probe_after)
            runs.append(
                {
                    "sharding": sharding,
                    "points_at_start": points_before,
                    "reshard_s": reshard_s,
                    "offline_copy_s": copy_s,
                    "reshard_x_offline": reshard_s / copy_s,
                    "steady": steady,
                    "during": during,
                    "read_qps_during_x_steady": during["read_qps"] / steady["read_qps"],
                    "write_rate_during_x_steady": during["write_points_per_s"] / steady["write_points_per_s"],
                    "recall_before": recall_before,
                    "recall_after": recall_after,
                    "acknowledged_writes": len(traffic.acked),
                    "missing_after": missing,
                    "errors": traffic.errors[:5],
                    "error_count": len(traffic.errors),
                    "count_after": col.count(),
                }
            )
    print_table(
        f"reshard {args.before} -> {args.after} shards, {args.n:,} points, reader + writer running",
        ["sharding", "reshard s", "offline copy s", "x offline", "recall before", "recall after", "missing"],
        [
            [
                r["sharding"],
                r["reshard_s"],
                r["offline_copy_s"],
                r["reshard_x_offline"],
                r["recall_before"],
                r["recall_after"],
                r["missing_after"],
            ]
            for r in runs
        ],
    )
    rows = []
    for r in runs:
        for phase in ("steady", "during"):
            p = r[phase]
            rows.append(
                [
                    f"{r['sharding']} {phase}",
                    p["read_qps"],
                    p["read_p50_ms"],
                    p["read_p99_ms"],
                    p["read_max_ms"],
                    p["write_points_per_s"],
                    p["write_p99_ms"],
                ]
            )
    print_table(
        "traffic while resharding against the steady state",
        ["phase", "read QPS", "p50 ms", "p99 ms", "max ms", "writes/s", "write p99 ms"],
        rows,
    )
    write_result(
        args.out,
        {
            "n": args.n,
            "from_shards": args.before,
            "to_shards": args.after,
            "batch_size": args.batch_size,
            "params": PARAMS,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
