"""BM25: vectorforge's sparse index against bm25s (the baseline: the same tokens and Lucene's
formula) and tantivy (Rust, block-max WAND) in the same run, on two corpora:

- SciFact (5,183 documents, 300 test queries): nDCG@10, single-query QPS and p99, build time;
- a generated Zipfian corpus of 1,000,000 documents (`--docs`) whose lengths follow SciFact's
  (log-normal, fitted to SciFact's analyzed lengths: mean 139 terms) over a 200,000-term vocabulary
  with Zipf exponent 1.07, and 300 queries of 3-12 terms from the same law: QPS, p99, build time
  and resident bytes per posting.

Every system indexes the same terms: SciFact through vectorforge's English analyzer (bm25s gets its
tokens, tantivy the terms joined by spaces under its whitespace tokenizer), the Zipfian corpus as
term ids. Build time counts from terms to a searchable index; memory is what a second build leaves
allocated, traced by tracemalloc (tantivy, in Rust: the size of its index folder, which it
memory-maps).

    python bench/sparse.py                 # both corpora
    python bench/sparse.py --docs 200000   # a smaller generated corpus
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import pytrec_eval
import tantivy
from common import print_table, shared_path, write_result
from tqdm import tqdm

from vectorforge.datasets.beir import load_beir
from vectorforge.embed.analyzer import get_analyzer, term_id
from vectorforge.index.sparse import BM25Params, SparseIndex
from vectorforge.types import SparseVector

K = 10
PARAMS = BM25Params(k1=1.2, b=0.75)


def ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    per_query = evaluator.evaluate(run)
    return float(np.mean([per_query[q]["ndcg_cut_10"] if q in per_query else 0.0 for q in qrels]))


def timed(call: Callable[[Any], Any], queries: Sequence[Any]) -> tuple[float, float, list[Any]]:
    """(QPS, p99 ms, answers) of `call` over `queries`, one at a time; the cyclic garbage collector
    waits meanwhile (as under timeit), so that a full collection of the heap the builds left does
    not land in one system's figures and not another's."""
    times, answers = [], []
    gc.collect()
    gc.disable()
    try:
        for q in queries:
            t = time.perf_counter()
            answers.append(call(q))
            times.append(time.perf_counter() - t)
    finally:
        gc.enable()
    arr = np.asarray(times)
    return len(queries) / arr.sum(), float(np.percentile(arr, 99) * 1000), answers


def traced_bytes(build: Callable[[], Any]) -> int:
    """What `build` leaves allocated (tracemalloc sees Python's and numpy's allocations)."""
    gc.collect()
    tracemalloc.start()
    kept = build()
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return int(held)


class System:
    """One BM25 engine over term lists: build, then search a query's terms."""

    name = ""

    def bytes_used(self, docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str]) -> int:
        """Memory a fresh build holds, measured by a second, traced build (not the timed one)."""

        def build() -> System:
            again = type(self)()
            again.build(docs, ids, vocab)
            return again

        return traced_bytes(build)

    def build(self, docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str]) -> None:
        raise NotImplementedError

    def search(self, query: list[str]) -> list[tuple[int, float]]:
        raise NotImplementedError


class Ours(System):
    name = "vectorforge"

    def build(self, docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str]) -> None:
        table = np.asarray([term_id(t) for t in vocab], dtype=np.int64)
        self.table = {t: int(i) for t, i in zip(vocab, table.tolist(), strict=True)}
        rows = []
        for doc in tqdm(ids if ids is not None else _as_ids(docs, vocab), desc="vectorforge", leave=False):
            terms, counts = np.unique(doc, return_counts=True)
            order = np.argsort(table[terms])
            rows.append(SparseVector(table[terms][order], counts[order].astype(np.float32)))
        self.index = SparseIndex()
        self.index.add(rows)
        self.index.stats([])  # builds the inverted lists
        del rows

    def search(self, query: list[str]) -> list[tuple[int, float]]:
        found = sorted({self.table[t] for t in query if t in self.table})
        counts = [sum(1 for t in query if self.table.get(t) == i) for i in found]
        q = SparseVector(np.asarray(found, dtype=np.int64), np.asarray(counts, dtype=np.float32))
        scores, rows = self.index.bm25(q, self.index.stats(found), K, params=PARAMS)
        return list(zip(rows.tolist(), scores.tolist(), strict=True))


