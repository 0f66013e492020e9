"""Engine overhead: the same vectors through vectorforge and through raw FAISS, in one run.

Baseline: faiss.IndexHNSWFlat (M=32, efConstruction=200, inner product), the index vectorforge builds.
Measured: batch-insert throughput (10,000-vector batches for both), single-query QPS (one call per
query, as an application does), batch QPS (all queries in one call), at the smallest ef where raw FAISS
reaches recall@10 >= 0.95 (vectorforge uses the same ef). Target: vectorforge >= 0.8x FAISS on each.

    python bench/engine_overhead.py [--n 200000] [--datasets clustered scifact]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import faiss
import numpy as np
from common import clustered_set, console, exact_ground_truth, print_table, recall_at_k, write_result

import vectorforge as vf

EF_SWEEP = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
BATCH = 10_000
K = 10


def scifact_set() -> tuple[np.ndarray, np.ndarray]:
    """SciFact corpus and all queries embedded with the default MiniLM embedder (cached on disk)."""
    from common import shared_path

    from vectorforge.datasets import load_beir
    from vectorforge.embed import get_embedder

    ds = load_beir(shared_path() / "data" / "scifact", split=None)
    emb = get_embedder("minilm")
    base = emb.encode([ds.doc_text(d) for d in ds.corpus], progress=True)
    queries = emb.encode(list(ds.queries.values()), progress=True)
    return base, queries


def raw_faiss(base: np.ndarray) -> tuple[Any, float]:
    index = faiss.IndexHNSWFlat(base.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 200
    start = time.perf_counter()
    for i in range(0, len(base), BATCH):
        index.add(base[i : i + BATCH])
    return index, time.perf_counter() - start


def vf_collection(base: np.ndarray, path: str | None) -> tuple[Any, Any, float]:
    db = vf.connect(path)
    col = db.create_collection(
        "bench", dim=base.shape[1], metric="dot", index="hnsw", index_params={"M": 32, "ef_construction": 200}
    )
    ids = np.arange(len(base))
    start = time.perf_counter()
    for i in range(0, len(base), BATCH):
        chunk = ids[i : i + BATCH]
        col.upsert(chunk.tolist(), base[i : i + BATCH], [{"n": int(j)} for j in chunk])
    return db, col, time.perf_counter() - start


def faiss_single(index: Any, queries: np.ndarray, ef: int) -> tuple[list[list[int]], float]:
    params = faiss.SearchParametersHNSW(efSearch=ef)
    out = []
    start = time.perf_counter()
    for i in range(len(queries)):
        _, ids = index.search(queries[i : i + 1], K, params=params)
        out.append(ids[0].tolist())
    return out, len(queries) / (time.perf_counter() - start)


def faiss_batch(index: Any, queries: np.ndarray, ef: int) -> tuple[np.ndarray, float]:
    params = faiss.SearchParametersHNSW(efSearch=ef)
    start = time.perf_counter()
    _, ids = index.search(queries, K, params=params)
    return ids, len(queries) / (time.perf_counter() - start)


def vf_single(col: Any, queries: np.ndarray, ef: int, with_payload: bool) -> tuple[list[list[int]], float]:
    params = {"ef": ef}
    out = []
    start = time.perf_counter()
    for q in queries:
        out.append([h.id for h in col.search(q, k=K, params=params, with_payload=with_payload)])
    return out, len(queries) / (time.perf_counter() - start)


def vf_batch(col: Any, queries: np.ndarray, ef: int) -> tuple[list[list[int]], float]:
    start = time.perf_counter()
    res = [  # at most 1,024 queries a call (the engine's limit): 1,000 at a time
        hits
        for i in range(0, len(queries), 1000)
        for hits in col.search_batch(queries[i : i + 1000], k=K, params={"ef": ef}, with_payload=False)
    ]
    qps = len(queries) / (time.perf_counter() - start)
    return [[h.id for h in hits] for hits in res], qps


def run_dataset(name: str, base: np.ndarray, queries: np.ndarray, repeats: int) -> dict[str, Any]:
    console.rule(f"{name}: {base.shape[0]:,} x {base.shape[1]}, {len(queries):,} queries")
    truth = exact_ground_truth(base, queries, K, name=f"{name}-{len(base)}")
    index, faiss_insert = raw_faiss(base)
    ef = EF_SWEEP[-1]
    sweep = []
    for candidate in EF_SWEEP:
        ids, _ = faiss_batch(index, queries, candidate)
        rec = recall_at_k(ids, truth)
        sweep.append({"ef": candidate, "recall": rec})
        if rec >= 0.95:
            ef = candidate
            break
    console.print(f"ef={ef} (first ef with FAISS recall@10 >= 0.95): {sweep}")
    # Build everything first, then measure in alternation, so that a change of load on the machine
    # hits every system alike; each figure is the best of `repeats` rounds.
    tmp = tempfile.TemporaryDirectory()
    systems: dict[str, Any] = {}
    inserts = {"raw FAISS HNSW": faiss_insert}
    for label, path in (("vectorforge in-memory", None), ("vectorforge persistent", tmp.name)):
        db, col, seconds = vf_collection(base, path)
        systems[label] = (db, col)
        inserts[label] = seconds
    runs: dict[str, dict[str, Any]] = {label: {} for label in inserts}

    def keep(label: str, key: str, out: Any, qps: float) -> None:
        if qps > runs[label].get(key, (None, 0.0))[1]:
            runs[label][key] = (out, qps)

    for _ in range(repeats):
        keep("raw FAISS HNSW", "single", *faiss_single(index, queries, ef))
        keep("raw FAISS HNSW", "batch", *faiss_batch(index, queries, ef))
        for label, (_, col) in systems.items():
            keep(label, "single", *vf_single(col, queries, ef, False))
            keep(label, "single_payload", *vf_single(col, queries, ef, True))
            keep(label, "batch", *vf_batch(col, queries, ef))
    rows: dict[str, dict[str, float]] = {}
    for label, measured in runs.items():
        rows[label] = {
            "insert_vps": len(base) / inserts[label],
            "single_qps": measured["single"][1],
            "batch_qps": measured["batch"][1],
            "recall_single": recall_at_k(measured["single"][0], truth),
            "recall_batch": recall_at_k(measured["batch"][0], truth),
        }
        if "single_payload" in measured:
            rows[label]["single_qps_with_payload"] = measured["single_payload"][1]
    for db, _ in systems.values():
        db.close()
    tmp.cleanup()
    base_row = rows["raw FAISS HNSW"]
    for label, row in rows.items():
        if label != "raw FAISS HNSW":
            row["ratio_insert"] = row["insert_vps"] / base_row["insert_vps"]
            row["ratio_single"] = row["single_qps"] / base_row["single_qps"]
            row["ratio_batch"] = row["batch_qps"] / base_row["batch_qps"]
    print_table(
        f"{name}: engine overhead at ef={ef}",
        [
            "system",
            "insert vec/s",
            "single QPS",
            "single QPS +payload",
            "batch QPS",
            "recall@10",
            "x FAISS (ins/single/batch)",
        ],
        [
            [
                label,
                r["insert_vps"],
                r["single_qps"],
                r.get("single_qps_with_payload", "-"),
                r["batch_qps"],
                r["recall_single"],
                "-"
                if "ratio_single" not in r
                else f"{r['ratio_insert']:.2f} / {r['ratio_single']:.2f} / {r['ratio_batch']:.2f}",
            ]
            for label, r in rows.items()
        ],
    )
    return {
        "n": len(base),
        "dim": base.shape[1],
        "queries": len(queries),
        "ef": ef,
        "ef_sweep": sweep,
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--datasets", nargs="+", default=["clustered", "scifact"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="engine_overhead")
    args = ap.parse_args()
    results = {}
    for name in args.datasets:
        base, queries = clustered_set(args.n) if name == "clustered" else scifact_set()
        results[name] = run_dataset(name, base, queries, args.repeats)
    write_result(args.out, {"batch": BATCH, "k": K, "datasets": results})


if __name__ == "__main__":
    main()
