"""Train ColBERT on MiniLM from a BEIR folder's train split (default SciFact) and register it as the
next version of `colbert-minilm` (or --name) in the cache folder's model registry, where the
"colbert-minilm" token encoder finds it. `vectorforge finetune` is the single-vector pipeline (its
guard sweeps WiSE-FT mixes of a dense model), so ColBERT has this script instead of a `--kind`.

Hard negatives are mined through a flat MiniLM collection of the corpus (ranks 3-50, below 95% of
the positive's score); the projection starts from PCA of MiniLM's token embeddings. Ctrl-C saves a
checkpoint after the current step; `--resume` continues from it (same --work).

    python bench/train_colbert.py [--beir ../shared/data/scifact] [--work bench/.cache/colbert-train]
        [--epochs 1] [--batch-size 16] [--lr 5e-5] [--projection-lr 1e-3] [--resume]
"""

from __future__ import annotations

import argparse
import random
from dataclasses import replace
from pathlib import Path

from common import REPO, console, shared_path

import vectorforge as vf
from vectorforge.finetune import COLBERT_CONFIG, examples_from_beir, mine_hard_negatives, train_colbert
from vectorforge.multivector.colbert import COLBERT_MINILM, ColBERTEncoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, default=shared_path() / "data" / "scifact")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / ".cache" / "colbert-train")
    ap.add_argument("--name", default=COLBERT_MINILM)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--projection-lr", type=float, default=1e-3)
    ap.add_argument("--pca-docs", type=int, default=512)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    examples, corpus = examples_from_beir(args.beir, "train")
    db = vf.connect()  # in memory: the mining collection is not kept
    col = db.create_collection("mine", embedder="minilm", vectors={"dense": vf.Dense(dim=384, index="flat")})
    ids = list(corpus)
    col.add([corpus[d] for d in ids], ids=ids, batch_size=32, progress=True)
    mined, report = mine_hard_negatives(col, examples, corpus, n=1, progress=True)
    examples = [e for e in mined if e.negatives]
    console.print(
        f"{len(examples)} examples with a mined negative ({report.to_json()['skipped_share']:.0%} skipped)"
    )
    sample = random.Random(0).sample(sorted(corpus), min(args.pca_docs, len(corpus)))
    encoder = ColBERTEncoder.from_base(pca_texts=[corpus[d] for d in sample], seed=12, cache=False)
    cfg = replace(COLBERT_CONFIG, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr)
    result = train_colbert(
        examples,
        args.work,
        cfg,
        encoder=encoder,
        projection_lr=args.projection_lr,
        name=args.name,
        resume=args.resume,
        record={"description": f"ColBERT on MiniLM, {args.beir.name} train ({len(examples)} pairs, mined)"},
    )
    if result.interrupted:
        console.print(f"interrupted at step {result.steps}: --resume --work {args.work} continues")
        raise SystemExit(130)
    assert result.card is not None
    console.print(
        f"{result.card.ref}: {result.steps} steps, {result.seconds:.0f} s; checkpoint {result.encoder_folder}"
    )


if __name__ == "__main__":
    main()
