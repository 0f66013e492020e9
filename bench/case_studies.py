"""The case studies scaled down on this machine: each workload's plan at a fraction of its corpus,
against the collection it chose, built and searched here.

For each case study (docs/case-studies/*.yaml): the workload with its corpus scaled by `--scale`
(today's points; the plan still grows them to its horizon), planned with its own price catalog and
the bundled profile. Then a persistent collection of the plan's
points with the plan's choice for every vector (index, quantization, the shards), filled by the
calibration's generators at the workload's dimensions (dense: the mixture of Gaussians; sparse: Zipf
term counts; multi: token matrices), and a payload field that the workload's filter selects on (its
selectivity). A fresh process opens it and measures its resident anonymous memory and the workload's
own query, one at a time on one FAISS thread, with the filter and at the profile's setting:

- support bot: hybrid, the dense and the BM25 vector each to a depth of 100, fused by RRF;
- legal research: a dense first stage of `rerank_depth` candidates, re-ranked by MaxSim on the token
  matrices (a has_id search, as `query_pages` makes).

Beside each: the plan's RAM (one copy), core-ms per query and p99, and the dense stage's recall@10
against an exact search of the points the filter keeps.

    python bench/case_studies.py [--scale support-bot=1,legal-research=0.0002]
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

from vectorforge.planning import Plan, Workload, load_catalog, load_profile, load_workload, plan
from vectorforge.planning.calibrate import (
    CONFIGURATIONS,
    NAME,
    build,
    clustered,
    term_counts,
    term_queries,
    timed,
    token_matrices,
)  # fmt: skip

CASES = REPO / "docs" / "case-studies"
DEFAULT_SCALES = "support-bot=1,legal-research=0.0002"
K, QUERIES, HYBRID_DEPTH = 10, 200, 100
PARAMS = {(index, quantization): params for index, quantization, params in CONFIGURATIONS}
FIELD = "part"  # the payload field the filter selects on: FIELD == 0 keeps `selectivity` of the points


def scaled(workload: Workload, scale: float) -> Workload:
    corpus = workload.corpus.model_copy(update={"points": max(1000, round(workload.corpus.points * scale))})
    return workload.model_copy(update={"corpus": corpus, "name": f"{workload.name} x {scale:g}"})


def parts(selectivity: float) -> int:
    return max(1, round(1 / selectivity))


def vector_specs(w: Workload, chosen: Plan) -> dict[str, Any]:
    import vectorforge as vf

    out: dict[str, Any] = {}
    for spec, v in zip(w.vectors, chosen.vectors, strict=True):
        if spec.kind == "dense":
            params = PARAMS.get((v.index, v.quantization), {})
            out[spec.name] = vf.Dense(dim=spec.dim, metric="cosine", index=v.index, index_params=params)
        elif spec.kind == "sparse":
            out[spec.name] = vf.Sparse()
        else:
            out[spec.name] = vf.Multi(dim=spec.dim, index=v.index)
    return out


def fill(folder: Path, w: Workload, chosen: Plan, tmp: Path) -> float:
    """The collection, its queries (saved beside it for the measuring process); seconds to build."""
    rng = np.random.default_rng(0)
    n = chosen.points
    data: dict[str, Any] = {}
    for spec in w.vectors:
        if spec.kind == "dense":
            base, asked = clustered(n, spec.dim, QUERIES)
            data[spec.name] = base
            np.save(tmp / f"{spec.name}.q.npy", asked)
    queries: dict[str, Any] = {}
    for spec in w.vectors:
        if spec.kind == "sparse":
            asked_terms = term_queries(rng, QUERIES)
            queries[spec.name] = [[list(q.indices), list(q.values)] for q in asked_terms]
        elif spec.kind == "multi":
            asked_tokens = token_matrices(rng, QUERIES, 32)  # a ColBERT query: 32 tokens
            np.save(tmp / f"{spec.name}.q.npy", np.stack(asked_tokens))
    (tmp / "sparse_queries.json").write_text(json.dumps(queries))
    split = parts(w.filter_selectivity)

    def rows(start: int, count: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in w.vectors:
            if spec.kind == "dense":
                out[spec.name] = data[spec.name][start : start + count]
            elif spec.kind == "sparse":
                out[spec.name] = term_counts(rng, count, spec.nnz)
            else:
                out[spec.name] = token_matrices(rng, count, spec.tokens_per_point)
        return out

    filler = "x" * max(0, w.payload_bytes - 16)  # the workload's payload bytes, with the filter's field

    def payloads(start: int, count: int) -> list[dict[str, Any]]:
        return [{FIELD: i % split, "text": filler} for i in range(start, start + count)]

    import vectorforge as vf

    seconds = build(
        folder, n, rows, batch=5_000, optimize=True, payloads=payloads, vectors=vector_specs(w, chosen),
        shards=chosen.shards,
    )  # fmt: skip
    with vf.connect(folder) as db:
        db.get_collection(NAME).create_payload_index(FIELD, "integer")
    return seconds


def measure(args: argparse.Namespace) -> None:
    """In a fresh process: open, search the workload's query with its filter; JSON on stdout."""
    import faiss

    faiss.omp_set_num_threads(1)
    anon0 = status_kb("RssAnon")
    import vectorforge as vf
    from vectorforge.engine.fusion import rrf

    imported = status_kb("RssAnon")
    w = load_workload(args.workload)
    setting: dict[str, Any] = json.loads(args.setting)
    tmp = Path(args.tmp)
    db = vf.connect(args.folder)
    col = db.get_collection(NAME)
    where = {"must": [{"key": FIELD, "match": {"value": 0}}]} if w.filter_selectivity < 1 else None
    search = [s for s in w.vectors if s.use == "search"]
    rerank = [s for s in w.vectors if s.use == "rerank"]
    dense = next(s for s in search if s.kind == "dense")
    asked = {s.name: np.load(tmp / f"{s.name}.q.npy") for s in w.vectors if s.kind in ("dense", "multi")}
    sparse = json.loads((tmp / "sparse_queries.json").read_text())
    asked |= {name: [vf.SparseVector(*q) for q in qs] for name, qs in sparse.items()}
    depth = rerank[0].rerank_depth if rerank else HYBRID_DEPTH

    def one(i: int) -> list[Any]:
        runs = []
        for s in search:
            hits = col.search(
                asked[s.name][i], k=depth, using=s.name, filter=where, with_payload=False,
                params=setting if s.name == dense.name else None,
            )  # fmt: skip
            runs.append({h.id: h.score for h in hits})
        for s in rerank:
            only = {"must": [{"has_id": list(runs[0])}, *([where] if where else [])]}
            return col.search(asked[s.name][i], k=K, using=s.name, filter=only, with_payload=False)
        return list(rrf(runs))[:K] if len(runs) > 1 else list(runs[0])[:K]

    qps, p50, p99 = timed(one, list(range(QUERIES)))
    # Where the time goes: each searched vector alone, as the query asks it (its depth, the filter)
    # and as calibration measured it (k = 10, no filter), mean ms.
    parts: dict[str, dict[str, float]] = {}
    for s in search:
        params = setting if s.name == dense.name else None
        for label, k, flt in (("as asked", depth, where), ("k=10, no filter", K, None)):
            q_qps, _, _ = timed(
                lambda i, s=s, k=k, flt=flt, params=params: col.search(
                    asked[s.name][i], k=k, using=s.name, filter=flt, with_payload=False, params=params
                ),
                list(range(QUERIES)),
            )
            parts.setdefault(s.name, {})[label] = 1000.0 / q_qps
    # The dense stage's recall@10 against an exact search of the points the filter keeps.
    exact = {**setting, "exact": True}
    found = [col.search(asked[dense.name][i], k=K, using=dense.name, filter=where, params=setting,
                        with_payload=False) for i in range(50)]  # fmt: skip
    truth = [col.search(asked[dense.name][i], k=K, using=dense.name, filter=where, params=exact,
                        with_payload=False) for i in range(50)]  # fmt: skip
    recall = float(
        np.mean([len({h.id for h in f} & {h.id for h in t}) / K for f, t in zip(found, truth, strict=True)])
    )
    out = {"import_kb": imported - anon0, "qps": qps, "mean_ms": 1000 / qps, "p50_ms": p50, "p99_ms": p99,
           "dense_recall": recall, "anon_kb": status_kb("RssAnon") - imported, "parts_ms": parts}  # fmt: skip
    db.close()
    print(json.dumps(out))


