"""What every command shares: the consoles, the --data option, opening a data folder without creating
it, finding a collection (or saying which ones exist), and turning errors into one CLI line."""

from __future__ import annotations

import difflib
import json
import logging
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from vectorforge.api import CollectionAPI, DatabaseAPI
from vectorforge.errors import (
    AccessError,
    CollectionAlreadyExists,
    CollectionNotFound,
    ConflictError,
    DimensionMismatch,
    InvalidInputError,
    NotFoundError,
    UsageError,
    VectorForgeError,
)

__all__ = [
    "DEFAULT_DATA",
    "CliError",
    "CollectionOpt",
    "DataOpt",
    "announce_model_loading",
    "command_line",
    "console",
    "embeds_texts",
    "err",
    "explain",
    "open_collection",
    "open_db",
    "parse_filter",
]

console = Console()  # results: tables, counts, exported points
err = Console(stderr=True)  # errors, hints, progress: stdout stays clean for scripts

DEFAULT_DATA = Path("vf-data")
DataOpt = Annotated[
    Path,
    typer.Option("--data", "-d", envvar="VECTORFORGE_DATA", help="data folder ($VECTORFORGE_DATA)"),
]
CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="collection name")]

USAGE, FAILURE, INTERRUPTED = 2, 1, 130


class CliError(Exception):
    """A user-facing failure: one line, an optional hint, an exit code (2: usage, 1: failure)."""

    def __init__(self, message: str, hint: str | None = None, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def command_line(*args: object) -> str:
    """`vectorforge ARGS`, quoted for a shell: what a hint tells the user to run."""
    return shlex.join(["vectorforge", *map(str, args)])


def data_args(data: Path) -> list[str | Path]:
    """The --data part of a suggested command (left out for the default folder)."""
    return [] if data == DEFAULT_DATA else ["--data", data]


def explain(exc: BaseException) -> CliError:
    """The CLI's words for an exception from the library or the file system."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, CollectionAlreadyExists) and "alias_of" not in exc.details:
        name = exc.details.get("name", "?")
        return CliError(
            f"collection {name!r} already exists",
            f"delete it first ({command_line('collections', 'delete', name)}) or choose another name",
        )
    if isinstance(exc, DimensionMismatch):
        create = command_line("collections", "create", "NAME", "--dim", exc.got)
        return CliError(
            f"the vectors have {exc.got} numbers but the collection expects {exc.expected}",
            f"create a collection for them: {create}",
        )
    if isinstance(exc, VectorForgeError):
        usage = (InvalidInputError, NotFoundError, ConflictError, AccessError, UsageError)
        return CliError(exc.message, code=USAGE if isinstance(exc, usage) else FAILURE)
    if isinstance(exc, FileNotFoundError):
        return CliError(f"no such file: {exc.filename}")
    if isinstance(exc, IsADirectoryError):
        return CliError(f"{exc.filename} is a folder; give a file")
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{exc.strerror or exc}", code=FAILURE)
    raise exc  # a bug: let the traceback show


def report(error: CliError) -> NoReturn:
    """Print `error` as one red line (and its hint) and exit with its code."""
    err.print(f"[red]error:[/red] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        err.print(f"[dim]hint:[/dim] {escape(error.hint)}", soft_wrap=True)
    sys.exit(error.code)


def _require_data_folder(data: Path) -> None:
    """Refuse a folder that is not a data folder, so that read commands never create one."""
    if (data / "vectorforge.json").is_file():
        return
    create = command_line("collections", "create", "NAME", "--dim", "N", *data_args(data))
    if data.exists():
        raise CliError(f"{data} is not a vectorforge data folder (it has no vectorforge.json)", create)
    hint = f"create one with {create}"
    parent = data.parent if str(data.parent) else Path(".")
    if parent.is_dir():
        nearby = [p.name for p in parent.iterdir() if (p / "vectorforge.json").is_file()]
        close = difflib.get_close_matches(data.name, nearby, n=1)
        if close:
            hint = f"did you mean --data {parent / close[0]}? Or {hint}"
    raise CliError(f"no data folder at {data}", hint)


@contextmanager
def open_db(data: Path, *, create: bool = False) -> Iterator[DatabaseAPI]:
    """Open the data folder `data`; unless `create`, it must exist already (read commands)."""
    from vectorforge.connect import connect

    if not create:
        _require_data_folder(data)
    with connect(data) as db:
        yield db


def open_collection(
    db: DatabaseAPI, name: str, data: Path, *, create_hint: str | None = None
) -> CollectionAPI:
    """The collection `name`, or an error that lists the existing ones, suggests the nearest name and
    says how to create it (`create_hint`: the options the create command should show)."""
    try:
        return db.get_collection(name)
    except CollectionNotFound:
        pass
    names = db.list_collections()
    create = command_line(
        "collections", "create", name, *(create_hint or "--dim N").split(), *data_args(data)
    )
    lines = [f"collections in {data}: {', '.join(names)}" if names else f"{data} has no collections yet"]
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        lines.append(f"did you mean {close[0]!r}?")
    lines.append(f"create it with {create}")
    raise CliError(f"collection {name!r} does not exist", "\n  ".join(lines))


def embeds_texts(col: CollectionAPI) -> bool:
    """Whether the collection turns texts into vectors: an embedder, or a sparse vector with an analyzer."""
    stats = col.info()
    analyzed = any(v.get("kind") == "sparse" and v.get("analyzer") for v in stats.get("vectors", {}).values())
    return stats.get("embedder") is not None or analyzed


def parse_filter(text: str | None) -> dict[str, Any] | None:
    """--filter as JSON, or a usage error saying what a filter looks like."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(
            f"--filter is not JSON: {exc}",
            """e.g. --filter '{"must": [{"key": "lang", "match": "en"}]}'""",
        ) from exc
    if not isinstance(value, dict):
        raise CliError("--filter must be a JSON object", """e.g. --filter '{"must": [...]}'""")
    return value


class _ModelLine(logging.Handler):
    """Prints the embedder's "loading model" record as the one line a command shows for it."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[dim]{escape(record.getMessage())} ...[/dim]", highlight=False)


def announce_model_loading() -> None:
    """Show one line when a model loads (transformers' own bars and warnings are off: cli/__init__)."""
    logger = logging.getLogger("vectorforge.embed")
    if not any(isinstance(h, _ModelLine) for h in logger.handlers):
        logger.addHandler(_ModelLine())
        logger.setLevel(logging.INFO)
