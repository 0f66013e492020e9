"""`vectorforge plan calibrate`: measure this machine with vectorforge itself, for the planner.

For each index configuration and size: a persistent collection of clustered synthetic vectors (one
sealed segment, built by the engine), its exact top-10 from a flat scan, a sweep of the search
setting (ef, nprobe) up to the first that reaches the recall target, and there single-query latency
on one FAISS thread (mean, p50, p99). Progress shows; Ctrl-C stops between measurements and keeps
what was measured.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.planning.profile import Measured, Profile

__all__ = ["CONFIGURATIONS", "calibrate"]

K = 10
# (index, quantization, index params): the choices the planner makes among
CONFIGURATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("hnsw", "none", {"M": 32, "ef_construction": 200}),
    ("hnsw", "sq8", {"M": 32, "ef_construction": 200, "quantization": "sq8"}),
    ("ivfflat", "none", {"coarse": "hnsw"}),
    ("ivfflat", "sq8", {"coarse": "hnsw", "quantization": "sq8"}),
    ("flat", "none", {}),
]
SWEEP = {"hnsw": ("ef", (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)),
         "ivfflat": ("nprobe", (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256))}  # fmt: skip


def clustered(n: int, dim: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a mixture of n/200 Gaussians, base and queries alike: the generator of the
    shared benchmark set (../shared/bench/clustered.py), at any size and dimension."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 200), dim)).astype(np.float32)
    labels = rng.integers(0, len(centres), n + queries)
    x = centres[labels] + rng.standard_normal((n + queries, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def _exact(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return np.asarray(index.search(queries, K)[1])


def _recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]))


def _measure_one(
    folder: Path, index: str, quantization: str, params: dict[str, Any], base: np.ndarray,
    queries: np.ndarray, truth: np.ndarray, recall_target: float,
) -> Measured:  # fmt: skip
    import vectorforge as vf

    if folder.exists():
        shutil.rmtree(folder)
    with vf.connect(folder) as db:
        col = db.create_collection(
            "calibration", dim=base.shape[1], metric="cosine", index=index, index_params=params,
            max_segment_points=len(base),
        )  # fmt: skip
        for i in range(0, len(base), 20_000):
            col.upsert(list(range(i, min(i + 20_000, len(base)))), base[i : i + 20_000])
        col.flush()
        name, grid = SWEEP.get(index, ("", (0,)))
        setting: dict[str, Any] = {}
        recall = 0.0
        for value in grid:
            setting = {name: value} if name else {}
            hits = col.search_batch(queries, k=K, params=setting, with_payload=False)
            recall = _recall([[int(h.id) for h in row] for row in hits], truth)
            if recall >= recall_target:
                break
        latencies = []
        for q in queries:
            start = time.perf_counter()
            col.search(q, k=K, params=setting, with_payload=False)
            latencies.append(time.perf_counter() - start)
        segments = [p for p in (folder / "collections" / "calibration" / "segments").iterdir()]
        index_bytes = sum(f.stat().st_size for s in segments for f in s.glob("index*") if f.is_file())
    ms = 1000 * np.asarray(latencies)
    return Measured(
        index=index,
        quantization=quantization,
        dim=int(base.shape[1]),
        n=len(base),
        setting=setting,
        recall=recall,
        qps_per_core=float(1000.0 / ms.mean()),
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        index_bytes_per_point=index_bytes / len(base),
    )


def calibrate(
    sizes: Sequence[int] = (20_000, 100_000),
    dims: Sequence[int] = (384,),
    configurations: Sequence[tuple[str, str, dict[str, Any]]] = tuple(CONFIGURATIONS),
    *,
    recall_target: float = 0.95,
    queries: int = 300,
    name: str | None = None,
    progress: bool = True,
) -> Profile:
    """Measure every configuration at every size and dimension on this machine (one FAISS thread)."""
    import faiss
    from rich.progress import Progress

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    profile = Profile(
        name=name or platform.node() or "this machine",
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        recall_target=recall_target,
    )
    work = [(n, d, c) for d in dims for n in sizes for c in configurations]
    tmp = Path(tempfile.mkdtemp(prefix="vf-calibrate-"))
    try:
        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task("calibrating", total=len(work))
            data: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
            for n, dim, (index, quantization, params) in work:
                bar.update(task, description=f"{index}/{quantization} at {n:,} x {dim}")
                if (n, dim) not in data:
                    data.clear()  # one size's vectors in memory at a time
                    base, qs = clustered(n, dim, queries)
                    data[(n, dim)] = (base, qs, _exact(base, qs))
                base, qs, truth = data[(n, dim)]
                profile.points.append(
                    _measure_one(tmp / "db", index, quantization, params, base, qs, truth, recall_target)
                )
                bar.advance(task)
    except KeyboardInterrupt:
        pass  # what was measured is kept; the caller saves it
    finally:
        faiss.omp_set_num_threads(threads)
        shutil.rmtree(tmp, ignore_errors=True)
    return profile
