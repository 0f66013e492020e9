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
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, console, print_table, write_result
from quantized import status_kb

from vectorforge.planning.calibrate import (
    CONFIGURATIONS,
    MULTI_DIM,
    MULTI_POINTS,
    MULTI_TOKENS,
    NAME,
    build,
    build_late_interaction,
)  # fmt: skip
from vectorforge.planning.planner import SEGMENT_POINTS

sys.path.insert(0, str(REPO))

K, DIM, QUERIES, TARGET = 10, 384, 300, 0.95
PARAMS = {(index, quantization): params for index, quantization, params in CONFIGURATIONS}
MULTI = {"n": MULTI_POINTS, "tokens": MULTI_TOKENS, "dim": MULTI_DIM}  # as calibrated: compressed


def build_dense(folder: Path, n: int, index: str, quantization: str, shards: int, base: np.ndarray) -> float:
    """The engine's default segments (250k points), as the plan assumes."""
    return build(
        folder, n, lambda i, count: base[i : i + count], batch=50_000, dim=DIM, metric="cosine",
        index=index, index_params=PARAMS[(index, quantization)], shards=shards,
    )  # fmt: skip


def measure(args: argparse.Namespace) -> None:
    """In a fresh process: open, sweep to the target, time single queries; JSON on stdout."""
    import faiss

    faiss.omp_set_num_threads(1)
    anon0 = status_kb("RssAnon")
    import vectorforge as vf

    imported = status_kb("RssAnon")
    db = vf.connect(args.folder)
    col = db.get_collection(NAME)
    out: dict[str, Any] = {"import_kb": imported - anon0}
    if args.kind == "multi":
        from vectorforge.planning.calibrate import sweep_multi, timed, token_matrices

        asked = token_matrices(np.random.default_rng(1), 100)
        setting, recall = sweep_multi(col, asked[:50], TARGET)
        qps, _, p99 = timed(
            lambda q: col.search(q, k=K, using="t", params=setting, with_payload=False), asked
        )
        out.update(setting=setting, recall=recall, qps=qps, p99_ms=p99)
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


def predicted(case: dict[str, Any], slo_ms: float = 1e6, profile: Any = None) -> Any:
    """The plan for a measured case (a pure function of the profile, by default the bundled one,
    and the planner)."""
    from vectorforge.planning import load_profile, parse_workload, plan

    if case.get("tokens"):
        vector = {"name": "t", "kind": "multi", "dim": case["dim"], "tokens_per_point": case["tokens"],
                  "index": "plaid"}  # fmt: skip
    else:
        vector = {"kind": "dense", "dim": DIM, "index": case["index"], "quantization": case["quantization"]}
    workload = parse_workload({
        "name": "validation", "corpus": {"points": case["n"]}, "payload_bytes": 0, "vectors": [vector],
        "qps": {"peak": 1, "average": 1}, "latency_p99_ms": slo_ms,
    })  # fmt: skip
    return plan(workload, here_catalog(), profile or load_profile())


SAMPLED: dict[tuple[int, str, str], Any] = {}  # (n, index, quantization) -> the profile from its sample


def sample_check(case: dict[str, Any]) -> dict[str, Any]:
    """The procedure a plan's note recommends past the profile's corpora: calibrate the case's own
    configuration on a uniform sample of one segment of its corpus (`calibrate --data --corpus`),
    then plan with that profile; its QPS beside the measured one (the profile is kept in SAMPLED)."""
    from vectorforge.planning import load_profile
    from vectorforge.planning.calibrate import SEGMENT, calibrate, clustered

    sample, asked = clustered(SEGMENT, DIM, QUERIES, seed=1, corpus=case["n"])  # not the measured set
    config = [(case["index"], case["quantization"], PARAMS[(case["index"], case["quantization"])])]
    own = calibrate(
        configurations=config, sparse=False, multi_points=(), fanout=False, progress=False,
        data=np.vstack([asked, sample]), data_corpus=case["n"],
    )  # fmt: skip
    bundled = load_profile()
    own.engine_bytes_per_point = bundled.engine_bytes_per_point
    own.fanout_p99_ms, own.fanout_core_ms = bundled.fanout_p99_ms, bundled.fanout_core_ms
    SAMPLED[(case["n"], case["index"], case["quantization"])] = own
    the_plan = predicted(case, profile=own)
    qps = 1000.0 / the_plan.core_ms_per_query
    measured = own.points[0]
    return {"setting": measured.setting, "recall": measured.recall, "qps": qps, "p99_ms": the_plan.p99_ms,
            "qps_error": qps / case["measured"]["qps"] - 1}  # fmt: skip


def plan_shards(sh: dict[str, Any]) -> dict[str, Any]:
    """The shard check's plans: from the bundled profile, and from its case's sample if calibrated."""
    planned = predicted(sh, slo_ms=sh["slo_ms"])
    sh.update(planned_shards=planned.shards, planned_p99_ms=planned.p99_ms)
    own = SAMPLED.get((sh["n"], sh["index"], sh["quantization"]))
    if own is not None:
        sampled = predicted(sh, slo_ms=sh["slo_ms"], profile=own)
        sh.update(sampled_shards=sampled.shards, sampled_p99_ms=sampled.p99_ms)
    return sh


def score(case: dict[str, Any]) -> dict[str, Any]:
    """A measured case with the plan's figures beside it: RAM, QPS on one core (1000 / the plan's
    core-ms a query: every segment searched), p99, and the errors (plan / measured - 1)."""
    the_plan = predicted(case)
    got = case["measured"]
    qps = 1000.0 / the_plan.core_ms_per_query if the_plan.core_ms_per_query else None
    case["predicted"] = {"ram_bytes": the_plan.ram_bytes, "qps": qps, "p99_ms": the_plan.p99_ms}
    case["ram_error"] = the_plan.ram_bytes / (1024 * got["anon_kb"]) - 1
    case["qps_error"] = None if qps is None else qps / got["qps"] - 1
    return case


