"""Stanford's colbert-ai (the reference PLAID) beside our PLAID index, on precomputed token matrices.

colbert-ai normally encodes text with a checkpoint. Here its own indexing pipeline runs unchanged
(`CollectionIndexer.setup / train / index / finalize`: pid sampling, the partition count, FAISS
k-means, the held-out residual buckets, `ResidualCodec.compress`, chunk files, `optimize_ivf`,
plan.json / metadata.json) with one part swapped: the encoder, which returns our token matrices
instead of running BERT. The index directory it writes is the ordinary layout (centroids.pt,
avg_residual.pt, buckets.pt, 0.codes.pt, 0.residuals.pt, doclens.0.json, ivf.pid.pt, ...), and it is
searched by colbert's own `IndexScorer` (CPU path: the filter_pids / decompress_residuals /
segmented_lookup / segmented_maxsim C++ extensions, JIT-compiled by torch) through
`Searcher.dense_search`, which sets the defaults for k = 10 (ncells 1, centroid_score_threshold 0.5,
ndocs 256). Query tensors are precomputed, shape (1, 32, 128).

On `synthetic(passages, queries, 128)` from bench/plaid.py, reported for both: recall@10 within the
exhaustive MaxSim top 10 (the truth, bench/plaid.py's flat multi index), ms/query (median, p95),
build time, bytes per token (codes + residuals). Our PLAIDIndex runs on the same set with the same
build and search parameters (nbits 2, defaults for k = 10). Note one difference in design: ours
scores its final candidates exactly from the full tokens; colbert-ai ranks by decompressed tokens.

colbert-ai is not a dependency of the project. Install it beside the venv, never into it:

    pip install --no-deps --target /tmp/cbt colbert-ai==0.2.22 ujson bitarray gitpython python-dotenv ninja
    PYTHONPATH=/tmp/cbt TORCH_EXTENSIONS_DIR=/tmp/cbt_work/torch_ext \
        python bench/colbert_ai_baseline.py [--passages 10000] [--queries 50]

Without colbert importable it prints why and exits 0. The first run compiles four C++ extensions
(about 45 s each on 2 cores); later runs reuse them from TORCH_EXTENSIONS_DIR.
Writes bench/results/colbert_ai_baseline.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import console, print_table, write_result

K = 10
NBITS = 2
OURS = "vectorforge"
THEIRS = "colbert-ai"


def import_colbert() -> Any:
    # bench/colbert.py (our ColBERT training benchmark) would shadow the package: import colbert-ai
    # with this directory off sys.path; later `from colbert...` imports find it in sys.modules
    here = str(Path(__file__).resolve().parent)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", here) and Path(p or ".").resolve() != Path(here)]
    sys.modules.pop("colbert", None)
    try:
        import colbert
        import colbert.indexing.collection_indexer
        import colbert.search.index_storage
        import colbert.searcher
    except Exception as exc:  # not installed, or broken: this baseline is optional
        print(
            f"colbert-ai cannot be imported ({type(exc).__name__}: {exc}); skipping the colbert-ai baseline. "
            "Install it with `pip install --no-deps --target /tmp/cbt colbert-ai==0.2.22 ujson bitarray "
            "gitpython python-dotenv ninja` and run with PYTHONPATH=/tmp/cbt."
        )
        sys.exit(0)
    finally:
        sys.path[:] = saved
    return colbert


class MatrixEncoder:
    """Stands in for colbert's CollectionEncoder: passages are pids, their embeddings our matrices."""

    def __init__(self, docs: list[np.ndarray]) -> None:
        self.docs = docs

    def encode_passages(self, passages: list[int]) -> tuple[Any, list[int]]:
        import torch

        mats = [self.docs[p] for p in passages]
        if not mats:
            return torch.zeros(0, self.docs[0].shape[1], dtype=torch.float32), []
        # float32 on CPU, as CollectionIndexer.index asserts (it halves them itself)
        return torch.from_numpy(np.concatenate(mats).astype(np.float32)), [len(m) for m in mats]


