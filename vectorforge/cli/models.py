"""`vectorforge models ...`: the data folder's registered models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vectorforge.cli.common import DEFAULT_DATA, CliError, DataOpt, console

if TYPE_CHECKING:  # imported lazily, so that `vectorforge --help` stays fast
    from vectorforge.models import ModelRegistry

__all__ = ["models_app"]

models_app = typer.Typer(
    help="Registered models: versions with their training record, loaded by NAME@VERSION.",
    no_args_is_help=True,
)


def registry(data: Path) -> ModelRegistry:
    from vectorforge.models import ModelRegistry

    if not (data / "vectorforge.json").is_file():
        raise CliError(f"no data folder at {data}", "models live in a data folder: pass --data")
    return ModelRegistry(data / "models")


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="only this model's versions")] = None,
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Every registered version, oldest first."""
    cards = registry(data).list(name)
    table = Table(title=f"models in {data}")
    for column in ("model", "weights", "base", "dim", "pooling", "trained", "registered"):
        table.add_column(column)
    for card in cards:
        trained = f"{card.training_seconds:.0f} s" if card.training_seconds is not None else "-"
        base = Path(card.base).name if card.base else "-"
        table.add_row(card.ref, card.weights, base, str(card.dim), card.pooling, trained, card.registered_at)
    console.print(table if cards else f"{data} has no registered models")


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="a model, or one version of it")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """A version's card (as JSON) and where its files are."""
    reg = registry(data)
    card = reg.get(ref)
    console.print_json(json.dumps({**card.model_dump(mode="json"), "path": str(reg.model_path(card))}))


@models_app.command("register")
def models_register(
    name: Annotated[str, typer.Argument(help="the model's name")],
    folder: Annotated[Path, typer.Argument(help="a saved sentence-transformers model folder")],
    data: DataOpt = DEFAULT_DATA,
    base: Annotated[str | None, typer.Option(help="the model it was tuned from")] = None,
    description: Annotated[str, typer.Option(help="a note kept with the version")] = "",
) -> None:
    """Copy a model folder in as the next version of NAME (the same weights: the same version)."""
    card = registry(data).register(name, folder, record={"base": base, "description": description})
    console.print(f"model {card.ref} (weights {card.weights}, {card.dim}-d, {card.pooling} pooling)")


@models_app.command("promote")
def models_promote(
    alias: Annotated[str, typer.Option(help="the alias whose collection is re-embedded")],
    model: Annotated[str | None, typer.Option(help="the registered model, NAME@VERSION")] = None,
    data: DataOpt = DEFAULT_DATA,
    goldset: Annotated[
        str | None, typer.Option("--goldset", "-g", help="gate: no regression on this gold set")
    ] = None,
    queries: Annotated[
        Path | None, typer.Option(help="logged queries, one a line: their top-k overlap and RBO are reported")
    ] = None,
    min_overlap: Annotated[float, typer.Option(help="gate: the mean top-k overlap required")] = 0.0,
    min_rbo: Annotated[
        float, typer.Option(help="gate: the mean rank-biased overlap (p 0.9) of the logged queries")
    ] = 0.0,
    batch_size: Annotated[int, typer.Option(help="points re-embedded per page")] = 128,
    abort_it: Annotated[
        bool, typer.Option("--abort", help="give up an unfinished or gated promotion of the alias")
    ] = False,
) -> None:
    """Re-embed the alias's collection with MODEL into a new collection (blue/green), compare the
    two, and switch the alias only if the gates pass; the old collection stays for `rollback`.
    Resumable: run it again after a crash or Ctrl-C. Exit 1 when the gates hold the switch."""
    from vectorforge.cli.common import open_db
    from vectorforge.evaluation.workspace import Workspace
    from vectorforge.finetune.promote import Gates, abort, promote

    if abort_it:
        with open_db(data) as db:
            deleted = abort(db, alias)
        console.print(f"promotion of {alias} aborted" + (f"; {deleted} deleted" if deleted else ""))
        return
    if model is None:
        raise CliError("--model NAME@VERSION is needed (or --abort)")
    gold = Workspace(data).goldset(goldset) if goldset else None
    lines = [q.strip() for q in queries.read_text().splitlines() if q.strip()] if queries else []
    gates = Gates(goldset=gold, queries=lines, min_overlap=min_overlap, min_rbo=min_rbo)
    registry(data)  # a clear error when there is no data folder
    with open_db(data) as db:
        report = promote(db, alias, model, gates=gates, batch_size=batch_size)
    console.print(report.to_markdown())
    if not report.switched:
        raise typer.Exit(1)


@models_app.command("rollback")
def models_rollback(
    alias: Annotated[str, typer.Option(help="the alias to switch back")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Switch the alias back to the collection it had before its last promotion (writes made since
    are copied back first, re-embedded by the old model)."""
    from vectorforge.cli.common import open_db
    from vectorforge.finetune.promote import rollback

    registry(data)
    with open_db(data) as db:
        report = rollback(db, alias)
    console.print(f"alias {alias} -> {report.target} again ({report.copied} points brought up to date)")
