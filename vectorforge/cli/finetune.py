"""`vectorforge finetune ...`: tune the embedder of a collection and register the result."""

from __future__ import annotations

from enum import StrEnum
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


class Source(StrEnum):
    qrels = "qrels"
    jsonl = "jsonl"
    goldset = "goldset"


def finetune(
    out: Annotated[str, typer.Option(help="the model's name in the registry: it becomes NAME@VERSION")],
    train_from: Annotated[
        Source, typer.Option("--train", help="qrels (--beir), jsonl (--jsonl) or goldset (--goldset)")
    ],
    data: DataOpt = DEFAULT_DATA,
    collection: Annotated[
        str | None,
        typer.Option("--collection", "-c", help="its model mines the negatives; its texts are the corpus"),
    ] = None,
    beir: Annotated[Path | None, typer.Option(help="--train qrels: a BEIR folder")] = None,
    split: Annotated[str, typer.Option(help="--train qrels: the split (never the one you report)")] = "train",
    jsonl: Annotated[
        Path | None, typer.Option(help='--train jsonl: {"query", "positive", "negatives"} a line')
    ] = None,
    goldset: Annotated[
        str | None, typer.Option(help="--train goldset: a gold set kept for training, NAME[@VERSION]")
    ] = None,
    guard_dev: Annotated[
        str | None,
        typer.Option(help="the forgetting guard's domain gold set (on the collection's corpus)"),
    ] = None,
    guard_general: Annotated[
        list[Path] | None,
        typer.Option(help="a general-domain BEIR folder the guard judges on (its test split); repeatable"),
    ] = None,
    alphas: Annotated[str, typer.Option(help="the WiSE-FT mixes the guard sweeps")] = "0.3,0.5,0.7,1.0",
    base: Annotated[str | None, typer.Option(help="the model folder to start from (default: MiniLM)")] = None,
    epochs: Annotated[float, typer.Option()] = 1.0,
    batch_size: Annotated[int, typer.Option()] = 32,
    learning_rate: Annotated[float, typer.Option()] = 2e-5,
    negatives: Annotated[int, typer.Option(help="hard negatives mined per example (0: none)")] = 1,
    cached: Annotated[bool, typer.Option(help="CachedMultipleNegativesRankingLoss (big batches)")] = False,
    matryoshka: Annotated[
        str | None, typer.Option(help="MatryoshkaLoss over these dimensions, e.g. 384,256,128,64")
    ] = None,
    work: Annotated[
        Path | None, typer.Option(help="checkpoints and the report (default: DATA/finetune/NAME)")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="continue from the last checkpoint in the work folder")
    ] = False,
) -> None:
    """Fine-tune an embedder on judged (or generated) queries with hard negatives mined through the
    collection, guard it against forgetting, and register it as NAME@VERSION. Ctrl-C keeps a
    checkpoint; --resume continues."""
    from vectorforge.evaluation.workspace import Workspace
    from vectorforge.finetune import (
        GuardSet,
        TrainConfig,
        corpus_from_collection,
        examples_from_beir,
        examples_from_goldset,
        examples_from_jsonl,
    )
    from vectorforge.finetune import (
        finetune as run_finetune,
    )

    given = {"qrels": beir, "jsonl": jsonl, "goldset": goldset}
    if given[train_from.value] is None:
        flag = {"qrels": "--beir", "jsonl": "--jsonl", "goldset": "--goldset"}[train_from.value]
        raise CliError(f"--train {train_from.value} needs {flag}", "e.g. --train qrels --beir ./scifact")
    # checked before the data folder is opened (and made): a bad input creates nothing
    if jsonl is not None and not jsonl.is_file():
        raise CliError(f"no such file: {jsonl}", '--jsonl takes a file of {"query", "positive"} lines')
    if beir is not None and not (beir / "corpus.jsonl").is_file():
        raise CliError(f"{beir} is not a BEIR folder (no corpus.jsonl)", "e.g. --beir ../shared/data/scifact")
    for folder in guard_general or []:
        if not (folder / "corpus.jsonl").is_file():
            raise CliError(f"--guard-general {folder} is not a BEIR folder (no corpus.jsonl)")
    try:
        alpha_list = [float(a) for a in alphas.split(",")]
        dims = tuple(int(d) for d in matryoshka.split(",")) if matryoshka else ()
    except ValueError as exc:
        raise CliError(f"--alphas and --matryoshka are comma-separated numbers: {exc}") from exc
    if (negatives or goldset or guard_dev) and collection is None:
        raise CliError("mining negatives, --goldset and --guard-dev need --collection (or --negatives 0)")
    cfg = TrainConfig(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, cached=cached, matryoshka_dims=dims
    )
    cfg.check()
    workspace = Workspace(data)
    with open_db(data, create=True) as db:
        col = open_collection(db, collection, data) if collection else None
        corpus = corpus_from_collection(col) if col is not None else None
        dev = workspace.goldset(guard_dev) if guard_dev else None
        if train_from is Source.qrels:
            assert beir is not None
            examples, beir_corpus = examples_from_beir(beir, split)
            corpus = corpus or beir_corpus
            source = f"BEIR {beir.name} {split}"
        elif train_from is Source.jsonl:
            assert jsonl is not None
            examples, source = examples_from_jsonl(jsonl), str(jsonl)
        else:
            assert goldset is not None and corpus is not None
            train_gold = workspace.goldset(goldset)
            examples = examples_from_goldset(train_gold, corpus, reported=[dev] if dev else [])
            source = f"gold set {goldset}"
        general = [GuardSet.from_beir(folder) for folder in guard_general or []]
        domain = GuardSet(dev.name, corpus, dev) if dev is not None and corpus is not None else None
        if general and domain is None:
            raise CliError("--guard-general needs --guard-dev: the domain the guard weighs it against")
        result = run_finetune(
            db,
            out,
            examples,
            work=work or data / "finetune" / out,
            base=base,
            collection=col if negatives else None,
            corpus=corpus,
            negatives=negatives,
            config=cfg,
            domain=domain,
            general=general,
            alphas=alpha_list,
            source={"source": source},
            resume=resume,
        )
    folder = work or data / "finetune" / out
    if result.interrupted:
        err.print(
            f"[yellow]interrupted[/yellow] at step {result.report.training['steps']}: a checkpoint is in "
            f"{folder}/checkpoints; re-run with --resume to continue"
        )
        raise typer.Exit(INTERRUPTED)
    t = result.report.training
    if result.card is None:
        err.print(f"the guard kept the base model: {result.report.guard and result.report.guard['reason']}")
        err.print(f"nothing registered; the report is in {folder}/report.md")
        raise typer.Exit(1)
    console.print(
        f"model {result.card.ref} (weights {result.card.weights}): {t['steps']} steps in "
        f"{t['seconds']:.0f} s; report: {folder / 'report.md'}"
    )