class Bm25s(System):
    name = "bm25s (baseline)"

    def build(self, docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str]) -> None:
        self.vocab = {t: i for i, t in enumerate(vocab)}
        token_ids = (
            [d.tolist() for d in ids] if ids is not None else [[self.vocab[t] for t in d] for d in docs or []]
        )
        self.retriever = bm25s.BM25(k1=PARAMS.k1, b=PARAMS.b, method="lucene")
        self.retriever.index(
            bm25s.tokenization.Tokenized(ids=token_ids, vocab=self.vocab), show_progress=False
        )
        del token_ids

    def search(self, query: list[str]) -> list[tuple[int, float]]:
        known = [t for t in query if t in self.vocab]
        if not known:
            return []
        rows, scores = self.retriever.retrieve([known], k=K, show_progress=False)  # its own lookup
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]


class Tantivy(System):
    name = "tantivy"

    def build(self, docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str]) -> None:
        self.folder = tempfile.TemporaryDirectory(prefix="vf-bench-tantivy-")
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body", stored=False, tokenizer_name="whitespace")
        builder.add_integer_field("row", stored=True)
        schema = builder.build()
        self.index = tantivy.Index(schema, path=self.folder.name)
        writer = self.index.writer(heap_size=1_000_000_000, num_threads=2)
        words = np.asarray(vocab, dtype=object)
        source = ids if ids is not None else docs or []
        for row, doc in enumerate(tqdm(source, desc="tantivy", leave=False)):
            text = " ".join(words[doc]) if ids is not None else " ".join(doc)  # type: ignore[call-overload]
            writer.add_document(tantivy.Document(body=text, row=row))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def bytes_used(self, docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str]) -> int:
        """Its index folder: Rust's memory is not traced, and tantivy memory-maps these files."""
        return sum(p.stat().st_size for p in Path(self.folder.name).iterdir())

    def search(self, query: list[str]) -> list[tuple[int, float]]:
        q = self.index.parse_query(" ".join(query), ["body"])
        hits = self.searcher.search(q, K).hits
        return [(int(self.searcher.doc(address)["row"][0]), float(score)) for score, address in hits]


def _as_ids(docs: list[list[str]] | None, vocab: list[str]) -> list[np.ndarray]:
    where = {t: i for i, t in enumerate(vocab)}
    return [np.asarray([where[t] for t in d], dtype=np.int64) for d in docs or []]


def run_systems(
    docs: list[list[str]] | None, ids: list[np.ndarray] | None, vocab: list[str], queries: list[list[str]]
) -> tuple[dict[str, dict[str, Any]], dict[str, list[list[tuple[int, float]]]]]:
    results: dict[str, dict[str, Any]] = {}
    answers: dict[str, list[list[tuple[int, float]]]] = {}
    postings = sum(len(np.unique(d)) for d in (ids if ids is not None else _as_ids(docs, vocab)))
    for system in (Ours(), Bm25s(), Tantivy()):
        t = time.perf_counter()
        system.build(docs, ids, vocab)
        build = time.perf_counter() - t
        timed(system.search, queries[:20])  # warm up
        qps, p99, found = timed(system.search, queries)
        results[system.name] = {
            "qps": round(qps, 1),
            "p99_ms": round(p99, 2),
            "build_s": round(build, 2),
            "bytes_per_posting": round(system.bytes_used(docs, ids, vocab) / postings, 1),
        }
        answers[system.name] = found
        del system
        gc.collect()
    return results, answers


def scifact() -> dict[str, Any]:
    data = load_beir(shared_path() / "data" / "scifact", split="test")
    doc_ids = list(data.corpus)
    analyzer = get_analyzer("english")
    docs = [analyzer.terms(data.doc_text(i)) for i in doc_ids]
    qids = list(data.queries)
    queries = [analyzer.terms(data.queries[q]) for q in qids]
    vocab = sorted({t for d in docs for t in d})
    results, answers = run_systems(docs, None, vocab, queries)
    for name, found in answers.items():
        run = {q: {doc_ids[r]: s for r, s in hits} for q, hits in zip(qids, found, strict=True)}
        results[name]["ndcg@10"] = round(ndcg(data.qrels, run), 4)
    return {"documents": len(docs), "queries": len(queries), "results": results}


