"""Every dense index kind, float and quantized: recall@10 against single-query QPS and resident
memory per vector, on the shared clustered set and on real MiniLM embeddings.

Each index is built once by vectorforge into a persistent collection (one sealed segment), then
measured in a fresh subprocess that opens it from disk: the resident memory it needs (anonymous
memory, and the file pages of memory-mapped full vectors that re-scoring touched) and, for each
search setting of a sweep (ef for graphs, nprobe for inverted lists), recall@10 of the batch API
and single-query QPS on one thread. The baseline in the same run is raw FAISS on the same index
file (read with `faiss.read_index`, searched directly, no re-scoring): what the engine costs
over FAISS at the same setting.

    python bench/quantized.py [--sets clustered,real] [--n 200000] [--kinds hnsw,hnsw-sq8,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    CACHE,
    REPO,
    RESULTS,
    clustered_set,
    console,
    exact_ground_truth,
    real_embedding_set,
    write_result,
)

K = 10
TARGET = 0.95
EF_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
NPROBE_GRID = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
GRAPH = {"M": 32, "ef_construction": 200}
# name -> (index kind, index params); the IVF kinds use an HNSW graph over their centroids
KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "flat": ("flat", {}),  # exact: one point, recall 1 (no setting to sweep)
    "hnsw": ("hnsw", GRAPH),
    "hnsw-fp16": ("hnsw", {**GRAPH, "quantization": "fp16"}),
    "hnsw-sq8": ("hnsw", {**GRAPH, "quantization": "sq8"}),
    "hnsw-rabitq": ("hnsw", {**GRAPH, "quantization": "rabitq"}),
    "ivf": ("ivfflat", {"coarse": "hnsw"}),
    "ivf-sq8": ("ivfflat", {"quantization": "sq8", "coarse": "hnsw"}),
    "ivf-rabitq": ("ivfflat", {"quantization": "rabitq", "coarse": "hnsw"}),
    "ivfpq": ("ivfpq", {}),
}


def dataset(name: str, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    if name == "clustered":
        base, queries = clustered_set()
        return base[:n], queries, {"what": "shared clustered set (synthetic, 1,000 Gaussian clusters)"}
    base, queries, about = real_embedding_set()
    return base[:n], queries, {"what": "MiniLM chunks of SciFact and dbpedia", **about}


def build(folder: Path, kind: str, params: dict[str, Any], base: np.ndarray) -> float:
    """A persistent collection with one sealed segment of `base`; seconds to insert and build."""
    import vectorforge as vf

    if folder.exists():
        shutil.rmtree(folder)
    began = time.perf_counter()
    with vf.connect(folder) as db:
        col = db.create_collection(
            "bench", dim=base.shape[1], metric="cosine", index=kind, index_params=params,
            max_segment_points=len(base),
        )  # fmt: skip
        for i in range(0, len(base), 50_000):
            col.upsert(list(range(i, min(i + 50_000, len(base)))), base[i : i + 50_000])
        col.flush()
    return time.perf_counter() - began


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measure(args: argparse.Namespace) -> None:
    """In the subprocess: open the collection, then sweep; JSON on stdout."""
    import faiss

    faiss.omp_set_num_threads(1)
    queries, truth = np.load(args.queries), np.load(args.truth)
    anon0, file0 = status_kb("RssAnon"), status_kb("RssFile")
    import vectorforge as vf

    anon_imported, file_imported = status_kb("RssAnon"), status_kb("RssFile")
    db = vf.connect(args.folder)
    col = db.get_collection("bench")
    opened = {"anon": status_kb("RssAnon") - anon_imported, "file": status_kb("RssFile") - file_imported}
    segment_path = next(
        p
        for p in (Path(args.folder) / "collections" / "bench" / "segments").iterdir()
        if (p / "index.faiss").exists()
    )
    graph, exact = args.kind == "hnsw", args.kind == "flat"
    grid: tuple[int | None, ...] = (None,) if exact else EF_GRID if graph else NPROBE_GRID
    rows = []
    for value in grid:  # the engine first, so that its memory is measured before raw FAISS loads
        params = {} if value is None else {"ef": value} if graph else {"nprobe": value}
        batch = [  # in batches the engine takes (at most 1,024 queries a call)
            hits
            for i in range(0, len(queries), 1000)
            for hits in col.search_batch(queries[i : i + 1000], k=K, params=params, with_payload=False)
        ]
        recall = recall_of([[h.id for h in hits] for hits in batch], truth)
        qps = single_qps(lambda q, p=params: col.search(q, k=K, params=p, with_payload=False), queries)
        rows.append({"param": value, "recall": recall, "qps": qps})
        print(json.dumps({"progress": rows[-1]}), file=sys.stderr, flush=True)
        if recall >= 0.995:
            break
    after = {"anon": status_kb("RssAnon") - anon_imported, "file": status_kb("RssFile") - file_imported}
    raw = faiss.read_index(str(segment_path / "index.faiss"))  # the same index file, searched directly
    for row in rows:
        value = row["param"]
        if value is None:
            raw_params = None
        elif graph:
            raw_params = faiss.SearchParametersHNSW(efSearch=value)
        else:
            raw_params = ivf_params(raw, value)
        _, raw_ids = raw.search(queries, K, params=raw_params)
        row["raw_recall"] = recall_of(raw_ids.tolist(), truth)
        row["raw_qps"] = single_qps(lambda q, p=raw_params: raw.search(q[None, :], K, params=p), queries)
    index_bytes = (segment_path / "index.faiss").stat().st_size
    db.close()
    print(json.dumps({
        "sweep": rows, "index_bytes": index_bytes,
        "rss_kb": {"before_import": {"anon": anon0, "file": file0}, "opened": opened,
                   "after_searches": after},
    }))  # fmt: skip


def ivf_params(raw: Any, nprobe: int) -> Any:
    import faiss

    index = faiss.downcast_index(raw)
    made = (
        faiss.IVFRaBitQSearchParameters() if "RaBitQ" in type(index).__name__ else faiss.SearchParametersIVF()
    )
    made.nprobe = nprobe
    if isinstance(faiss.downcast_index(index.quantizer), faiss.IndexHNSW):
        made.quantizer_params = faiss.SearchParametersHNSW(efSearch=max(16, 2 * nprobe))  # as the engine
    return made


def recall_of(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(got[:K]) & set(want[:K].tolist())) for got, want in zip(found, truth, strict=True))
    return hits / (K * len(truth))


def single_qps(search: Any, queries: np.ndarray, budget_s: float = 3.0) -> float:
    """One call per query, the best of two passes (each at most `budget_s`)."""
    best = 0.0
    for q in queries[:50]:  # warm
        search(q)
    for _ in range(2):
        began, done = time.perf_counter(), 0
        for q in queries:
            search(q)
            done += 1
            if done % 100 == 0 and time.perf_counter() - began > budget_s:
                break
        best = max(best, done / (time.perf_counter() - began))
    return best


def first_at_target(sweep: list[dict[str, Any]], key: str = "recall") -> dict[str, Any] | None:
    return next((row for row in sweep if row[key] >= TARGET), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="clustered,real")
    ap.add_argument("--n", type=int, default=200_000, help="vectors of the clustered set (real: all)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--out", default="quantized")
    ap.add_argument("--merge", action="store_true", help="update the kinds measured in the result file")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # the subprocess: kind
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--queries", help=argparse.SUPPRESS)
    ap.add_argument("--truth", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        measure(args)
        return
    started = time.perf_counter()
    results: dict[str, Any] = {}
    previous = RESULTS / f"{args.out}.json"
    if args.merge and previous.exists():  # re-measured kinds replace theirs; the rest stay
        results = json.loads(previous.read_text())["sets"]
    work = CACHE / "quantized"
    for set_name in args.sets.split(","):
        base, queries, about = dataset(set_name, args.n if set_name == "clustered" else 10**9)
        n, dim = base.shape
        truth = exact_ground_truth(base, queries, K, name=f"quantized-{set_name}-{n}")
        qfile, tfile = work / f"{set_name}-queries.npy", work / f"{set_name}-truth.npy"
        work.mkdir(parents=True, exist_ok=True)
        np.save(qfile, queries)
        np.save(tfile, truth)
        found: dict[str, Any] = dict(results.get(set_name, {}).get("kinds", {}))
        for name in args.kinds.split(","):
            kind, params = KINDS[name]
            folder = work / f"{set_name}-{name}"
            console.print(f"[bold]{set_name}[/bold] {name}: building {n:,} x {dim}")
            seconds = build(folder, kind, params, base)
            console.print(f"  built in {seconds:.1f} s; measuring in a fresh process")
            proc = subprocess.run(
                [sys.executable, __file__, "--measure", "1", "--folder", str(folder), "--queries", str(qfile),
                 "--truth", str(tfile), "--kind", kind],
                capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
            if proc.returncode != 0:
                console.print(f"  [red]failed[/red]: {proc.stderr[-2000:]}")
                found[name] = {"kind": kind, "params": params, "error": proc.stderr[-2000:]}
                shutil.rmtree(folder)
                continue
            measured = json.loads(proc.stdout.strip().splitlines()[-1])
            disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            found[name] = {"kind": kind, "params": params, "build_s": seconds, "disk_bytes": disk, **measured}
            shutil.rmtree(folder)
        found = {name: found[name] for name in KINDS if name in found}  # in the table's order
        results[set_name] = {"n": n, "dim": dim, "queries": len(queries), **about, "kinds": found}
        report(set_name, results[set_name])
        write_result(args.out, {"k": K, "target_recall": TARGET, "sets": results,
                                "seconds": round(time.perf_counter() - started, 1)})  # fmt: skip
    plot(results, REPO / "docs" / "quantized.png")


def summary(entry: dict[str, Any], n: int) -> dict[str, Any]:
    """The first setting at the target recall, its QPS and raw FAISS's there, and memory per vector."""
    hit = first_at_target(entry["sweep"])
    rss = entry["rss_kb"]["after_searches"]
    return {
        "param": None if hit is None else hit["param"],
        "recall": None if hit is None else hit["recall"],
        "qps": None if hit is None else hit["qps"],
        "raw_qps": None if hit is None else hit["raw_qps"],
        "raw_recall": None if hit is None else hit["raw_recall"],
        "anon_b": 1024 * rss["anon"] / n,
        "index_b": entry["index_bytes"] / n,
        "file_b": 1024 * rss["file"] / n,
    }