def build_colbert(docs: list[np.ndarray], index_path: Path, seed: int = 12345) -> dict[str, Any]:
    """colbert-ai's CollectionIndexer with our matrices as the encoder's output."""
    import torch
    from colbert.data.collection import Collection
    from colbert.indexing.collection_indexer import CollectionIndexer
    from colbert.indexing.index_saver import IndexSaver
    from colbert.infra.config import ColBERTConfig

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    config = ColBERTConfig(
        dim=docs[0].shape[1], nbits=NBITS, index_path=str(index_path), doc_maxlen=512, gpus=0
    )
    indexer = CollectionIndexer.__new__(CollectionIndexer)  # its __init__ loads a checkpoint
    indexer.verbose = 1
    indexer.config = config
    indexer.rank, indexer.nranks = config.rank, config.nranks
    indexer.use_gpu = False
    indexer.collection = Collection.cast(list(range(len(docs))))
    indexer.encoder = MatrixEncoder(docs)
    indexer.saver = IndexSaver(config)
    indexer.run(shared_lists=[[[]]])
    return {
        "num_partitions": indexer.num_partitions,
        "num_embeddings": indexer.num_embeddings,
        "num_chunks": indexer.num_chunks,
    }


def open_colbert(index_path: Path) -> Any:
    """A Searcher without a checkpoint: the index's config and colbert's IndexScorer."""
    from colbert.infra.config import ColBERTConfig
    from colbert.modeling.colbert import ColBERT
    from colbert.search.index_storage import IndexScorer
    from colbert.searcher import Searcher

    ColBERT.try_load_torch_extensions(False)  # segmented_maxsim, normally loaded with the model
    searcher = Searcher.__new__(Searcher)  # its __init__ loads a checkpoint to encode text
    searcher.verbose = 1
    searcher.index = str(index_path)
    searcher.config = ColBERTConfig.from_existing(ColBERTConfig.load_from_index(str(index_path)))
    searcher.config.configure(gpus=0)
    searcher.ranker = IndexScorer(str(index_path), use_gpu=False, load_index_with_mmap=False)
    return searcher


