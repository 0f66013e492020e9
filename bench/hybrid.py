"""Hybrid retrieval on SciFact and dbpedia through one vectorforge collection with a MiniLM dense
vector and a BM25 sparse vector: each alone and `query(mode="hybrid")` with each fusion (RRF, DBSF,
weighted), nDCG@10 on the test queries. The weighted
fusion's weight is chosen on SciFact's train split only (dbpedia has no train split: it gets
SciFact's weight, the honest test of a tuned weight on another domain). Baselines in the same run:
each retriever alone.

    python bench/hybrid.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytrec_eval
from common import print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.engine.fusion import fuse

DEPTH = 100  # each retriever's list before fusion


def ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([per_query[q]["ndcg_cut_10"] if q in per_query else 0.0 for q in qrels]))


def evaluate(
    folder: Path, tune_on: Path | None, weight: float | None
) -> tuple[dict[str, float], float, dict[float, float], int, int]:
    """The table for one corpus; the weight is tuned on `tune_on`'s train split if given."""
    test = load_beir(folder, split="test")
    ids = list(test.corpus)
    texts = [test.doc_text(i) for i in ids]
    db = vf.connect()
    col = db.create_collection("c", index="flat", embedder="minilm", sparse={"bm25": vf.Sparse()})
    col.add(texts, ids=ids, progress=True)  # embeddings come from the cache after the first run

    def runs(queries: dict[str, str]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        dense, sparse = {}, {}
        for qid, text in queries.items():
            dense[qid] = {str(h.id): h.score for h in col.query(text, k=DEPTH, with_payload=False)}
            sparse[qid] = {
                str(h.id): h.score for h in col.query(text, k=DEPTH, using="bm25", with_payload=False)
            }
        return dense, sparse

    def fused(dense: dict, sparse: dict, method: str, weights: list[float] | None = None) -> dict:
        """What `query(mode="hybrid")` answers, computed from the two lists (to tune the weight)."""
        return {
            qid: {
                str(k): v
                for k, v in list(fuse([dense[qid], sparse[qid]], method, weights=weights).items())[:DEPTH]
            }
            for qid in dense
        }

    def hybrid(queries: dict[str, str], fusion: str, weights: list[float] | None = None) -> dict:
        """Through the collection's own hybrid query, as a user runs it."""
        return {
            qid: {
                str(h.id): h.score
                for h in col.query(
                    text, k=10, mode="hybrid", fusion=fusion, weights=weights, with_payload=False
                )
            }
            for qid, text in queries.items()
        }

    tuned: dict[float, float] = {}
    if tune_on is not None:
        train = load_beir(tune_on, split="train")
        train_dense, train_sparse = runs(train.queries)
        grid = [round(w, 2) for w in np.linspace(0.0, 1.0, 21)]
        tuned = {w: ndcg(train.qrels, fused(train_dense, train_sparse, "weighted", [w, 1 - w])) for w in grid}
        weight = max(tuned, key=lambda w: tuned[w])
    assert weight is not None
    dense, sparse = runs(test.queries)
    table = {
        "dense (MiniLM)": ndcg(test.qrels, dense),
        "BM25": ndcg(test.qrels, sparse),
        "hybrid RRF (k=60)": ndcg(test.qrels, hybrid(test.queries, "rrf")),
        "hybrid DBSF": ndcg(test.qrels, hybrid(test.queries, "dbsf")),
        "hybrid weighted": ndcg(test.qrels, hybrid(test.queries, "weighted", [weight, 1 - weight])),
    }
    # The collection's hybrid query is the fusion of its two lists: the same figure both ways.
    assert abs(table["hybrid RRF (k=60)"] - ndcg(test.qrels, fused(dense, sparse, "rrf"))) < 1e-9
    db.close()
    return table, weight, tuned, len(test.queries), len(ids)


def main() -> None:
    scifact = shared_path() / "data" / "scifact"
    results: dict[str, object] = {}
    weight: float | None = None
    for corpus, folder in (("scifact", scifact), ("dbpedia", shared_path() / "data" / "dbpedia")):
        table, weight, tuned, queries, docs = evaluate(
            folder, scifact if corpus == "scifact" else None, weight
        )
        print_table(
            f"{corpus} test ({queries} queries, {docs:,} docs): nDCG@10, fusion of the top {DEPTH} of each "
            f"(weighted: dense {weight}, tuned on SciFact train)",
            ["retriever", "nDCG@10"],
            [[name, round(value, 4)] for name, value in table.items()],
        )
        results[corpus] = {
            "queries": queries,
            "documents": docs,
            "ndcg@10": {k: round(v, 4) for k, v in table.items()},
            "dense_weight": weight,
            "weight_grid_train_ndcg@10": {str(w): round(v, 4) for w, v in tuned.items()},
        }
    write_result("hybrid", {"depth": DEPTH, **results})


if __name__ == "__main__":
    main()
