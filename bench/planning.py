"""The capacity planner against measured runs: memory, QPS and shard count, at three scales.

For each case, a persistent collection is built by vectorforge from the calibration's generator
(vectorforge/planning/calibrate.py, the shared set's mixture of Gaussians), then opened in a fresh
process that searches it: its resident anonymous memory (over the process after `import
vectorforge`), and single-query QPS and p99 on one FAISS thread at the first setting reaching
recall@10 >= 0.95. Beside each, the plan's prediction from the bundled reference profile:
`Plan.ram_bytes` (the registry's `estimate_bytes` + the engine's bytes per point) and the profile's
cost model. Goals (issue 16): memory within +-15%, QPS within +-30%.

The shard check: at 500k, the SLO is set between the measured p99 of one shard and of two (the
machine has 2 cores, so two shards search side by side as on two nodes); the plan, given one
instance type that holds the collection, must choose the shard count the measurement needed.

    python bench/planning.py [--cases 100000:hnsw:none,500000:ivfflat:sq8,2000000:ivfflat:sq8]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, console, print_table, write_result

sys.path.insert(0, str(REPO))

K, DIM, QUERIES, TARGET = 10, 384, 300, 0.95
PARAMS = {
    ("hnsw", "none"): {"M": 32, "ef_construction": 200},
    ("ivfflat", "sq8"): {"coarse": "hnsw", "quantization": "sq8"},
    ("ivfflat", "none"): {"coarse": "hnsw"},
    ("hnsw", "sq8"): {"M": 32, "ef_construction": 200, "quantization": "sq8"},
}
GRID = {
    "hnsw": ("ef", (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)),
    "ivfflat": ("nprobe", (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256)),
}
MULTI = {"n": 70_000, "tokens": 32, "dim": 128}  # 2.2M tokens: over exact_below_tokens, compressed


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def build(folder: Path, n: int, index: str, quantization: str, shards: int, base: np.ndarray) -> float:
    import vectorforge as vf

    if folder.exists():
        shutil.rmtree(folder)
    began = time.perf_counter()
    with vf.connect(folder) as db:
        col = db.create_collection(
            "bench",
            dim=DIM,
            metric="cosine",
            index=index,
            index_params=PARAMS[(index, quantization)],
            shards=shards,
        )
        for i in range(0, n, 50_000):
            col.upsert(list(range(i, min(i + 50_000, n))), base[i : i + 50_000])
        col.flush()
    return time.perf_counter() - began


def build_multi(folder: Path) -> float:
    import vectorforge as vf

    if folder.exists():
        shutil.rmtree(folder)
    rng = np.random.default_rng(0)
    n, t, d = MULTI["n"], MULTI["tokens"], MULTI["dim"]
    began = time.perf_counter()
    with vf.connect(folder) as db:
        col = db.create_collection("bench", vectors={"t": vf.Multi(dim=d, index="plaid")})
        centres = rng.standard_normal((256, d)).astype(np.float32)
        for i in range(0, n, 2_000):
            rows = [
                centres[rng.integers(0, 256, t)] + 0.3 * rng.standard_normal((t, d)).astype(np.float32)
                for _ in range(min(2_000, n - i))
            ]
            col.upsert(list(range(i, i + len(rows))), {"t": rows})
        col.flush()
        col.optimize()  # the codec is trained by compaction
    return time.perf_counter() - began


def measure(args: argparse.Namespace) -> None:
    """In a fresh process: open, sweep to the target, time single queries; JSON on stdout."""
    import faiss

    faiss.omp_set_num_threads(1)
    anon0 = status_kb("RssAnon")
    import vectorforge as vf

    imported = status_kb("RssAnon")
    db = vf.connect(args.folder)
    col = db.get_collection("bench")
    out: dict[str, Any] = {"import_kb": imported - anon0}
    if args.kind == "multi":
        rng = np.random.default_rng(1)
        for _ in range(20):
            col.search(
                rng.standard_normal((MULTI["tokens"], MULTI["dim"])).astype(np.float32), k=K, using="t"
            )
    else:
        queries, truth = np.load(args.queries), np.load(args.truth)
        name, grid = GRID[args.kind]
        setting: dict[str, Any] = {}
        recall = 0.0
        for value in grid:
            setting = {name: value}
            hits = col.search_batch(queries, k=K, params=setting, with_payload=False)
            found = [[int(h.id) for h in row] for row in hits]
            recall = float(
                np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)])
            )
            if recall >= TARGET:
                break
        for q in queries[:50]:
            col.search(q, k=K, params=setting, with_payload=False)
        ms = []
        for q in queries:
            began = time.perf_counter()
            col.search(q, k=K, params=setting, with_payload=False)
            ms.append(1000 * (time.perf_counter() - began))
        out.update(
            setting=setting, recall=recall, qps=1000 / float(np.mean(ms)), p99_ms=float(np.percentile(ms, 99))
        )
    out["anon_kb"] = status_kb("RssAnon") - imported
    db.close()
    print(json.dumps(out))


def in_fresh_process(folder: Path, kind: str, queries: Path | None, truth: Path | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--measure", "--folder", str(folder), "--kind", kind]
    if queries is not None and truth is not None:
        cmd += ["--queries", str(queries), "--truth", str(truth)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def predicted(n: int, index: str, quantization: str, slo_ms: float = 1e6, memory_gib: float = 24.0) -> Any:
    from vectorforge.planning import Catalog, Instance, load_profile, parse_workload, plan

    workload = parse_workload(
        {
            "name": "validation",
            "corpus": {"points": n},
            "payload_bytes": 0,
            "vectors": [{"kind": "dense", "dim": DIM, "index": index, "quantization": quantization}],
            "qps": {"peak": 1, "average": 1},
            "latency_p99_ms": slo_ms,
        }
    )
    here = Catalog(
        name="this machine",
        as_of="now",
        source="bench/planning.py",
        storage_per_gb_month=0,
        usable_memory=1.0,
        instances=[Instance(name="this", vcpus=2, memory_gib=memory_gib, hourly=1)],
    )
    profile = load_profile()
    return plan(workload, here, profile), profile.model(index, quantization)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="100000:hnsw:none,500000:ivfflat:sq8,2000000:ivfflat:sq8")
    ap.add_argument("--shard-case", default="500000:ivfflat:sq8")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--queries", help=argparse.SUPPRESS)
    ap.add_argument("--truth", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args)
        return
    import faiss

    from vectorforge.planning.calibrate import clustered

    tmp = Path(tempfile.mkdtemp(prefix="vf-planning-"))
    rows, cases = [], []
    try:
        for case in args.cases.split(","):
            n_s, index, quantization = case.split(":")
            n = int(n_s)
            console.print(f"{n:,} x {DIM}, {index}/{quantization}: generating, building")
            base, queries = clustered(n, DIM, QUERIES)
            flat = faiss.IndexFlatIP(DIM)
            flat.add(base)
            truth = flat.search(queries, K)[1]
            del flat
            np.save(tmp / "q.npy", queries)
            np.save(tmp / "t.npy", truth)
            seconds = build(tmp / "db", n, index, quantization, 1, base)
            del base
            got = in_fresh_process(tmp / "db", index, tmp / "q.npy", tmp / "t.npy")
            the_plan, model = predicted(n, index, quantization)
            ram, qps = 1024 * got["anon_kb"], got["qps"]
            entry = {
                "n": n,
                "index": index,
                "quantization": quantization,
                "build_s": seconds,
                "measured": got,
                "predicted": {
                    "ram_bytes": the_plan.ram_bytes,
                    "qps": model.qps_per_core(n, DIM),
                    "p99_ms": model.p99_ms(n, DIM),
                },
            }
            entry["ram_error"] = the_plan.ram_bytes / ram - 1
            entry["qps_error"] = model.qps_per_core(n, DIM) / qps - 1
            cases.append(entry)
            rows.append(
                [
                    f"{n:,} {index}/{quantization}",
                    f"{ram / 2**20:,.0f}",
                    f"{the_plan.ram_bytes / 2**20:,.0f}",
                    f"{entry['ram_error']:+.0%}",
                    f"{qps:,.0f}",
                    f"{entry['predicted']['qps']:,.0f}",
                    f"{entry['qps_error']:+.0%}",
                    f"{got['p99_ms']:.2f}",
                    f"{entry['predicted']['p99_ms']:.2f}",
                ]
            )
        console.print("late interaction: PLAID, building")
        seconds = build_multi(tmp / "multi")
        got = in_fresh_process(tmp / "multi", "multi", None, None)
        import vectorforge.multivector  # noqa: F401  (registers plaid)
        from vectorforge.index import estimate_bytes

        n, t, d = MULTI["n"], MULTI["tokens"], MULTI["dim"]
        multi_ram = estimate_bytes("plaid", n, d, {"tokens_per_point": t}, vector_kind="multi")
        from vectorforge.planning import load_profile

        multi_pred = multi_ram + n * int(load_profile().engine_bytes_per_point)
        multi = {
            "n": n,
            "tokens": t,
            "dim": d,
            "build_s": seconds,
            "measured": got,
            "predicted_ram_bytes": multi_pred,
            "ram_error": multi_pred / (1024 * got["anon_kb"]) - 1,
        }
        rows.append(
            [
                f"{n:,} x {t} tokens plaid",
                f"{got['anon_kb'] / 1024:,.0f}",
                f"{multi_pred / 2**20:,.0f}",
                f"{multi['ram_error']:+.0%}",
                "-",
                "-",
                "-",
                "-",
                "-",
            ]
        )
        print_table(
            "the planner against measured runs (memory: resident anonymous MiB; QPS: one core)",
            [
                "case",
                "measured MiB",
                "planned MiB",
                "error",
                "QPS",
                "planned QPS",
                "error",
                "p99 ms",
                "planned p99",
            ],
            rows,
        )
        shard = shard_check(tmp, args.shard_case)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_result(
        "planning",
        {
            "dim": DIM,
            "queries": QUERIES,
            "recall_target": TARGET,
            "cases": cases,
            "multi": multi,
            "shards": shard,
        },
    )


def shard_check(tmp: Path, case: str) -> dict[str, Any]:
    """Measured p99 at 1 and 2 shards; an SLO between them; the plan's shard count for that SLO."""
    import faiss

    from vectorforge.planning.calibrate import clustered

    n_s, index, quantization = case.split(":")
    n = int(n_s)
    base, queries = clustered(n, DIM, QUERIES)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    np.save(tmp / "q.npy", queries)
    np.save(tmp / "t.npy", flat.search(queries, K)[1])
    del flat
    p99 = {}
    for shards in (1, 2):
        console.print(f"shards: {n:,} {index}/{quantization} in {shards} shard(s)")
        build(tmp / "db", n, index, quantization, shards, base)
        p99[shards] = in_fresh_process(tmp / "db", index, tmp / "q.npy", tmp / "t.npy")["p99_ms"]
    slo = (p99[1] + p99[2]) / 2
    needed = 1 if p99[1] <= slo else 2 if p99[2] <= slo else None
    the_plan, _ = predicted(n, index, quantization, slo_ms=slo)
    result = {
        "n": n,
        "index": index,
        "quantization": quantization,
        "p99_ms": p99,
        "slo_ms": slo,
        "measured_shards": needed,
        "planned_shards": the_plan.shards,
        "planned_p99_ms": the_plan.p99_ms,
    }
    print_table(
        f"shard count for an SLO of {slo:.2f} ms ({n:,} points, {index}/{quantization})",
        ["measured p99, 1 shard", "2 shards", "shards needed (measured)", "shards planned", "planned p99"],
        [[f"{p99[1]:.2f}", f"{p99[2]:.2f}", str(needed), str(the_plan.shards), f"{the_plan.p99_ms:.2f}"]],
    )
    return result


if __name__ == "__main__":
    main()
