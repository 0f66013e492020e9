"""Shadow traffic overhead: the primary's search latency through a real server with no shadow, with
a light shadow (the same collection at a higher HNSW ef: a configuration candidate), and with a
heavy one (an exact flat index over the same vectors: slower than the primary, so its bounded
queue fills and drops). Same server, same queries, the three conditions interleaved in rounds so
that the machine's drift spreads over all of them.

The baseline is the primary with no shadow in the same run; the figures are the ratios of its
p50 / p95 / p99 with a shadow to without. Beside them: how many queries each shadow compared and
dropped, and its mean RBO (p 0.9) and top-1 agreement against the primary.

    python bench/shadow.py [--n 50000] [--queries 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import REPO, clustered_set, print_table, write_result
from tqdm import tqdm

import vectorforge as vf

sys.path.insert(0, str(REPO))
from tests.serverproc import start_server

K = 10
EF = 64
SHADOWS: dict[str, dict[str, Any]] = {
    "light": {"candidate": {"collection": "primary", "params": {"ef": 4 * EF}}, "queue": 1000},
    "heavy": {"candidate": {"collection": "exact"}, "queue": 100},
    # the heavy candidate with the whole CPU allowed: what the default budget (0.2) saves
    "unbudgeted": {"candidate": {"collection": "exact"}, "queue": 100, "cpu_budget": 1.0},
}
CONDITIONS = ["off", *SHADOWS]


def _round(http: httpx.Client, queries: np.ndarray) -> list[float]:
    """Latency (ms) of each single search on the primary, one client, closed loop."""
    out = []
    for q in queries:
        began = time.perf_counter()
        r = http.post(
            "/collections/primary/points/search",
            json={"vector": q.tolist(), "k": K, "params": {"ef": EF}, "with_payload": False},
        )
        out.append(1000 * (time.perf_counter() - began))
        r.raise_for_status()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1000, help="searches per condition and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="shadow")
    args = ap.parse_args()
    base, queries = clustered_set()
    base, dim = base[: args.n], base.shape[1]
    tmp = Path(tempfile.mkdtemp(prefix="vf-shadow-"))
    server = start_server(tmp / "data")
    latency: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    per_round: dict[str, list[float]] = {c: [] for c in CONDITIONS}  # p50 of each round: the noise
    summaries: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        db = vf.connect(server.url, timeout=120)
        primary = db.create_collection("primary", dim=dim, metric="dot", index="hnsw")
        exact = db.create_collection("exact", dim=dim, metric="dot", index="flat")
        for i in tqdm(range(0, len(base), 5_000), desc="loading"):
            ids = list(range(i, min(i + 5_000, len(base))))
            primary.upsert(ids, base[i : i + 5_000])
            exact.upsert(ids, base[i : i + 5_000])
        db.close()
        with httpx.Client(base_url=server.url, timeout=120) as http:
            _round(http, queries[:200])  # warm the path and the index
            order, m = CONDITIONS, len(CONDITIONS)
            for r in tqdm(range(args.rounds), desc="rounds"):
                chunk = queries[(r * args.queries) % len(queries) :][: args.queries]
                for condition in order[r % m :] + order[: r % m]:  # rotate who goes first
                    if condition != "off":
                        body = {"name": condition, "collection": "primary", "k": K, **SHADOWS[condition]}
                        http.post("/online/shadows", json=body, params={"replace": True}).raise_for_status()
                    measured = _round(http, chunk)
                    latency[condition] += measured
                    per_round[condition].append(float(np.percentile(measured, 50)))
                    if condition != "off":
                        # wait for the shadow's queue to drain so it does not load the next condition
                        summaries[condition] = http.get(f"/online/shadows/{condition}").json()["summary"]
                        off = {**body, "share": 0}  # kept, so that its comparisons add up over rounds
                        http.post("/online/shadows", json=off, params={"replace": True}).raise_for_status()
    finally:
        server.stop()
    pct = {c: {q: float(np.percentile(v, q)) for q in (50, 95, 99)} for c, v in latency.items()}
    rows = []
    for c in CONDITIONS:
        s = summaries.get(c, {})
        rows.append(
            [
                c,
                len(latency[c]),
                pct[c][50],
                pct[c][95],
                pct[c][99],
                pct[c][50] / pct["off"][50],
                pct[c][99] / pct["off"][99],
                s.get("queries", "-"),
                s.get("dropped", "-"),
                "-" if s.get("rbo") is None else f"{s['rbo']:.3f}",
                "-" if s.get("top1_agreement") is None else f"{s['top1_agreement']:.3f}",
            ]
        )
    print_table(
        f"primary search latency through the server, {args.n:,} x {dim} HNSW (ef {EF}), one client",
        ["shadow", "searches", "p50 ms", "p95 ms", "p99 ms", "p50 / off", "p99 / off",
         "compared", "dropped", "RBO", "top-1"],
        rows,
    )  # fmt: skip
    spread = max(per_round["off"]) / min(per_round["off"])
    print(f"noise: the slowest round's p50 without a shadow is {spread:.3f}x the fastest's")
    write_result(
        args.out,
        {
            "n": len(base),
            "dim": dim,
            "k": K,
            "ef": EF,
            "queries_per_round": args.queries,
            "rounds": args.rounds,
            "shadows": SHADOWS,
            "latency_ms": pct,
            "ratios_to_off": {c: {str(q): pct[c][q] / pct["off"][q] for q in (50, 95, 99)} for c in SHADOWS},
            "p50_per_round_ms": per_round,
            "off_p50_round_spread": max(per_round["off"]) / min(per_round["off"]),
            "shadow_summaries": summaries,
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


if __name__ == "__main__":
    main()
