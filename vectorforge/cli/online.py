"""`vectorforge events ...`: online events in the data folder (`evaluation/events.sqlite`), where
the server reads and writes them too: import a JSONL file, show the online metrics, prune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vectorforge.cli.common import DEFAULT_DATA, DataOpt, console

__all__ = ["events_app"]

events_app = typer.Typer(help="Online events: searches, clicks, dwell; their metrics.", no_args_is_help=True)


@events_app.command("import")
def events_import(
    path: Annotated[Path, typer.Argument(help="a JSONL file, one event object a line")],
    data: DataOpt = DEFAULT_DATA,
    keep_text: Annotated[bool, typer.Option(help="keep the queries' text, not only their hash")] = False,
) -> None:
    """Store a JSONL file of events: every line is checked first, and one bad line stores nothing."""
    from vectorforge.evaluation.online.events import read_jsonl
    from vectorforge.evaluation.workspace import Workspace

    stored = Workspace(data).events.add(read_jsonl(path), keep_text=keep_text)
    console.print(
        f"stored {stored['searches']} searches ({stored['duplicates']} already there) "
        f"and {stored['feedback']} feedback events"
    )


@events_app.command("metrics")
def events_metrics(
    data: DataOpt = DEFAULT_DATA,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e")] = None,
    by: Annotated[str, typer.Option(help="segment, arm or experiment")] = "segment",
    k: Annotated[int, typer.Option("-k", help="the cut-off of ctr@k and success@k")] = 10,
    dwell_s: Annotated[float, typer.Option(help="the dwell that makes a click a success")] = 30.0,
) -> None:
    """The online metrics of every stored search, overall and per group."""
    from vectorforge.evaluation.online.online_metrics import online_metrics, outcomes
    from vectorforge.evaluation.workspace import Workspace

    found = outcomes(Workspace(data).events, collection=collection, experiment=experiment, dwell_s=dwell_s)
    groups = online_metrics(found, by=by, k=k)
    names = list(groups["all"])
    table = Table(title="online metrics")
    table.add_column("group")
    for name in names:
        table.add_column(name, justify="right")
    for group, values in groups.items():
        cells = ["-" if values[n] is None else f"{values[n]:.4g}" for n in names]
        table.add_row(group, *cells)
    console.print(table)


@events_app.command("prune")
def events_prune(
    days: Annotated[float, typer.Option(help="delete events older than this many days")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Retention: delete old searches and feedback."""
    from vectorforge.evaluation.workspace import Workspace

    gone = Workspace(data).events.prune(days * 86_400)
    console.print(f"deleted {gone['searches']} searches and {gone['feedback']} feedback events")
