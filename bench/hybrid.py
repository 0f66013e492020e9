"""Hybrid retrieval on SciFact: dense (MiniLM through a vectorforge collection), BM25 (the sparse
index) and their fusions (RRF, DBSF, weighted), nDCG@10 on the test queries. The weighted fusion's
weight is chosen on the train split only. Baselines in the same run: each retriever alone.

    python bench/hybrid.py
"""

from __future__ import annotations

import numpy as np
import pytrec_eval
from common import print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.embed.analyzer import get_analyzer
from vectorforge.engine.fusion import fuse
from vectorforge.index.sparse import SparseIndex

DEPTH = 100  # each retriever's list before fusion


def ndcg(qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]]) -> float:
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return float(np.mean([per_query[q]["ndcg_cut_10"] if q in per_query else 0.0 for q in qrels]))


def main() -> None:
    folder = shared_path() / "data" / "scifact"
    test, train = load_beir(folder, split="test"), load_beir(folder, split="train")
    ids = list(test.corpus)
    texts = [test.doc_text(i) for i in ids]
    db = vf.connect()
    dense_col = db.create_collection("scifact", index="flat", embedder="minilm")
    dense_col.add(texts, ids=ids, progress=True)  # embeddings come from the cache after the first run
    analyzer = get_analyzer("english")
    lexical = SparseIndex()
    lexical.add(analyzer.encode(texts))

    def runs(queries: dict[str, str]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
        dense, sparse = {}, {}
        for qid, text in queries.items():
            dense[qid] = {str(h.id): h.score for h in dense_col.query(text, k=DEPTH, with_payload=False)}
            q = analyzer.counts(text)
            scores, rows = lexical.bm25(q, lexical.stats(q.indices.tolist()), DEPTH)
            sparse[qid] = {ids[r]: float(s) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)}
        return dense, sparse

    def fused(dense: dict, sparse: dict, method: str, weights: list[float] | None = None) -> dict:
        return {
            qid: {
                str(k): v
                for k, v in list(fuse([dense[qid], sparse[qid]], method, weights=weights).items())[:DEPTH]
            }
            for qid in dense
        }

    train_dense, train_sparse = runs(train.queries)
    grid = [round(w, 2) for w in np.linspace(0.0, 1.0, 21)]
    tuned = {w: ndcg(train.qrels, fused(train_dense, train_sparse, "weighted", [w, 1 - w])) for w in grid}
    best = max(tuned, key=lambda w: tuned[w])
    dense, sparse = runs(test.queries)
    table = {
        "dense (MiniLM)": ndcg(test.qrels, dense),
        "BM25": ndcg(test.qrels, sparse),
        "hybrid RRF (k=60)": ndcg(test.qrels, fused(dense, sparse, "rrf")),
        "hybrid DBSF": ndcg(test.qrels, fused(dense, sparse, "dbsf")),
        f"hybrid weighted (dense {best}, tuned on train)": ndcg(
            test.qrels, fused(dense, sparse, "weighted", [best, 1 - best])
        ),
    }
    print_table(
        f"SciFact test ({len(test.queries)} queries, {len(ids):,} docs): nDCG@10, fusion of top {DEPTH} each",
        ["retriever", "nDCG@10"],
        [[name, round(value, 4)] for name, value in table.items()],
    )
    write_result(
        "hybrid",
        {
            "corpus": "scifact",
            "queries": len(test.queries),
            "depth": DEPTH,
            "ndcg@10": {k: round(v, 4) for k, v in table.items()},
            "weight_grid_train_ndcg@10": {str(w): round(v, 4) for w, v in tuned.items()},
            "dense_weight": best,
        },
    )


if __name__ == "__main__":
    main()
