"""Shared pieces of the benchmarks: data, ground truth, timing, result files.

Benchmarks are not tests: each runs in one process, compares against a named baseline measured in the
same run, prints a table and writes JSON to bench/results/. Quote the ratios; absolute times move with
the machine's load.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
CACHE = REPO / "bench" / ".cache"
# a pipe would get rich's 80 columns and fold the wider tables
console = Console(width=None if sys.stdout.isatty() else 160)


def shared_path() -> Path:
    """$VECTORFORGE_SHARED, or ../shared next to the repository."""
    return Path(os.environ.get("VECTORFORGE_SHARED", REPO.parent / "shared")).resolve()


def clustered_set(n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """The shared synthetic set (base, queries), cached as .npy."""
    CACHE.mkdir(parents=True, exist_ok=True)
    base_file, query_file = CACHE / f"clustered-{n}-base.npy", CACHE / f"clustered-{n}-queries.npy"
    if not base_file.exists():
        sys.path.insert(0, str(shared_path() / "bench"))
        from clustered import clustered  # type: ignore[import-not-found]

        base, queries = clustered(n=n)
        np.save(base_file, base)
        np.save(query_file, queries)
    return np.load(base_file), np.load(query_file)


def real_embedding_set(words: int = 28) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Real embeddings at scale: SciFact's and dbpedia's abstracts (titles first) cut into
    `words`-word chunks, and their queries, embedded by the bundled MiniLM (bf16, cached by text in
    the embedding cache and as .npy here). (base, queries, what it is)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    base_file, query_file = CACHE / f"real-chunks{words}-base.npy", CACHE / f"real-chunks{words}-queries.npy"
    chunks: list[str] = []
    queries: list[str] = []
    for corpus in ("scifact", "dbpedia"):
        folder = shared_path() / "data" / corpus
        for line in (folder / "corpus.jsonl").read_text().splitlines():
            doc = json.loads(line)
            tokens = f"{doc.get('title', '')} {doc['text']}".split()
            chunks += [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]
        queries += [json.loads(line)["text"] for line in (folder / "queries.jsonl").read_text().splitlines()]
    about = {"corpora": ["scifact", "dbpedia"], "words_per_chunk": words, "model": "all-MiniLM-L6-v2 (bf16)"}
    if not base_file.exists():
        from vectorforge.embed.registry import get_embedder

        embedder = get_embedder("minilm")
        np.save(query_file, embedder.encode(queries, progress=True))
        np.save(base_file, embedder.encode(chunks, batch_size=128, progress=True))
    return np.load(base_file), np.load(query_file), about


def exact_ground_truth(
    base: np.ndarray, queries: np.ndarray, k: int = 10, name: str | None = None
) -> np.ndarray:
    """Exact inner-product top-k row ids (cached under `name`)."""
    path = CACHE / f"gt-{name}-{k}.npy" if name else None
    if path is not None and path.exists():
        return np.load(path)
    _, ids = faiss.knn(queries, base, k, metric=faiss.METRIC_INNER_PRODUCT)
    if path is not None:
        np.save(path, ids)
    return ids


def recall_at_k(found: list[list[int]] | np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean fraction of the true top-k found in the returned top-k."""
    hits = 0
    for got, want in zip(found, truth, strict=True):
        hits += len(set(list(got)[:k]) & set(want[:k].tolist()))
    return hits / (k * len(truth))


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def machine() -> dict[str, Any]:
    versions = {}
    for pkg in ("vectorforge", "faiss-cpu", "numpy", "torch", "sentence-transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "versions": versions,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """bench/results/<name>.json with the date and the machine."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    doc.update(payload)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    console.print(f"wrote {path.relative_to(REPO)}")
    return path


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col not in (columns[0],) else "left")
    for row in rows:
        table.add_row(*[f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