def planned(name: str, scale: float) -> tuple[Workload, Plan]:
    w = scaled(load_workload(CASES / f"{name}.yaml"), scale)
    return w, plan(w, load_catalog(w.catalog), load_profile())  # the workload's own plan and choices


def scored(case: dict[str, Any], chosen: Plan) -> dict[str, Any]:
    """The plan's figures beside the measured ones, and the errors (plan / measured - 1)."""
    got = case["measured"]
    case["planned"] = {"ram_bytes": chosen.ram_bytes, "core_ms_per_query": chosen.core_ms_per_query,
                       "p99_ms": chosen.p99_ms, "notes": chosen.notes}  # fmt: skip
    case["ram_error"] = chosen.ram_bytes / (1024 * got["anon_kb"]) - 1
    case["ms_error"] = chosen.core_ms_per_query / got["mean_ms"] - 1
    return case


def run_case(name: str, scale: float, tmp: Path) -> dict[str, Any]:
    w, chosen = planned(name, scale)
    profile = load_profile()
    dense = next(v for v in chosen.vectors if v.kind == "dense")
    setting = profile.model(dense.index, dense.quantization).at(chosen.points).setting
    chosen_kinds = [(v.name, v.index, v.quantization) for v in chosen.vectors]
    console.print(f"{w.name}: {chosen.points:,} points, {chosen_kinds}, {chosen.shards} shard(s), building")
    folder = tmp / "db"
    seconds = fill(folder, w, chosen, tmp)
    scaled_file = tmp / "workload.json"
    scaled_file.write_text(w.model_dump_json())
    cmd = [sys.executable, __file__, "--measure", "--folder", str(folder), "--workload", str(scaled_file),
           "--setting", json.dumps(setting), "--tmp", str(tmp)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    shutil.rmtree(folder, ignore_errors=True)
    return scored(
        {
            "case": name,
            "scale": scale,
            "points": chosen.points,
            "choices": [
                {"name": v.name, "index": v.index, "quantization": v.quantization} for v in chosen.vectors
            ],
            "shards": chosen.shards,
            "setting": setting,
            "filter_selectivity": w.filter_selectivity,
            "build_s": seconds,
            "measured": got,
        },
        chosen,
    )


def report(cases: list[dict[str, Any]]) -> None:
    def chosen(c: dict[str, Any]) -> str:
        return ", ".join(
            v["index"] + (f"/{v['quantization']}" if v["quantization"] not in ("none", "bm25") else "")
            for v in c["choices"]
        )

    rows = []
    for c in cases:
        got, want = c["measured"], c["planned"]
        rows.append([
            f"{c['case']} x {c['scale']:g} ({c['points']:,})", chosen(c),
            f"{got['anon_kb'] / 1024:,.0f}", f"{want['ram_bytes'] / 2**20:,.0f}", f"{c['ram_error']:+.0%}",
            f"{got['mean_ms']:.2f}", f"{want['core_ms_per_query']:.2f}", f"{c['ms_error']:+.0%}",
            f"{got['p99_ms']:.2f}", f"{want['p99_ms']:.2f}", f"{got['dense_recall']:.3f}",
        ])  # fmt: skip
    print_table(
        "case studies scaled down: the plan against its own choices built here (one core)",
        ["case", "chosen", "MiB", "planned MiB", "error", "ms/query", "planned", "error", "p99 ms",
         "planned p99", "dense recall@10"],
        rows,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default=DEFAULT_SCALES, help="case=fraction, comma-separated")
    ap.add_argument("--out", default="case_studies", help="bench/results/OUT.json")
    ap.add_argument("--repredict", action="store_true", help="re-plan the committed runs (measurements kept)")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--folder", "--workload", "--setting", "--tmp"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args)
        return
    if args.repredict:
        doc = json.loads((REPO / "bench" / "results" / f"{args.out}.json").read_text())
        cases = []
        for case in doc["cases"]:
            _, chosen = planned(case["case"], case["scale"])
            choices = [
                {"name": v.name, "index": v.index, "quantization": v.quantization} for v in chosen.vectors
            ]
            if choices != case["choices"] or chosen.shards != case["shards"]:
                raise SystemExit(f"{case['case']}: the plan now chooses {choices}: run the benchmark again")
            cases.append(scored(case, chosen))
        write_result(args.out, {"queries": doc["queries"], "cases": cases, "repredicted": True})
        report(cases)
        return
    cases = []
    for item in args.scale.split(","):
        name, _, fraction = item.partition("=")
        tmp = Path(tempfile.mkdtemp(prefix="vf-case-"))
        try:
            cases.append(run_case(name.strip(), float(fraction), tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        write_result(args.out, {"queries": QUERIES, "cases": cases})
    report(cases)


if __name__ == "__main__":
    main()
