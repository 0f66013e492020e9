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
from quantized import status_kb

from vectorforge.planning.calibrate import CONFIGURATIONS, MULTI_DIM, MULTI_POINTS, MULTI_TOKENS

sys.path.insert(0, str(REPO))

K, DIM, QUERIES, TARGET = 10, 384, 300, 0.95
PARAMS = {(index, quantization): params for index, quantization, params in CONFIGURATIONS}
MULTI = {"n": MULTI_POINTS, "tokens": MULTI_TOKENS, "dim": MULTI_DIM}  # as calibrated: compressed


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
    """The calibration's late-interaction collection (its token generator), built the same way."""
    import vectorforge as vf
    from vectorforge.planning.calibrate import token_matrices

    if folder.exists():
        shutil.rmtree(folder)
    rng = np.random.default_rng(0)
    n, d = MULTI["n"], MULTI["dim"]
    began = time.perf_counter()
    with vf.connect(folder) as db:
        col = db.create_collection("bench", vectors={"t": vf.Multi(dim=d, index="plaid")})
        for i in range(0, n, 5_000):
            rows = token_matrices(rng, min(5_000, n - i))
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
        from vectorforge.planning.calibrate import timed, token_matrices

        asked = token_matrices(np.random.default_rng(1), 100)
        qps, _, p99 = timed(lambda q: col.search(q, k=K, using="t", with_payload=False), asked)
        out.update(qps=qps, p99_ms=p99)
    else:
        from vectorforge.planning.calibrate import sweep_to_target, timed

        queries, truth = np.load(args.queries), np.load(args.truth)
        setting, recall = sweep_to_target(col, args.kind, queries, truth, TARGET)
        qps, _, p99 = timed(lambda q: col.search(q, k=K, params=setting, with_payload=False), queries)
        out.update(setting=setting, recall=recall, qps=qps, p99_ms=p99)
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


def here_catalog(memory_gib: float = 24.0) -> Any:
    """One instance type: this machine (2 cores), all of its memory usable."""
    from vectorforge.planning import Catalog, Instance

    return Catalog(
        name="this machine", as_of="now", source="bench/planning.py", storage_per_gb_month=0,
        usable_memory=1.0, instances=[Instance(name="this", vcpus=2, memory_gib=memory_gib, hourly=1)],
    )  # fmt: skip


def predicted(n: int, index: str, quantization: str, slo_ms: float = 1e6, memory_gib: float = 24.0) -> Any:
    from vectorforge.planning import load_profile, parse_workload, plan

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
    here = here_catalog(memory_gib)
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
            write_result("planning", {"dim": DIM, "queries": QUERIES, "recall_target": TARGET, "cases": cases,
                                      "partial": True})  # fmt: skip
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
        from vectorforge.planning import load_profile, parse_workload, plan

        n, t, d = MULTI["n"], MULTI["tokens"], MULTI["dim"]
        late = parse_workload({
            "name": "validation", "corpus": {"points": n}, "payload_bytes": 0,
            "vectors": [{"name": "t", "kind": "multi", "dim": d, "tokens_per_point": t, "index": "plaid"}],
            "qps": {"peak": 1, "average": 1}, "latency_p99_ms": 1e6,
        })  # fmt: skip
        profile = load_profile()
        late_plan = plan(late, here_catalog(), profile)
        late_qps = (
            profile.model("plaid", "none").qps_per_core(n, d)
            if ("plaid", "none") in profile.configurations()
            else None
        )
        ram = late_plan.ram_bytes
        multi = {
            "n": n, "tokens": t, "dim": d, "build_s": seconds, "measured": got,
            "predicted_ram_bytes": ram, "ram_error": ram / (1024 * got["anon_kb"]) - 1,
            "predicted_qps": late_qps, "qps_error": None if late_qps is None else late_qps / got["qps"] - 1,
        }  # fmt: skip
        planned_qps = "-" if late_qps is None else f"{late_qps:,.0f}"
        qps_error = "-" if late_qps is None else f"{multi['qps_error']:+.0%}"
        rows.append([
            f"{n:,} x {t} tokens plaid", f"{got['anon_kb'] / 1024:,.0f}", f"{ram / 2**20:,.0f}",
            f"{multi['ram_error']:+.0%}", f"{got['qps']:,.0f}", planned_qps, qps_error,
            f"{got['p99_ms']:.2f}", "-",
        ])  # fmt: skip
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