def zipf_corpus(
    n_docs: int, vocabulary: int = 200_000, exponent: float = 1.07, seed: int = 0
) -> tuple[list[np.ndarray], list[str], list[list[str]]]:
    """Documents as term-id arrays (lengths log-normal as SciFact's), the vocabulary, and queries."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocabulary + 1) ** exponent
    cdf = np.cumsum(weights / weights.sum())
    lengths = np.clip(np.round(rng.lognormal(4.86, 0.38, n_docs)), 1, 2000).astype(np.int64)
    flat = np.minimum(np.searchsorted(cdf, rng.random(int(lengths.sum()))), vocabulary - 1).astype(np.int32)
    docs = np.split(flat, np.cumsum(lengths)[:-1])
    vocab = [f"t{i:x}" for i in range(vocabulary)]
    queries = []
    for _ in range(300):
        size = int(rng.integers(3, 13))
        terms = np.minimum(np.searchsorted(cdf, rng.random(size)), vocabulary - 1)
        queries.append([vocab[t] for t in terms])
    return docs, vocab, queries


def zipf(n_docs: int) -> dict[str, Any]:
    docs, vocab, queries = zipf_corpus(n_docs)
    results, answers = run_systems(None, docs, vocab, queries)
    # The two exact engines agree on the top-k ids (ties aside): a check that the run is sound.
    same = np.mean(
        [
            len({r for r, _ in a} & {r for r, _ in b}) / max(len(a), 1)
            for a, b in zip(answers["vectorforge"], answers["bm25s (baseline)"], strict=True)
        ]
    )
    tokens = int(sum(len(d) for d in docs))
    return {
        "documents": n_docs,
        "tokens": tokens,
        "vocabulary": len(vocab),
        "queries": len(queries),
        "top10_overlap_with_bm25s": round(float(same), 4),
        "results": results,
    }


def table(title: str, results: dict[str, dict[str, Any]], quality: bool) -> None:
    heads = ["system", *(["nDCG@10"] if quality else []), "QPS", "p99 ms", "build s", "bytes/posting"]
    rows = [
        [
            name,
            *([r["ndcg@10"]] if quality else []),
            r["qps"],
            r["p99_ms"],
            r["build_s"],
            r["bytes_per_posting"],
        ]
        for name, r in results.items()
    ]
    print_table(title, heads, rows)
    base = results["bm25s (baseline)"]["qps"]
    print(
        f"QPS ratio vectorforge / bm25s: {results['vectorforge']['qps'] / base:.2f}; "
        f"vectorforge / tantivy: {results['vectorforge']['qps'] / results['tantivy']['qps']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=1_000_000, help="documents of the Zipfian corpus")
    parser.add_argument("--skip-zipf", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"k": K, "k1": PARAMS.k1, "b": PARAMS.b}
    out["scifact"] = scifact()
    table(
        f"BM25 on SciFact ({out['scifact']['documents']:,} docs, {out['scifact']['queries']} test queries)",
        out["scifact"]["results"],
        quality=True,
    )
    if not args.skip_zipf:
        out["zipf"] = zipf(args.docs)
        z = out["zipf"]
        table(
            f"BM25 on a Zipfian corpus ({z['documents']:,} docs, {z['tokens']:,} terms, "
            f"{z['queries']} queries; top-10 overlap with bm25s {z['top10_overlap_with_bm25s']})",
            z["results"],
            quality=False,
        )
    for corpus in ("scifact", "zipf"):
        if corpus in out:
            r = out[corpus]["results"]
            out[corpus]["qps_ratio_bm25s"] = round(r["vectorforge"]["qps"] / r["bm25s (baseline)"]["qps"], 3)
            out[corpus]["qps_ratio_tantivy"] = round(r["vectorforge"]["qps"] / r["tantivy"]["qps"], 3)
    write_result("sparse", out)


if __name__ == "__main__":
    main()
