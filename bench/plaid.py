"""PLAID against exhaustive MaxSim at 100k passages, on two sets of token matrices.

- `scifact`: real token vectors. SciFact's 5,183 abstracts encoded by the trained ColBERT
  (colbert-minilm, bench/colbert.py trains it) and cut into passages of 40 tokens (20k passages);
  the set is extended to `--passages` with passages put together from 8-token spans of random real
  passages plus Gaussian noise (so their tokens are real ColBERT tokens, their topics mixed). The
  queries are SciFact's test queries through the query encoder (32 tokens with [MASK] padding).
- `synthetic`: documents of 16 to 48 unit tokens (128-d) around random topics (passages / 5 of
  them); a query is 32 tokens around the topics of one document. Hard on purpose: beyond the first,
  the top 10 share one or two topics with the query and differ by noise alone.

Each set runs in this process on the same rows: the `flat` multi index (exhaustive MaxSim, the
baseline and the truth) and the `plaid` index sealed over the same tokens (built once per nbits),
searched at the reference's defaults for k = 10 and along a sweep of search parameters.

Reported per setting: recall@10 of PLAID's top 10 within the exhaustive top 10 (goal >= 0.95); the
share of the exhaustive top 10 among the centroid-only candidates (stages 1-2, ncells 4) at depth
10,000 (goal >= 0.99); latency per query beside exhaustive (goal <= 30 ms at 100k passages; query
encoding is not part of it); bytes per token (goal 36 at 2 bits); build time. Writes
bench/results/plaid.json.

    python bench/plaid.py [--sets scifact synthetic] [--passages 100000] [--nbits 2 4]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from common import print_table, shared_path, write_result
from tqdm.auto import tqdm

from vectorforge.index.maxsim import MultiVectorIndex
from vectorforge.multivector.plaid import (
    PLAIDIndex,
    _candidates,
    _centroid_top,
    centroid_scores,
    parse_search,
)

K = 10
# (label, search params): the reference's defaults for k <= 10, <= 100 and above, then wider
SWEEP: list[tuple[str, dict[str, Any]]] = [
    ("defaults k<=10 (1 / 0.5 / 256)", {}),
    ("ncells 2, ndocs 512", {"ncells": 2, "ndocs": 512}),
    ("defaults k<=100 (2 / 0.45 / 1024)", {"ncells": 2, "centroid_score_threshold": 0.45, "ndocs": 1024}),
    ("ncells 4 / 0.4 / 4096", {"ncells": 4, "centroid_score_threshold": 0.4, "ndocs": 4096}),
]


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def synthetic(n: int, queries: int, dim: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(max(n // 5, 100), dim)))
    docs, doc_topics = [], []
    for _ in tqdm(range(n), desc="documents", leave=False):
        t = rng.integers(0, len(topics), size=int(rng.integers(16, 49)))
        doc_topics.append(t)
        docs.append(unit(topics[t] + 0.08 * rng.normal(size=(len(t), dim))))
    qs = []
    for d in rng.integers(0, n, size=queries):
        t = rng.choice(doc_topics[d], size=32)
        qs.append(unit(topics[t] + 0.08 * rng.normal(size=(32, dim))))
    return docs, qs


def scifact(n: int, queries: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from vectorforge.embed.tokens import get_token_encoder
    from vectorforge.finetune import GuardSet
    from vectorforge.multivector.colbert import COLBERT_MINILM

    domain = GuardSet.from_beir(shared_path() / "data" / "scifact", name="scifact")
    encoder = get_token_encoder(COLBERT_MINILM)
    abstracts = encoder.encode_documents([domain.corpus[d] for d in domain.corpus], progress=True)
    real = [m[i : i + 40] for m in abstracts for i in range(0, len(m), 40) if len(m[i : i + 40]) >= 8]
    rng = np.random.default_rng(seed)
    docs = list(real[:n])
    for _ in tqdm(range(n - len(docs)), desc="noisy passages", leave=False):
        spans = []
        for _ in range(5):
            source = real[int(rng.integers(len(real)))]
            start = int(rng.integers(max(len(source) - 8, 0) + 1))
            spans.append(source[start : start + 8])
        tokens = np.concatenate(spans)
        docs.append(unit(tokens + 0.03 * rng.normal(size=tokens.shape)))
    texts = list(domain.goldset.queries.values())[:queries]
    return docs, encoder.encode_queries(texts)


def run_set(
    name: str, docs: list[np.ndarray], queries: list[np.ndarray], nbits_list: list[int]
) -> dict[str, Any]:
    dim = docs[0].shape[1]
    tokens = sum(len(d) for d in docs)
    flat = MultiVectorIndex(dim)
    flat.add(docs)
    truth, exact_times = [], []
    for q in tqdm(queries, desc=f"{name}: exhaustive MaxSim", leave=False):
        start = time.perf_counter()
        truth.append(set(flat.search(q, K)[1].tolist()))
        exact_times.append(time.perf_counter() - start)
    del flat
    exhaustive_ms = 1000 * float(np.median(exact_times))
    runs, rows = [], []
    for nbits in nbits_list:
        plaid = PLAIDIndex(dim, {"exact_below_tokens": 0, "nbits": nbits})
        plaid.add(docs)
        start = time.perf_counter()
        plaid.seal()
        build = time.perf_counter() - start
        compressed = plaid._compressed
        assert compressed is not None
        candidate_recall = []
        p = parse_search({"ncells": 4}, K)
        for q, want in zip(queries, truth, strict=True):  # stages 1-2 only, to depth 10,000
            cs = centroid_scores(compressed, q)
            by_query = np.ascontiguousarray(cs.T)
            cand = _candidates(compressed, by_query, p.ncells, np.ones(len(docs), bool))
            best = by_query.max(axis=0)
            cand = _centroid_top(compressed, cs, best, cand, 10_000, p.centroid_score_threshold)
            candidate_recall.append(len(set(cand.tolist()) & want) / K)
        ram = compressed.codes.nbytes + compressed.packed.nbytes + compressed.ivf_rows.nbytes
        for label, params in SWEEP:
            recall, times = [], []
            for q, want in tqdm(list(zip(queries, truth, strict=True)), desc=f"{name}: {label}", leave=False):
                start = time.perf_counter()
                got = set(plaid.search(q, K, params=params)[1].tolist())
                times.append(time.perf_counter() - start)
                recall.append(len(got & want) / K)
            run = {
                "nbits": nbits,
                "search": label,
                "params": params,
                "centroids": len(compressed.codec.centroids),
                "build_s": build,
                "recall_at_10": float(np.mean(recall)),
                "candidates_10k_recall": float(np.mean(candidate_recall)),
                "latency_ms_median": 1000 * float(np.median(times)),
                "latency_ms_p95": 1000 * float(np.percentile(times, 95)),
                "exhaustive_ms_median": exhaustive_ms,
                "speedup_vs_exhaustive": exhaustive_ms / (1000 * float(np.median(times))),
                "codec_bytes_per_token": compressed.codec.bytes_per_token,
                "ram_bytes_per_token": ram / tokens,
                "float32_bytes_per_token": 4 * dim,
            }
            runs.append(run)
            rows.append(
                [
                    f"{nbits} bits, {label}",
                    run["centroids"],
                    run["recall_at_10"],
                    run["candidates_10k_recall"],
                    run["latency_ms_median"],
                    run["exhaustive_ms_median"],
                    run["speedup_vs_exhaustive"],
                    run["codec_bytes_per_token"],
                    run["ram_bytes_per_token"],
                    run["build_s"],
                ]
            )
        del plaid, compressed
    print_table(
        f"PLAID vs exhaustive MaxSim, {name}: {len(docs):,} passages, {tokens:,} tokens, "
        f"{len(queries)} queries",
        [
            "plaid",
            "K",
            "recall@10",
            "cand@10k",
            "ms/q",
            "exhaustive ms/q",
            "speed-up",
            "B/tok codec",
            "B/tok RAM",
            "build s",
        ],
        rows,
    )
    return {"passages": len(docs), "tokens": tokens, "dim": dim, "queries": len(queries), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--sets", nargs="+", default=["scifact", "synthetic"], choices=["scifact", "synthetic"]
    )
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nbits", type=int, nargs="+", default=[2, 4])
    args = parser.parse_args()
    sets: dict[str, Any] = {}
    for name in args.sets:
        if name == "scifact":
            docs, queries = scifact(args.passages, args.queries)
            sets[name] = run_set(name, docs, queries, args.nbits)
            sets[name]["kind"] = (
                "SciFact abstracts through colbert-minilm, 40-token passages, extended with passages of "
                "five 8-token spans of random real passages plus N(0, 0.03) noise; SciFact test queries"
            )
        else:
            docs, queries = synthetic(args.passages, args.queries, 128)
            sets[name] = run_set(name, docs, queries, args.nbits[:1])
            sets[name]["kind"] = "clustered synthetic (topics = passages / 5, noise 0.08)"
        del docs, queries
    write_result(
        "plaid",
        {
            "sets": sets,
            "baseline": "flat multi index: exhaustive MaxSim (numpy), same process",
            "goals": {
                "recall_at_10": 0.95,
                "candidates_10k_recall": 0.99,
                "latency_ms_at_100k": 30,
                "codec_bytes_per_token_2bits": 36,
            },
        },
    )


if __name__ == "__main__":
    main()
