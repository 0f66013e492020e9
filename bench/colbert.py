"""ColBERT on the bundled MiniLM, trained on SciFact train, beside single-vector MiniLM on SciFact test:

1. single-vector MiniLM: a flat dense collection (also the one hard negatives are mined through);
2. ColBERT, untrained: MiniLM's token embeddings through a projection initialised by PCA (128 axes
   of the token embeddings of 512 corpus documents), [Q]/[D] markers, queries [MASK]-padded to 32;
3. ColBERT, trained: (2) after `train_colbert` over SciFact train's 919 pairs, a mined hard
   negative each (ranks 3-50 of MiniLM, below 95% of the positive's score), MaxSim cross-entropy over
   the positive, the negative and the batch's other documents (temperature 1).

Every ColBERT row is a collection with `vf.Multi(dim=128, encoder=...)` searched by exact MaxSim
(the `flat` multi index) through `query(text, using="colbert")`, scored by vectorforge.evaluation.
The trained model is registered as `colbert-minilm` in the cache folder's model registry
(~/.cache/vectorforge/models, or $VECTORFORGE_CACHE/models) and reused when it is there; `--retrain`
trains a new version. Writes bench/results/colbert.json.

    python bench/colbert.py [--retrain] [--epochs 1] [--batch-size 16] [--lr 5e-5] [--projection-lr 1e-3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from common import console, print_table, shared_path, write_result

import vectorforge as vf
from vectorforge.embed.tokens import register_token_encoder
from vectorforge.evaluation.evaluator import evaluate_collection
from vectorforge.evaluation.runs import SearchConfig
from vectorforge.finetune import (
    COLBERT_CONFIG,
    GuardSet,
    examples_from_beir,
    mine_hard_negatives,
    train_colbert,
)
from vectorforge.multivector.colbert import COLBERT_MINILM, ColBERTEncoder, colbert_registry

METRICS = ("ndcg@10", "recall@100", "mrr@10")


def evaluate(db: Any, name: str, vectors: dict[str, Any], domain: GuardSet, **create: Any) -> dict[str, Any]:
    """Make a flat collection, add the corpus (timed), evaluate SciFact test on it."""
    col = db.create_collection(name, vectors=vectors, **create)
    ids = list(domain.corpus)
    start = time.perf_counter()
    col.add([domain.corpus[d] for d in ids], ids=ids, batch_size=32, progress=True)
    seconds = time.perf_counter() - start
    using = next((n for n, v in vectors.items() if isinstance(v, vf.Multi)), None)
    run = evaluate_collection(col, domain.goldset, METRICS, SearchConfig(k=100, using=using), progress=True)
    scores = {m: run.segments["all"][m].mean for m in METRICS}
    console.print(f"{name}: nDCG@10 {scores['ndcg@10']:.4f} ({len(ids) / seconds:.1f} docs/s)")
    return {
        "scores": scores,
        "add_seconds": seconds,
        "docs_per_second": len(ids) / seconds,
        "collection": col,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--retrain", action="store_true", help="train a new version even if one is registered")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--projection-lr", type=float, default=1e-3)
    ap.add_argument("--pca-docs", type=int, default=512)
    args = ap.parse_args()
    shared = shared_path()
    scifact = shared / "data" / "scifact"
    work = Path(tempfile.mkdtemp(prefix="vf-colbert-"))
    started = time.perf_counter()
    domain = GuardSet.from_beir(scifact, name="scifact")
    corpus = dict(domain.corpus)
    rows: list[list[Any]] = []
    out: dict[str, Any] = {"dataset": "scifact test (300 queries)", "models": {}}
    try:
        db = vf.connect(work / "data")
        dense = evaluate(db, "minilm", {"dense": vf.Dense(dim=384, index="flat")}, domain, embedder="minilm")
        out["models"]["minilm (single vector)"] = {k: v for k, v in dense.items() if k != "collection"}

        # the untrained ColBERT: PCA of MiniLM's token embeddings of a sample of the corpus
        sample = random.Random(0).sample(sorted(corpus), args.pca_docs)
        start = time.perf_counter()
        pca = ColBERTEncoder.from_base(
            pca_texts=[corpus[d] for d in sample], seed=12, name="colbert-minilm-pca"
        )
        pca_seconds = time.perf_counter() - start
        register_token_encoder("colbert-minilm-pca", lambda: pca)
        multi = {"colbert": vf.Multi(dim=128, index="flat", encoder="colbert-minilm-pca")}
        untrained = evaluate(db, "colbert_pca", multi, domain)
        out["models"]["colbert-minilm, PCA init (untrained)"] = {
            **{k: v for k, v in untrained.items() if k != "collection"},
            "pca_seconds": pca_seconds,
        }
        db.delete_collection("colbert_pca")

        registry = colbert_registry()
        cards = registry.list(COLBERT_MINILM)
        if args.retrain or not cards:
            examples, _ = examples_from_beir(scifact, "train")
            mined, report = mine_hard_negatives(dense["collection"], examples, corpus, n=1, progress=True)
            examples = [e for e in mined if e.negatives]
            cfg = replace(
                COLBERT_CONFIG, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr
            )
            result = train_colbert(
                examples,
                work / "train",
                cfg,
                encoder=pca,
                projection_lr=args.projection_lr,
                record={"description": f"ColBERT on MiniLM, SciFact train ({len(examples)} pairs, mined)"},
            )
            if result.interrupted or result.card is None:
                raise SystemExit(
                    "training interrupted: nothing registered (resume with train_colbert(resume=True))"
                )
            card = result.card
            training = {**result.to_json(), "mining": report.to_json(), "examples": len(examples)}
        else:
            card = cards[-1]
            training = {"card": card.model_dump(mode="json"), "reused": True}
            console.print(f"reusing {card.ref} (--retrain trains a new version)")
        out["training"] = training
        out["trained_model"] = {"ref": card.ref, "path": str(registry.model_path(card))}
        multi = {"colbert": vf.Multi(dim=128, index="flat", encoder=COLBERT_MINILM)}
        trained = evaluate(db, "colbert_trained", multi, domain)
        out["models"][f"colbert-minilm, trained ({card.ref})"] = {
            k: v for k, v in trained.items() if k != "collection"
        }
        seconds = card.training_seconds or 0.0
        steps = training.get("steps") or card.params.get("steps")
        for label, m in out["models"].items():
            s = m["scores"]
            rows.append([label, s["ndcg@10"], s["recall@100"], s["mrr@10"], m["docs_per_second"]])
        print_table(
            "SciFact test, exact MaxSim (flat) vs single-vector MiniLM",
            ["model", "nDCG@10", "R@100", "MRR@10", "docs/s (add)"],
            rows,
        )
        console.print(f"training: {seconds:.0f} s, {steps} steps; model {out['trained_model']['path']}")
        out["wall_seconds"] = time.perf_counter() - started
        db.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result("colbert", out)


if __name__ == "__main__":
    main()
