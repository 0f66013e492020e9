"""`vectorforge plan calibrate`: measure this machine with vectorforge itself, for the planner.

For each index configuration and size: a persistent collection of clustered synthetic vectors (one
sealed segment, built by the engine on every core), its exact top-10 from a flat scan, a sweep of the
search setting (ef, nprobe) up to the first that reaches the recall target, and there single-query
latency on one FAISS thread (mean, p50, p99). Then the same for one full segment drawn from each of
`corpora` (larger corpora of the same generator: what a segment of a sharded, segmented collection
holds), its recall weighted by rank as the corpus's recall@10 counts it (`rank_weights`: a segment
of a 2M corpus holds ~1.25 of a query's top 10, its best few). Progress shows; Ctrl-C stops between
measurements and keeps what was measured.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.errors import InvalidParameter
from vectorforge.extras import missing_extra
from vectorforge.planning.profile import DATA_GENERATOR, RERANK, SEGMENT_POINTS, Measured, Profile

__all__ = [
    "CONFIGURATIONS",
    "build",
    "build_late_interaction",
    "measure_fanout",
    "calibrate",
    "clustered",
    "rank_weights",
    "sweep_multi",
    "term_counts",
    "term_queries",
    "sweep_to_target",
    "timed",
    "token_matrices",
]

K = 10
NAME = "calibration"  # the collection every measurement builds
# (index, quantization, index params): the choices the planner makes among
CONFIGURATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("hnsw", "none", {"M": 32, "ef_construction": 200}),
    ("hnsw", "sq8", {"M": 32, "ef_construction": 200, "quantization": "sq8"}),
    ("ivfflat", "none", {"coarse": "hnsw"}),
    ("ivfflat", "sq8", {"coarse": "hnsw", "quantization": "sq8"}),
    ("flat", "none", {}),
]
# The other vector kinds: BM25 over an inverted index (exact), and late interaction over PLAID (its
# compressed regime starts at 2M tokens: MULTI_POINTS documents of MULTI_TOKENS tokens are past it).
SPARSE = ("inverted", "bm25")
SPARSE_NNZ, SPARSE_VOCABULARY, SPARSE_QUERY_TERMS = 60, 50_000, 5
MULTI = ("plaid", "none")
MULTI_POINTS, MULTI_TOKENS, MULTI_DIM = 70_000, 32, 128
# Re-ranking a first stage's candidates by MaxSim (RERANK): a has_id search of that many candidates.
RERANK_DEPTHS = (100, 1000)
SWEEP = {
    "hnsw": ("ef", (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)),
    "ivfflat": ("nprobe", (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)),
}


def clustered(
    n: int, dim: int, queries: int, seed: int = 0, corpus: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a mixture of corpus/200 Gaussians (corpus: n by default), base and queries
    alike: the generator of the shared benchmark set (../shared/bench/clustered.py), at any size and
    dimension; with `corpus` > n, a uniform sample of n points of that corpus."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, (corpus or n) // 200), dim)).astype(np.float32)
    labels = rng.integers(0, len(centres), n + queries)
    x = centres[labels] + rng.standard_normal((n + queries, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x[:n]), np.ascontiguousarray(x[n:])


def _exact(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return np.asarray(index.search(queries, K)[1])


def rank_weights(n: int, corpus: int = 0) -> np.ndarray:
    """w[r - 1] = P(at least r of a corpus's top K lie in one uniform segment of n of its points):
    how much the segment's r-th best counts towards the corpus's recall@K (all 1 for the whole
    corpus). A segment of a larger corpus need find only its few best for the corpus's top K."""
    with missing_extra("calibration"):
        from scipy.stats import binom

    share = min(1.0, n / corpus) if corpus else 1.0
    return np.asarray(binom.sf(np.arange(K), K, share), dtype=np.float64)  # sf(r - 1) = P(X >= r)


def _recall(found: list[list[int]], truth: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Recall@K of `found` against `truth` (each row best first), ranks weighted by `weights`."""
    w = np.ones(K) if weights is None else weights
    hits = [[t in set(f) for t in row.tolist()] for f, row in zip(found, truth, strict=True)]
    return float(np.mean(np.asarray(hits, dtype=np.float64) @ w / w.sum()))


def _measure_one(
    folder: Path, index: str, quantization: str, params: dict[str, Any], base: np.ndarray,
    queries: np.ndarray, truth: np.ndarray, recall_target: float, corpus: int = 0,
    weights: np.ndarray | None = None,
) -> Measured:  # fmt: skip
    import faiss

    import vectorforge as vf

    timing = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # built on every core, timed on one
    try:
        build(
            folder, len(base), lambda i, count: base[i : i + count], dim=base.shape[1], metric="cosine",
            index=index, index_params=params, max_segment_points=len(base),
        )  # fmt: skip
    finally:
        faiss.omp_set_num_threads(timing)
    with vf.connect(folder) as db:
        col = db.get_collection(NAME)
        setting, recall = sweep_to_target(col, index, queries, truth, recall_target, weights)
        qps, p50, p99 = timed(lambda q: col.search(q, k=K, params=setting, with_payload=False), queries)
    index_bytes = _index_bytes(folder)
    return Measured(
        index=index,
        quantization=quantization,
        dim=int(base.shape[1]),
        n=len(base),
        setting=setting,
        recall=recall,
        qps_per_core=qps,
        p50_ms=p50,
        p99_ms=p99,
        index_bytes_per_point=index_bytes / len(base),
        corpus=corpus if corpus > len(base) else 0,
    )


def sweep_to_target(
    col: Any,
    index: str,
    queries: np.ndarray,
    truth: np.ndarray,
    recall_target: float,
    weights: np.ndarray | None = None,
) -> tuple[dict[str, Any], float]:
    """The first setting of `index`'s sweep (ef, nprobe; none for flat) whose recall@10 (ranks
    weighted by `weights`: `rank_weights`) reaches the target (else the last), and its recall."""
    name, grid = SWEEP.get(index, ("", (0,)))
    setting: dict[str, Any] = {}
    recall = 0.0
    for value in grid:
        setting = {name: value} if name else {}
        hits = col.search_batch(queries, k=K, params=setting, with_payload=False)
        recall = _recall([[int(h.id) for h in row] for row in hits], truth, weights)
        if recall >= recall_target:
            break
    return setting, recall


def timed(search: Any, queries: Sequence[Any] | np.ndarray) -> tuple[float, float, float]:
    """(QPS on one core, p50 ms, p99 ms) of one call per query, after a warm-up."""
    for q in queries[:20]:
        search(q)
    ms = []
    for q in queries:
        start = time.perf_counter()
        search(q)
        ms.append(1000 * (time.perf_counter() - start))
    arr = np.asarray(ms)
    return float(1000.0 / arr.mean()), float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def _index_bytes(folder: Path) -> int:
    """The segment files an index searches (not the full vectors, ids or payloads kept beside them)."""
    segments = folder / "collections" / NAME / "segments"
    beside = (".tokens.npy", "vectors.npy", "points.msgpack")
    return sum(f.stat().st_size for f in segments.rglob("*") if f.is_file() and not f.name.endswith(beside))


def build(
    folder: Path,
    n: int,
    rows: Callable[[int, int], Any],
    *,
    batch: int = 20_000,
    optimize: bool = False,
    payloads: Callable[[int, int], list[dict[str, Any]]] | None = None,
    **settings: Any,
) -> float:
    """A fresh persistent collection NAME of `n` points with `settings`, `rows(start, count)` (and
    `payloads(start, count)`) upserted a batch at a time, flushed (`optimize`: compacted too, which
    trains PLAID's codec); seconds."""
    import vectorforge as vf

    shutil.rmtree(folder, ignore_errors=True)
    began = time.perf_counter()
    with vf.connect(folder) as db:
        col = db.create_collection(NAME, **settings)
        for i in range(0, n, batch):
            count = min(batch, n - i)
            col.upsert(list(range(i, i + count)), rows(i, count), payloads(i, count) if payloads else None)
        col.flush()
        if optimize:
            col.optimize()
    return time.perf_counter() - began


def zipf_terms(rng: np.random.Generator, count: int) -> np.ndarray:
    """Up to `count` distinct term ids drawn from a Zipf law (as words are), of SPARSE_VOCABULARY."""
    return np.unique((rng.zipf(1.1, count * 3) - 1) % SPARSE_VOCABULARY)[:count]


def term_counts(rng: np.random.Generator, count: int, nnz: int = SPARSE_NNZ) -> list[Any]:
    """`count` documents' term counts (SparseVector), `nnz` Zipf terms each."""
    import vectorforge as vf

    made = [zipf_terms(rng, nnz) for _ in range(count)]
    return [vf.SparseVector(t.tolist(), rng.integers(1, 4, len(t)).astype(float).tolist()) for t in made]


def term_queries(rng: np.random.Generator, count: int) -> list[Any]:
    """`count` queries of SPARSE_QUERY_TERMS Zipf terms, weight 1 each."""
    import vectorforge as vf

    return [
        vf.SparseVector(t.tolist(), [1.0] * len(t))
        for t in (zipf_terms(rng, SPARSE_QUERY_TERMS) for _ in range(count))
    ]


def _measure_sparse(folder: Path, n: int, queries: int, seed: int = 0) -> Measured:
    """BM25 over term counts drawn from a Zipf law: exact, so recall 1."""
    import vectorforge as vf

    rng = np.random.default_rng(seed)
    build(folder, n, lambda _i, count: {"bm25": term_counts(rng, count)}, vectors={"bm25": vf.Sparse()})
    asked = term_queries(rng, queries)
    with vf.connect(folder) as db:
        col = db.get_collection(NAME)
        qps, p50, p99 = timed(lambda q: col.search(q, k=K, using="bm25", with_payload=False), asked)
    size = _index_bytes(folder)
    return Measured(SPARSE[0], SPARSE[1], SPARSE_NNZ, n, {}, 1.0, qps, p50, p99, size / n)


_CENTRES = np.random.default_rng(12345).standard_normal((4096, MULTI_DIM)).astype(np.float32)


def token_matrices(rng: np.random.Generator, count: int, tokens: int = MULTI_TOKENS) -> list[np.ndarray]:
    """`count` matrices of `tokens` tokens (MULTI_DIM wide), each near one of 4,096 shared centres
    (as ColBERT's tokens cluster by term)."""
    picked = _CENTRES[rng.integers(0, len(_CENTRES), (count, tokens))]
    noisy = picked + 0.3 * rng.standard_normal(picked.shape).astype(np.float32)
    return list(noisy.astype(np.float32))


def build_late_interaction(folder: Path, n: int, rng: np.random.Generator) -> float:
    """NAME as a PLAID collection of `n` token matrices (`token_matrices`), compacted; seconds."""
    import vectorforge as vf

    multi = vf.Multi(dim=MULTI_DIM, index="plaid")
    return build(
        folder,
        n,
        lambda _i, c: {"t": token_matrices(rng, c)},
        batch=5_000,
        optimize=True,
        vectors={"t": multi},
    )


# PLAID's search settings, from ColBERT's defaults for k = 10 up: cells probed per query token and
# the documents kept after the centroid stages.
MULTI_SWEEP: tuple[dict[str, Any], ...] = (
    {}, {"ncells": 2, "ndocs": 512}, {"ncells": 4, "ndocs": 1024}, {"ncells": 8, "ndocs": 2048},
)  # fmt: skip


def sweep_multi(
    col: Any, asked: Sequence[np.ndarray], recall_target: float, using: str = "t"
) -> tuple[dict[str, Any], float]:
    """The first of MULTI_SWEEP whose recall@10 against PLAID's own exhaustive search (`exact`)
    reaches the target on `asked` (else the last), and its recall."""

    def ids(q: np.ndarray, params: dict[str, Any]) -> list[int]:
        return [int(h.id) for h in col.search(q, k=K, using=using, params=params, with_payload=False)]

    truth = np.asarray([ids(q, {"exact": True}) for q in asked])
    setting: dict[str, Any] = {}
    recall = 0.0
    for setting in MULTI_SWEEP:
        recall = _recall([ids(q, setting) for q in asked], truth)
        if recall >= recall_target:
            break
    return setting, recall


def _measure_multi(folder: Path, n: int, queries: int, recall_target: float, seed: int = 0) -> list[Measured]:
    """PLAID over token matrices around shared centres (as ColBERT's tokens cluster by term), at the
    first of its settings (`sweep_multi`) that reaches the recall target; then re-ranking by MaxSim
    of RERANK_DEPTHS candidates (random ids: a first stage's), a has_id search as `query_pages` makes."""
    import vectorforge as vf

    rng = np.random.default_rng(seed)
    build_late_interaction(folder, n, rng)
    asked = token_matrices(rng, queries)
    with vf.connect(folder) as db:
        col = db.get_collection(NAME)
        setting, recall = sweep_multi(col, asked[:50], recall_target)
        qps, p50, p99 = timed(
            lambda q: col.search(q, k=K, using="t", params=setting, with_payload=False), asked
        )
        size = _index_bytes(folder)
        out = [Measured(*MULTI, MULTI_DIM, n, setting, recall, qps, p50, p99, size / n, tokens=MULTI_TOKENS)]
        for depth in RERANK_DEPTHS:
            ids = [rng.choice(n, depth, replace=False).tolist() for _ in range(len(asked))]
            pairs = list(zip(asked, ids, strict=True))

            def rerank(pair: tuple[np.ndarray, list[int]]) -> object:
                only = {"must": [{"has_id": pair[1]}]}
                return col.search(pair[0], k=K, using="t", filter=only, with_payload=False)

            qps, p50, p99 = timed(rerank, pairs)
            out.append(Measured(*RERANK, MULTI_DIM, depth, {"depth": depth}, 1.0, qps, p50, p99, 0.0,
                                tokens=MULTI_TOKENS))  # fmt: skip
    return out


SEGMENT = SEGMENT_POINTS


FANOUT_POINTS = 20_000


def measure_fanout(folder: Path, n: int = FANOUT_POINTS, queries: int = 300) -> tuple[float, float]:
    """(p99 ms, core-ms) that a query pays for going to two shards instead of one: HNSW over `n`
    points in two shards against `n / 2` in one (each shard's own search the same), one at a time;
    the p99 by the clock, the core-ms by the process's CPU time (the shards search side by side)."""
    import vectorforge as vf

    base, qs = clustered(n, 384, queries)
    got: dict[int, tuple[float, float]] = {}
    for shards, points in ((1, n // 2), (2, n)):
        build(
            folder,
            points,
            lambda i, c: base[i : i + c],
            dim=384,
            metric="cosine",
            index="hnsw",
            shards=shards,
        )
        with vf.connect(folder) as db:
            search = db.get_collection(NAME).search
            began = time.process_time()  # over timed()'s warm-up and its timed pass: one set of calls
            _, _, p99 = timed(lambda q, search=search: search(q, k=K, with_payload=False), qs)
            calls = len(qs) + min(20, len(qs))
        got[shards] = (p99, 1000.0 * (time.process_time() - began) / calls)
    (p99_one, mean_one), (p99_two, mean_two) = got[1], got[2]
    return max(0.0, p99_two - p99_one), max(0.0, mean_two - 2 * mean_one)


def calibrate(
    sizes: Sequence[int] = (20_000, 100_000, SEGMENT),
    dims: Sequence[int] = (384,),
    corpora: Sequence[int] = (1_000_000, 4_000_000),
    configurations: Sequence[tuple[str, str, dict[str, Any]]] = tuple(CONFIGURATIONS),
    *,
    sparse: bool = True,
    multi_points: Sequence[int] = (MULTI_POINTS,),
    recall_target: float = 0.95,
    queries: int = 300,
    name: str | None = None,
    progress: bool = True,
    data: np.ndarray | None = None,
    data_corpus: int = 0,
    fanout: bool = True,
) -> Profile:
    """Measure every dense configuration at every size and dimension, and as a segment of the
    largest size (by default the engine's, SEGMENT) drawn from each larger one of `corpora`; BM25 at
    every size (`sparse`), PLAID at `multi_points` documents, and what a query pays for going to
    two shards (`fanout`), on this machine (one FAISS thread). With `data` (a uniform sample of
    your corpus, one row a vector), the dense
    configurations are measured on it instead: its first `queries` rows ask, the rest is the
    collection (`sizes`, `dims` and `corpora` are then its own: a uniform sample of a corpus is what
    a segment of it holds, whatever the corpus's size), and with `data_corpus` (the corpus it was
    drawn from) its recall is weighted as that corpus's recall@10 counts a segment's (`rank_weights`)."""
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
        data=DATA_GENERATOR
        if data is None
        else f"a sample of {len(data):,} of your vectors"
        + (f" (of a corpus of {data_corpus:,})" if data_corpus > len(data) else ""),
    )
    if data is not None:
        data = np.array(data, dtype=np.float32)  # a copy: normalized here, the caller's untouched
        if data.ndim != 2 or len(data) < queries + 1000:
            raise InvalidParameter(
                f"the sample (data, --data) must be a 2-d array of at least {queries + 1000:,} vectors "
                f"({queries} ask, the rest is searched), not shape {data.shape}"
            )
        if 0 < data_corpus < len(data):
            raise InvalidParameter(
                f"the corpus (data_corpus, --corpus) {data_corpus:,} is smaller than the sample "
                f"({len(data):,} vectors): give the corpus the sample was drawn from, or 0"
            )
        data /= np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
        profile.data_corpus = data_corpus
        sparse_sizes, sizes, dims, corpora = tuple(sizes), (len(data) - queries,), (data.shape[1],), ()
    work: list[tuple[int, int, Any, int]] = [
        (n, d, c, 0) for d in dims for n in sizes for c in configurations
    ]
    segment = max(sizes, default=0)
    work += [(segment, d, c, big) for d in dims for big in corpora if big > segment for c in configurations]
    work += [(n, SPARSE_NNZ, "sparse", 0) for n in (sizes if data is None else sparse_sizes) if sparse]
    work += [(n, MULTI_DIM, "multi", 0) for n in multi_points]
    tmp = Path(tempfile.mkdtemp(prefix="vf-calibrate-"))
    try:
        with Progress(disable=not progress, transient=False) as bar:
            task = bar.add_task("calibrating", total=len(work) + int(fanout))
            if fanout:
                bar.update(task, description="fan-out: one shard against two")
                profile.fanout_p99_ms, profile.fanout_core_ms = measure_fanout(tmp / "db", queries=queries)
                bar.advance(task)
            made: tuple[int, int, int] | None = None  # one size's vectors in memory at a time
            for n, dim, config, corpus in work:
                if config in ("sparse", "multi"):
                    bar.update(task, description=f"{config} at {n:,}")
                    if config == "sparse":
                        profile.points.append(_measure_sparse(tmp / "db", n, queries))
                    else:
                        profile.points += _measure_multi(tmp / "db", n, queries, recall_target)
                    bar.advance(task)
                    continue
                index, quantization, params = config
                of = f" of {corpus:,}" if corpus else ""
                bar.update(task, description=f"{index}/{quantization} at {n:,}{of} x {dim}")
                if made != (n, dim, corpus):
                    if data is None:
                        base, qs = clustered(n, dim, queries, corpus=corpus)
                    else:
                        base, qs = data[queries:], data[:queries]
                    truth, made = _exact(base, qs), (n, dim, corpus)
                weights = rank_weights(n, corpus or (data_corpus if data is not None else 0))
                profile.points.append(
                    _measure_one(
                        tmp / "db", index, quantization, params, base, qs, truth, recall_target, corpus,
                        weights,
                    )
                )  # fmt: skip
                bar.advance(task)
    except KeyboardInterrupt:
        pass  # what was measured is kept; the caller saves it
    finally:
        faiss.omp_set_num_threads(threads)
        shutil.rmtree(tmp, ignore_errors=True)
    return profile
