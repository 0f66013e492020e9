"""Fine-tuning MiniLM for SciFact with the forgetting guard, through vectorforge's own pipeline
(`vectorforge.finetune.finetune`, what `vectorforge finetune` runs):

1. Examples, by `--source`:
   - `qrels` (supervised): SciFact train qrels (809 claims, 919 pairs); the test split never trains.
   - `offline` (no labels at all): inverse-cloze and title pseudo-queries over SciFact's corpus,
     kept by the round-trip filter (the passage in the top 3 of MiniLM or of BM25), the weaker path.
2. Hard negatives mined through a vectorforge collection of the corpus with the base model,
   positive-aware (below 95% of the positive's score), ranks 3-50, one per example.
3. Training: MultipleNegativesRankingLoss, NO_DUPLICATES batches, sentence-transformers' Trainer.
4. The guard: WiSE-FT alpha 0.3, 0.5, 0.7, 1.0; each model embeds SciFact's and dbpedia's corpora
   into flat collections, judged on SciFact test (the domain) and dbpedia test (general), paired
   against the base on the same queries. Chosen: the best SciFact nDCG@10 whose dbpedia nDCG@10 is at
   most 1 point below the base's and not significantly worse.

Writes bench/results/finetune.json (or finetune_offline.json) and the run's report to docs/reports/.

    python bench/finetune.py [--source qrels|offline] [--epochs 2] [--batch-size 32] [--alphas 0.5,1.0]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import REPO, console, print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.datasets import load_beir
from vectorforge.finetune import (
    GuardSet,
    TrainConfig,
    consistency_filter,
    examples_from_beir,
    finetune,
    offline_queries,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", choices=["qrels", "offline"], default="qrels")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--cached", action="store_true", help="CachedMultipleNegativesRankingLoss")
    ap.add_argument("--max-examples", type=int, default=4000, help="offline: at most this many, sampled")
    ap.add_argument("--alphas", default="0.3,0.5,0.7,1.0", help="the WiSE-FT mixes the guard sweeps")
    args = ap.parse_args()
    shared = shared_path()
    work = Path(tempfile.mkdtemp(prefix="vf-finetune-"))
    started = time.perf_counter()
    domain = GuardSet.from_beir(shared / "data" / "scifact", name="scifact")
    general = [GuardSet.from_beir(shared / "data" / "dbpedia", name="dbpedia")]
    out: dict[str, Any] = {"source": args.source}
    try:
        db = vf.connect(work / "data")
        col = db.create_collection(
            "scifact",
            embedder="minilm",
            vectors={"dense": vf.Dense(dim=384, index="flat"), "bm25": vf.Sparse(analyzer="english")},
        )
        corpus = dict(domain.corpus)
        ids = list(corpus)
        col.add([corpus[d] for d in ids], ids=ids, batch_size=256, progress=True)
        if args.source == "qrels":
            examples, _ = examples_from_beir(shared / "data" / "scifact", "train")
            source: dict[str, Any] = {"source": "BEIR scifact train qrels"}
        else:
            ds = load_beir(shared / "data" / "scifact", split=None)
            titles = {d: ds.corpus[d].get("title", "") for d in ds.corpus}
            made, offline = offline_queries(corpus, titles, method="ictitle", seed=0)
            kept, filtered = consistency_filter(col, made, k=3, progress=True)
            random.Random(0).shuffle(kept)
            examples = kept[: args.max_examples]
            source = {
                "source": "offline pseudo-queries (inverse cloze + titles) over SciFact's corpus",
                "offline": offline.to_json(),
                "filter": filtered.to_json(),
                "weaker": True,
            }
            console.print(f"{len(made)} pseudo-queries, {len(kept)} kept by the filter, {len(examples)} used")
        cfg = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr, cached=args.cached
        )
        result = finetune(
            db,
            f"scifact-{args.source}",
            examples,
            work=work / "run",
            collection=col,
            corpus=corpus,
            config=cfg,
            domain=domain,
            general=general,
            alphas=[float(a) for a in args.alphas.split(",")],
            source=source,
        )
        report = result.report
        out.update(report.to_json())
        out["wall_seconds"] = time.perf_counter() - started
        name = "finetune" if args.source == "qrels" else "finetune-offline"
        (REPO / "docs" / "reports" / f"{name}-scifact.md").write_text(report.to_markdown())
        assert report.guard is not None
        rows = []
        for c in report.guard["candidates"]:
            sci, dbp = c["scores"]["scifact"], c["scores"]["dbpedia"]
            verdict = "" if c["alpha"] is None else ("pass" if c["passes"] else "fail")
            p = c["vs_base"].get("dbpedia", {}).get("p_value")
            rows.append([c["name"], sci["ndcg@10"], sci["recall@100"], dbp["ndcg@10"], p, verdict])
        print_table(
            f"MiniLM fine-tuned for SciFact from {args.source}",
            ["model", "SciFact nDCG@10", "SciFact R@100", "dbpedia nDCG@10", "dbpedia p vs base", "guard"],
            rows,
        )
        console.print(f"chosen: {report.guard['chosen']} ({report.guard['reason']})")
        console.print(f"training {report.training['seconds']:.0f} s, whole run {out['wall_seconds']:.0f} s")
        db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("finetune" if args.source == "qrels" else "finetune_offline", out)


if __name__ == "__main__":
    main()