def report(set_name: str, found: dict[str, Any]) -> None:
    from rich.table import Table

    n = found["n"]
    table = Table(
        title=f"{set_name}: {n:,} x {found['dim']}, {found['queries']} queries, "
        f"first setting at recall@10 >= {TARGET}"
    )
    columns = ["index", "setting", "recall", "QPS", "raw FAISS QPS", "x raw", "index B/vec", "anon B/vec",
               "mapped B/vec", "build s"]  # fmt: skip
    for col in columns:
        table.add_column(col, justify="left" if col == "index" else "right")
    base_index = None
    for name, entry in found["kinds"].items():
        if "error" in entry:
            table.add_row(name, "failed", *[""] * (len(columns) - 2))
            continue
        s = summary(entry, n)
        if name == "hnsw":
            base_index = s["index_b"]
        setting = (
            "exact"
            if entry["kind"] == "flat"
            else "-"
            if s["param"] is None
            else f"{'ef' if entry['kind'] == 'hnsw' else 'nprobe'} {s['param']}"
        )
        less = "" if base_index is None else f" ({base_index / s['index_b']:.1f}x less)"
        table.add_row(
            name, setting,
            "-" if s["recall"] is None else f"{s['recall']:.3f}",
            "-" if s["qps"] is None else f"{s['qps']:,.0f}",
            "-" if s["raw_qps"] is None else f"{s['raw_qps']:,.0f}",
            "-" if s["qps"] is None else f"{s['qps'] / s['raw_qps']:.2f}",
            f"{s['index_b']:,.0f}{less}",
            f"{s['anon_b']:,.0f}",
            f"{s['file_b']:,.0f}",
            f"{entry['build_s']:.0f}",
        )  # fmt: skip
    console.print(table)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5), squeeze=False)
    for ax, (set_name, found) in zip(axes[0], results.items(), strict=True):
        for name, entry in found["kinds"].items():
            if "error" in entry:
                continue
            sweep = entry["sweep"]
            mem = 1024 * entry["rss_kb"]["after_searches"]["anon"] / found["n"]
            ax.plot([r["recall"] for r in sweep], [r["qps"] for r in sweep], marker="o", ms=3,
                    label=f"{name} ({mem:,.0f} B/vec)")  # fmt: skip
        ax.axvline(TARGET, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("recall@10")
        ax.set_ylabel("single-query QPS (1 thread)")
        ax.set_yscale("log")
        ax.set_xlim(0.7, 1.0)
        ax.set_title(f"{set_name}: {found['n']:,} x {found['dim']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    console.print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
