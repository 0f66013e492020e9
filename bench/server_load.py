"""Server under load: mixed upserts and searches from several client processes against one server.

Reports throughput, p50/p95/p99 latency per operation, errors (must be 0), and checks after the run
that every acknowledged upsert is present. In the same run it compares search QPS through the server
with embedded search QPS on the same data: batch size 1 (one query per call; target >= 0.5x) and
search_batch of 64 (target >= 0.9x).

    python bench/server_load.py [--n 50000] [--clients 4] [--seconds 30]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, clustered_set, console, print_table, write_result

import vectorforge as vf

sys.path.insert(0, str(REPO))
from tests.serverproc import start_server

K = 10
EF = 64


def _client(url: str, worker: int, seconds: float, dim: int, out: Any) -> None:
    """One load process: 80% single searches, 20% upserts of 10 new points; records what was acked."""
    rng = np.random.default_rng(worker)
    db = vf.connect(url, timeout=30)
    col = db.get_collection("load")
    lat: dict[str, list[float]] = {"search": [], "upsert": []}
    acked: list[str] = []
    errors: list[str] = []
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        q = rng.standard_normal(dim).astype(np.float32)
        start = time.perf_counter()
        try:
            if rng.random() < 0.8:
                col.search(q, k=K, params={"ef": EF}, with_payload=False)
                lat["search"].append(time.perf_counter() - start)
            else:
                ids = [f"w{worker}-{n}-{i}" for i in range(10)]
                col.upsert(ids, rng.standard_normal((10, dim)).astype(np.float32), [{"w": worker}] * 10)
                lat["upsert"].append(time.perf_counter() - start)
                acked.extend(ids)
                n += 1
        except vf.VectorForgeError as exc:
            errors.append(repr(exc))
    db.close()
    out.put({"lat": lat, "acked": acked, "errors": errors})


def _qps_single(col: Any, queries: np.ndarray) -> float:
    start = time.perf_counter()
    for q in queries:
        col.search(q, k=K, params={"ef": EF}, with_payload=False)
    return len(queries) / (time.perf_counter() - start)


def _qps_batch(col: Any, queries: np.ndarray, size: int = 64) -> float:
    start = time.perf_counter()
    for i in range(0, len(queries), size):
        col.search_batch(queries[i : i + size], k=K, params={"ef": EF}, with_payload=False)
    return len(queries) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--out", default="server_load")
    args = ap.parse_args()
    base, queries = clustered_set()
    base = base[: args.n]
    dim = base.shape[1]
    tmp = Path(tempfile.mkdtemp(prefix="vf-load-"))

    embedded_db = vf.connect(tmp / "embedded")
    emb = embedded_db.create_collection("load", dim=dim, metric="dot", index="hnsw")
    server = start_server(tmp / "served")
    try:
        remote_db = vf.connect(server.url)
        rem = remote_db.create_collection("load", dim=dim, metric="dot", index="hnsw")
        for i in range(0, len(base), 5_000):
            ids = list(range(i, min(i + 5_000, len(base))))
            emb.upsert(ids, base[i : i + 5_000])
            rem.upsert(ids, base[i : i + 5_000])
        console.print(f"loaded {len(base):,} points into each")

        # Embedded vs served, alternating, best of 3.
        best = {"emb_single": 0.0, "rem_single": 0.0, "emb_batch": 0.0, "rem_batch": 0.0}
        for _ in range(3):
            best["emb_single"] = max(best["emb_single"], _qps_single(emb, queries[:500]))
            best["rem_single"] = max(best["rem_single"], _qps_single(rem, queries[:500]))
            best["emb_batch"] = max(best["emb_batch"], _qps_batch(emb, queries))
            best["rem_batch"] = max(best["rem_batch"], _qps_batch(rem, queries))
        ratios = {
            "single": best["rem_single"] / best["emb_single"],
            "batch64": best["rem_batch"] / best["emb_batch"],
        }
        print_table(
            "search QPS: served vs embedded (same data, same process for the clients)",
            ["mode", "embedded QPS", "server QPS", "server / embedded", "target"],
            [
                ["batch size 1", best["emb_single"], best["rem_single"], ratios["single"], ">= 0.5"],
                ["search_batch 64", best["emb_batch"], best["rem_batch"], ratios["batch64"], ">= 0.9"],
            ],
        )

        # Mixed load from several processes.
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_client, args=(server.url, w, args.seconds, dim, out))
            for w in range(args.clients)
        ]
        started = time.perf_counter()
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        wall = time.perf_counter() - started
        lat = {op: np.array([x for r in results for x in r["lat"][op]]) for op in ("search", "upsert")}
        acked = [i for r in results for i in r["acked"]]
        errors = [x for r in results for x in r["errors"]]
        missing = 0
        for i in range(0, len(acked), 1000):
            chunk = acked[i : i + 1000]
            missing += len(chunk) - len(rem.get(chunk, with_payload=False))
        rows = []
        summary: dict[str, Any] = {}
        for op, values in lat.items():
            if len(values) == 0:
                continue
            p50, p95, p99 = (float(np.percentile(values, q)) * 1000 for q in (50, 95, 99))
            summary[op] = {
                "count": len(values),
                "per_s": len(values) / wall,
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
            }
            rows.append([op, len(values), len(values) / wall, p50, p95, p99])
        print_table(
            f"mixed load: {args.clients} client processes, {args.seconds:.0f} s, 80% search / 20% upsert(10)",
            ["operation", "count", "per second", "p50 ms", "p95 ms", "p99 ms"],
            rows,
        )
        console.print(
            f"errors: {len(errors)}; acknowledged points: {len(acked)}; missing after the run: {missing}"
        )
        remote_db.close()
    finally:
        server.stop()
        embedded_db.close()
    write_result(
        args.out,
        {
            "n": len(base),
            "clients": args.clients,
            "seconds": args.seconds,
            "ef": EF,
            "qps": best,
            "ratios": ratios,
            "mixed": summary,
            "errors": len(errors),
            "error_samples": errors[:5],
            "acknowledged_points": len(acked),
            "missing_after_run": missing,
        },
    )


if __name__ == "__main__":
    main()