def index_bytes(index_path: Path) -> int:
    return sum(
        p.stat().st_size
        for p in index_path.iterdir()
        if p.name.endswith(".codes.pt") or p.name.endswith(".residuals.pt")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--keep-index", default=None, help="directory to keep colbert's index in")
    args = parser.parse_args()
    colbert_pkg = import_colbert()
    console.width = max(console.width, 160)
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from plaid import SWEEP, synthetic

    from vectorforge.index.maxsim import MultiVectorIndex
    from vectorforge.multivector.plaid import PLAIDIndex

    docs, queries = synthetic(args.passages, args.queries, 128)
    dim, tokens = 128, sum(len(d) for d in docs)

    flat = MultiVectorIndex(dim)
    flat.add(docs)
    truth, exact_times = [], []
    for q in queries:
        start = time.perf_counter()
        truth.append(set(flat.search(q, K)[1].tolist()))
        exact_times.append(time.perf_counter() - start)
    del flat
    exhaustive_ms = 1000 * float(np.median(exact_times))

    runs: list[dict[str, Any]] = []

    def measure(name: str, label: str, params: dict[str, Any], search: Any, extra: dict[str, Any]) -> None:
        for q in queries[:3]:  # warm up, untimed
            search(q, params)
        recall, times = [], []
        for q, want in zip(queries, truth, strict=True):
            start = time.perf_counter()
            got = search(q, params)
            times.append(time.perf_counter() - start)
            recall.append(len(set(got) & want) / K)
        runs.append(
            {
                "index": name,
                "search": label,
                "params": params,
                "recall_at_10": float(np.mean(recall)),
                "latency_ms_median": 1000 * float(np.median(times)),
                "latency_ms_p95": 1000 * float(np.percentile(times, 95)),
                "exhaustive_ms_median": exhaustive_ms,
                **extra,
            }
        )

    # ours
    plaid = PLAIDIndex(dim, {"exact_below_tokens": 0, "nbits": NBITS})
    plaid.add(docs)
    start = time.perf_counter()
    plaid.seal()
    build = time.perf_counter() - start
    compressed = plaid._compressed
    assert compressed is not None
    ours = {
        "centroids": len(compressed.codec.centroids),
        "build_s": build,
        "bytes_per_token": (compressed.codes.nbytes + compressed.packed.nbytes) / tokens,
    }
    for label, params in SWEEP:
        measure(OURS, label, params, lambda q, p, index=plaid: index.search(q, K, params=p)[1].tolist(), ours)
    del plaid, compressed  # free them before colbert's build

    # colbert-ai
    index_path = Path(args.keep_index or tempfile.mkdtemp(prefix="colbert_ai_index_"))
    index_path.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        info = build_colbert(docs, index_path)
        build = time.perf_counter() - start
        searcher = open_colbert(index_path)
        emb = searcher.ranker.embeddings  # codes int32 and packed residuals, padded by 512 rows
        theirs = {
            "centroids": info["num_partitions"],
            "build_s": build,
            "bytes_per_token": emb.codes.element_size() + emb.residuals.size(1),  # int32 + uint8 bytes
            "index_file_bytes_per_token": index_bytes(index_path) / tokens,
        }

        def colbert_search(q: np.ndarray, params: dict[str, Any]) -> list[int]:
            Q = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).unsqueeze(0)  # (1, 32, 128)
            pids, _, _ = searcher.dense_search(Q, k=K)
            return [int(p) for p in pids]

        for label, params in SWEEP:
            # unset, then set: dense_search fills what is left unset with its defaults for k = 10
            searcher.configure(ncells=None, centroid_score_threshold=None, ndocs=None)
            searcher.configure(**params)
            measure(THEIRS, label, params, colbert_search, theirs)
            cfg = searcher.config
            runs[-1]["effective"] = {
                "ncells": cfg.ncells,
                "centroid_score_threshold": cfg.centroid_score_threshold,
                "ndocs": cfg.ndocs,
                "nbits": cfg.nbits,
                "kmeans_niters": cfg.kmeans_niters,
            }

        # the ceiling of ranking by colbert's decompressed tokens: exhaustive MaxSim over all of them
        from colbert.indexing.codecs.residual_embeddings import ResidualEmbeddings

        codec = searcher.ranker.codec
        decompressed = codec.decompress(
            ResidualEmbeddings(emb.codes[:tokens].clone(), emb.residuals[:tokens].clone())
        ).numpy()
        offsets = np.cumsum([0] + [len(d) for d in docs])
        ceiling = MultiVectorIndex(dim)
        ceiling.add([decompressed[a:b] for a, b in itertools.pairwise(offsets)])
        measure(
            THEIRS,
            "exhaustive MaxSim over its decompressed tokens (ceiling)",
            {},
            lambda q, p, index=ceiling: index.search(q, K)[1].tolist(),
            theirs,
        )
        del ceiling, decompressed
    finally:
        if args.keep_index is None:
            shutil.rmtree(index_path, ignore_errors=True)

    rows = [
        [
            f"{r['index']}, {r['search']}",
            r["centroids"],
            r["recall_at_10"],
            r["latency_ms_median"],
            r["latency_ms_p95"],
            exhaustive_ms,
            r["bytes_per_token"],
            r["build_s"],
        ]
        for r in runs
    ]
    print_table(
        f"PLAID, ours vs colbert-ai, synthetic: {len(docs):,} passages, {tokens:,} tokens, "
        f"{len(queries)} queries, nbits {NBITS}",
        ["index, search", "K", "recall@10", "ms/q", "p95 ms/q", "exhaustive ms/q", "B/tok", "build s"],
        rows,
    )
    write_result(
        "colbert_ai_baseline",
        {
            "set": {
                "kind": "bench/plaid.py synthetic (topics = passages / 5, noise 0.08)",
                "passages": len(docs),
                "tokens": tokens,
                "dim": dim,
                "queries": len(queries),
            },
            "truth": "flat multi index: exhaustive MaxSim (numpy), same process",
            "exhaustive_ms_median": exhaustive_ms,
            "torch_threads": torch.get_num_threads(),
            "torch_extensions_dir": os.environ.get("TORCH_EXTENSIONS_DIR"),
            "colbert_ai_version": getattr(colbert_pkg, "__version__", None) or _version("colbert-ai"),
            "runs": runs,
            "notes": (
                "colbert-ai's CollectionIndexer runs unchanged except its encoder, which returns the "
                "precomputed matrices; search is Searcher.dense_search over colbert's IndexScorer (CPU "
                "C++ extensions) with a precomputed (1, 32, 128) query. Ours rescores its final "
                "candidates exactly from the full tokens; colbert-ai ranks by decompressed tokens. "
                "bytes_per_token: codes + packed residuals held in RAM (colbert: int32 code + "
                "dim*nbits/8 bytes)."
            ),
        },
    )


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