def _sampled(case: dict[str, Any]) -> str:
    got = case.get("sampled")
    return f"{got['qps']:,.0f} ({got['qps_error']:+.0%})" if got else "-"


def report(doc: dict[str, Any]) -> None:
    rows = []
    for case in [*doc["cases"], *([doc["multi"]] if doc.get("multi") else [])]:
        got, want = case["measured"], case["predicted"]
        name = f"{case['n']:,} x {case['tokens']} tokens plaid" if case.get("tokens") else (
            f"{case['n']:,} {case['index']}/{case['quantization']}")  # fmt: skip
        rows.append([
            name, f"{got['anon_kb'] / 1024:,.0f}", f"{want['ram_bytes'] / 2**20:,.0f}",
            f"{case['ram_error']:+.0%}",
            f"{got['qps']:,.0f}", "-" if want["qps"] is None else f"{want['qps']:,.0f}",
            "-" if case["qps_error"] is None else f"{case['qps_error']:+.0%}",
            _sampled(case),
            f"{got['p99_ms']:.2f}", f"{want['p99_ms']:.2f}",
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
            "planned from a sample",
            "p99 ms",
            "planned p99",
        ],
        rows,
    )
    if doc.get("shards"):
        sh = doc["shards"]
        print_table(
            f"shard count for an SLO of {sh['slo_ms']:.2f} ms ({sh['n']:,} points, "
            f"{sh['index']}/{sh['quantization']})",
            ["measured p99, 1 shard", "2 shards", "shards needed (measured)", "shards planned",
             "planned p99", "planned from a sample"],
            [[f"{sh['p99_ms']['1']:.2f}", f"{sh['p99_ms']['2']:.2f}", str(sh["measured_shards"]),
              str(sh["planned_shards"]), f"{sh['planned_p99_ms']:.2f}",
              f"{sh['sampled_shards']} ({sh['sampled_p99_ms']:.2f} ms)" if "sampled_shards" in sh else "-"]],
        )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="100000:hnsw:none,500000:ivfflat:sq8,2000000:ivfflat:sq8")
    ap.add_argument("--shard-case", default="500000:ivfflat:sq8")
    ap.add_argument("--multi-points", type=int, default=MULTI_POINTS, help="documents of the PLAID case")
    ap.add_argument("--out", default="planning", help="bench/results/OUT.json")
    ap.add_argument("--repredict", action="store_true", help="re-score bench/results/planning.json's runs")
    ap.add_argument(
        "--sample-check", action="store_true",
        help="and plan its multi-segment cases from a profile calibrated on a sample of each (~2 min each)",
    )  # fmt: skip
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--queries", help=argparse.SUPPRESS)
    ap.add_argument("--truth", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args)
        return
    if args.repredict:  # the measurements stay; the plan's figures are computed again
        doc = json.loads((REPO / "bench" / "results" / f"{args.out}.json").read_text())
        doc = {k: v for k, v in doc.items() if k not in ("benchmark", "date", "machine")}
        doc["cases"] = [score(c) for c in doc["cases"]]
        if args.sample_check:
            for case in doc["cases"]:
                if case["n"] > SEGMENT_POINTS:
                    console.print(f"{case['n']:,}: calibrating on a sample of one segment")
                    case["sampled"] = sample_check(case)
        doc["multi"] = score(doc["multi"])
        plan_shards(doc["shards"])
        report(doc)
        write_result("planning", doc)
        return
    import faiss

    from vectorforge.planning.calibrate import clustered

    MULTI["n"] = args.multi_points
    tmp = Path(tempfile.mkdtemp(prefix="vf-planning-"))
    cases: list[dict[str, Any]] = []
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
            seconds = build_dense(tmp / "db", n, index, quantization, 1, base)
            del base
            got = in_fresh_process(tmp / "db", index, tmp / "q.npy", tmp / "t.npy")
            entry = {
                "n": n,
                "index": index,
                "quantization": quantization,
                "build_s": seconds,
                "measured": got,
            }
            cases.append(score(entry))
            if n > SEGMENT_POINTS:
                entry["sampled"] = sample_check(entry)
            write_result(args.out, {"dim": DIM, "queries": QUERIES, "recall_target": TARGET, "cases": cases,
                                      "partial": True})  # fmt: skip
        console.print("late interaction: PLAID, building")
        seconds = build_late_interaction(tmp / "multi", MULTI["n"], np.random.default_rng(0))
        got = in_fresh_process(tmp / "multi", "multi", None, None)
        multi = score({"n": MULTI["n"], "tokens": MULTI["tokens"], "dim": MULTI["dim"], "build_s": seconds,
                       "measured": got})  # fmt: skip
        shard = plan_shards(shard_check(tmp, args.shard_case))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    doc = {
        "dim": DIM,
        "queries": QUERIES,
        "recall_target": TARGET,
        "cases": cases,
        "multi": multi,
        "shards": shard,
    }
    report(doc)
    write_result(args.out, doc)


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
        build_dense(tmp / "db", n, index, quantization, shards, base)
        p99[shards] = in_fresh_process(tmp / "db", index, tmp / "q.npy", tmp / "t.npy")["p99_ms"]
    slo = (p99[1] + p99[2]) / 2
    needed = 1 if p99[1] <= slo else 2 if p99[2] <= slo else None
    case = {"n": n, "index": index, "quantization": quantization}
    return {**case, "p99_ms": {"1": p99[1], "2": p99[2]}, "slo_ms": slo, "measured_shards": needed}


if __name__ == "__main__":
    main()
