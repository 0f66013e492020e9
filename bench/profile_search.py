"""Where a single search's time goes: cProfile over `col.search(q, k=10)` for a few index kinds,
the functions that cost most (their own time, in microseconds per search), and the search timed
without the profiler beside the FAISS call alone on the same index (`search_c`, no Python wrapper):
what the engine adds.

    python bench/profile_search.py [--n 50000] [--kinds hnsw,ivf-sq8] [--queries 1000]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any

import faiss
import numpy as np
from common import clustered_set, console, print_table, write_result

import vectorforge as vf
from vectorforge.index.base import SearchParams

KINDS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {  # index, its params, search params
    "flat": ("flat", {}, {}),
    "hnsw": ("hnsw", {"M": 32, "ef_construction": 200}, {"ef": 24}),
    "hnsw-sq8": ("hnsw", {"M": 32, "ef_construction": 200, "quantization": "sq8"}, {"ef": 16}),
    "ivf-sq8": ("ivfflat", {"quantization": "sq8", "coarse": "hnsw"}, {"nprobe": 2}),
}


def per_search_us(fn: Any, queries: np.ndarray, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        for q in queries:
            fn(q)
        best = min(best, (time.perf_counter() - began) / len(queries) * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--kinds", default="flat,hnsw,hnsw-sq8,ivf-sq8")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    base, queries = clustered_set()
    base = base[: args.n]
    queries = queries[: args.queries] / np.linalg.norm(queries[: args.queries], axis=1, keepdims=True)
    queries = queries.astype(np.float32)
    found: dict[str, Any] = {}
    for name in args.kinds.split(","):
        kind, params, search = KINDS[name]
        col = vf.connect().create_collection(
            "p", dim=base.shape[1], metric="cosine", index=kind, index_params=params,
            max_segment_points=len(base),
        )  # fmt: skip
        for i in range(0, len(base), 50_000):
            col.upsert(list(range(i, min(i + 50_000, len(base)))), base[i : i + 50_000])
        col.flush()
        index = next(s for s in col._segments if s.n).index
        parsed = SearchParams.parse(search or None)

        def engine(q: np.ndarray, col: Any = col, search: dict[str, Any] = search) -> Any:
            return col.search(q, k=10, params=search or None, with_payload=False)

        def ann(q: np.ndarray, index: Any = index, parsed: SearchParams = parsed) -> Any:
            return index.ann_search(q[None, :], 11, None, 1.0, parsed)  # k + 1: the engine's tie check

        for q in queries[:200]:
            engine(q)
        engine_us, ann_us = per_search_us(engine, queries), per_search_us(ann, queries)
        profile = cProfile.Profile()
        profile.enable()
        for q in queries:
            engine(q)
        profile.disable()
        stats = pstats.Stats(profile)
        rows = []
        for (file, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            where = f"{file.rsplit('/', 1)[-1]}:{line} {func}" if line else func
            per = 1e6 / len(queries)
            rows.append({"function": where, "calls_per_search": ncalls / len(queries),
                         "own_us": per * tottime, "cum_us": per * cumtime})  # fmt: skip
        rows.sort(key=lambda r: -r["own_us"])
        found[name] = {"index": kind, "params": params, "search": search, "engine_us": engine_us,
                       "index_ann_search_us": ann_us, "engine_over_index_us": engine_us - ann_us,
                       "profile_top": rows[: args.top]}  # fmt: skip
        print_table(
            f"{name}: {len(base):,} x {base.shape[1]}; search {engine_us:.1f} us, the index's ann_search "
            f"{ann_us:.1f} us (the engine adds {engine_us - ann_us:.1f} us); "
            "under cProfile, own time per search",
            ["function", "calls", "own us", "cum us"],
            [[r["function"][:70], r["calls_per_search"], r["own_us"], r["cum_us"]] for r in rows[: args.top]],
        )
    console.print(
        "cProfile's own cost inflates small Python functions; the timings above the tables are without it"
    )
    write_result("profile_search", {"n": len(base), "queries": len(queries), "kinds": found})


if __name__ == "__main__":
    main()
