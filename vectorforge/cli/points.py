"""`vectorforge points import|export`: points from and to files.

An import writes batches, each with an idempotency key made of the file's content hash, the import's
options and the batch number. A re-run of the same command after an interruption (Ctrl-C, a kill, a
crash) therefore skips every batch that landed and writes the rest: cheap, and exact.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vectorforge.api import CollectionAPI
from vectorforge.cli.common import (
    DEFAULT_DATA,
    INTERRUPTED,
    CliError,
    CollectionOpt,
    DataOpt,
    command_line,
    console,
    embeds_texts,
    err,
    explain,
    open_collection,
    open_db,
    parse_filter,
)
from vectorforge.cli.files import Source, open_source
from vectorforge.errors import DimensionMismatch, VectorForgeError

__all__ = ["points_app"]

points_app = typer.Typer(help="Import points from files and export them.", no_args_is_help=True)

ID_COLUMNS = ("id", "_id")
VECTOR_COLUMNS = ("vector", "embedding")
TEXT_COLUMNS = ("text", "document", "content")
_IDS = uuid.UUID("5c1b3f04-8a8e-4d55-9a59-0d5f3b1e6a71")  # namespace of the ids made for id-less rows


class _Plan:
    """Which column is what: the id, the vector or the text, and the payload (the rest)."""

    def __init__(
        self,
        source: Source,
        id_column: str | None,
        vector_column: str | None,
        text_column: str | None,
        payload_columns: list[str] | None,
    ) -> None:
        cols = source.columns
        for option, given in (("--id-column", id_column), ("--vector-column", vector_column)):
            if given is not None and source.format != "jsonl" and given not in cols:
                raise CliError(f"{option} {given!r} is not a column of {source.path.name}", _found(cols))
        if text_column is not None and source.format != "jsonl" and text_column not in cols:
            raise CliError(
                f"--text-column {text_column!r} is not a column of {source.path.name}", _found(cols)
            )
        self.id = id_column or next((c for c in ID_COLUMNS if c in cols), None)
        self.vector = vector_column or (
            None if text_column else next((c for c in VECTOR_COLUMNS if c in cols), None)
        )
        self.text = None if self.vector else text_column or next((c for c in TEXT_COLUMNS if c in cols), None)
        if self.vector is None and self.text is None:
            raise CliError(
                f"{source.path.name} has no vector or text column",
                f"name one with --vector-column or --text-column; {_found(cols)}",
            )
        self.payload = payload_columns
        self.skip = {c for c in (self.id, self.vector, self.text) if c}

    def key_material(self) -> str:
        """What makes two imports of the same file the same import."""
        return json.dumps([self.id, self.vector, self.text, self.payload])

    def payload_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """The payload of a row: the named columns, or every column but id, vector and text (an
        exported "payload" object is merged back, so that export and import round-trip)."""
        if self.payload is not None:
            return {c: row[c] for c in self.payload if row.get(c) is not None}
        out: dict[str, Any] = {}
        for key, value in row.items():
            if key in self.skip or value is None:
                continue
            if key == "payload" and isinstance(value, dict):
                out.update(value)
            else:
                out[key] = value
        return out


def _found(columns: list[str]) -> str:
    return f"columns found: {', '.join(columns) or '(none)'}"


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _StopFlag:
    """Ctrl-C asks the import to stop after the batch in flight; a second Ctrl-C stops it at once."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()


@points_app.command("import")
def import_points(
    file: Annotated[Path, typer.Argument(help="a .jsonl, .csv, .parquet or .npy file")],
    collection: CollectionOpt,
    data: DataOpt = DEFAULT_DATA,
    id_column: Annotated[str | None, typer.Option(help="the ids (default: id or _id; else made)")] = None,
    vector_column: Annotated[
        str | None, typer.Option(help="the vectors, lists of numbers (default: vector or embedding)")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="texts to embed with the collection's embedder (default: text)")
    ] = None,
    payload_columns: Annotated[
        str | None, typer.Option(help="comma-separated payload columns (default: all the others)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="points per write")] = 256,
    no_resume: Annotated[
        bool, typer.Option("--no-resume", help="write every batch, even those an earlier run wrote")
    ] = False,
) -> None:
    """Import points from a file into a collection, in batches; a re-run resumes where it stopped.

    Rows need a vector column (upserted as is) or a text column (embedded by the collection's
    embedder). Without an id column, ids are UUIDs made from the file and the row number (a .npy
    file's ids are its row numbers)."""
    source = open_source(file)
    plan = _Plan(source, id_column, vector_column, text_column, _split(payload_columns))
    with open_db(data) as db:
        col = open_collection(db, collection, data, create_hint=_create_hint(source, plan))
        if plan.text is not None:
            _check_embeds(col, plan.text)
        _run_import(col, source, plan, batch_size, resume=not no_resume)


def _split(columns: str | None) -> list[str] | None:
    return [c.strip() for c in columns.split(",") if c.strip()] if columns is not None else None


def _create_hint(source: Source, plan: _Plan) -> str:
    """The options of the create command that fits this file."""
    if plan.vector is None:
        return "--embedder minilm"
    first = next(source.rows(), {}).get(plan.vector)
    return f"--dim {len(first)}" if first is not None and hasattr(first, "__len__") else "--dim N"


def _check_embeds(col: CollectionAPI, text_column: str) -> None:
    if not embeds_texts(col):
        raise CliError(
            f"column {text_column!r} holds texts, and collection {col.name!r} has no embedder to embed them",
            "import vectors with --vector-column, or create a collection with --embedder minilm",
        )


def _run_import(col: CollectionAPI, source: Source, plan: _Plan, batch_size: int, *, resume: bool) -> None:
    """Write the file's batches, skipping those an earlier run landed; Ctrl-C stops between batches."""
    run_id = hashlib.sha256(f"{source.digest}|{plan.key_material()}|{batch_size}".encode()).hexdigest()[:32]
    # Only an engine collection can tell cheaply whether a key landed; elsewhere the batch is sent
    # again with its key and applies nothing (exact either way).
    recall = getattr(col, "recall", None) if resume else None
    stop = _StopFlag()
    previous = signal.signal(signal.SIGINT, stop)
    written = skipped = rows_done = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(f"importing into {col.name}", total=source.total)
            for number, batch in enumerate(_batches(source.rows(), batch_size)):
                key = f"import:{run_id}:{number}" if resume else None
                if key is not None and recall is not None and recall(key) is not None:
                    skipped += 1
                else:
                    _write(col, source, plan, batch, rows_done, key)
                    written += 1
                rows_done += len(batch)
                progress.advance(task, len(batch))
                _test_hook(number)
                if stop.event.is_set():
                    break
    finally:
        signal.signal(signal.SIGINT, previous)
    done = f"{rows_done} rows in {_batches_word(written + skipped)}"
    skip_note = f" (skipped {_batches_word(skipped)} an earlier run had imported)" if skipped else ""
    if stop.event.is_set() and (source.total is None or rows_done < source.total):
        err.print(
            f"[yellow]interrupted[/yellow] after {done}{skip_note}; they are stored. "
            f"Run the same command again to import the rest:\n  {_resume_command()}",
            soft_wrap=True,
        )
        raise typer.Exit(code=INTERRUPTED)
    console.print(f"imported {done} into {col.name}{skip_note}; {col.name} holds {col.count()} points")


def _batches_word(n: int) -> str:
    return f"{n} batch" if n == 1 else f"{n} batches"


def _resume_command() -> str:
    """This command again, resuming (without --no-resume)."""
    return command_line(*(arg for arg in sys.argv[1:] if arg != "--no-resume"))


def _test_hook(number: int) -> None:
    """Tests slow an import down to interrupt it between batches ($VECTORFORGE_TEST_BATCH_DELAY s)."""
    delay = os.environ.get("VECTORFORGE_TEST_BATCH_DELAY")
    if delay:
        threading.Event().wait(float(delay))


def _write(
    col: CollectionAPI, source: Source, plan: _Plan, batch: list[dict[str, Any]], first: int, key: str | None
) -> None:
    """Write one batch (rows `first`.. of the file); errors name the rows."""
    where = f"{source.path.name} rows {first + 1}-{first + len(batch)}"
    ids: list[Any] = []
    for i, row in enumerate(batch, first):
        if plan.id is None:
            ids.append(str(uuid.uuid5(_IDS, f"{source.digest}:{i}")))
        elif row.get(plan.id) is None:
            raise CliError(f"{source.path.name} row {i + 1} has no {plan.id!r}", "every row needs an id")
        else:
            ids.append(row[plan.id])
    payloads = [plan.payload_of(row) for row in batch]
    try:
        if plan.vector is not None:
            missing = next((i for i, row in enumerate(batch, first) if row.get(plan.vector) is None), None)
            if missing is not None:
                raise CliError(f"{source.path.name} row {missing + 1} has no {plan.vector!r}")
            try:
                vectors = np.asarray([row[plan.vector] for row in batch], dtype=np.float32)
            except (ValueError, TypeError) as exc:
                raise CliError(f"{where}: {plan.vector!r} must hold lists of numbers of one length") from exc
            col.upsert(ids, vectors, payloads, idempotency_key=key)
        else:
            assert plan.text is not None
            texts = [row.get(plan.text) for row in batch]
            bad = next((i for i, t in enumerate(texts, first) if not isinstance(t, str) or not t), None)
            if bad is not None:
                raise CliError(f"{source.path.name} row {bad + 1}: {plan.text!r} is not a non-empty text")
            col.add([str(t) for t in texts], ids=ids, payloads=payloads, idempotency_key=key)
    except DimensionMismatch as exc:
        error = explain(exc)
        raise CliError(f"{where}: {error.message} ({col.name})", error.hint) from exc
    except VectorForgeError as exc:
        raise CliError(f"{where}: {exc.message}", "fix the file and run the command again") from exc


@points_app.command("export")
def export_points(
    collection: CollectionOpt,
    data: DataOpt = DEFAULT_DATA,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="a .jsonl file (default: stdout)")
    ] = None,
    with_vectors: Annotated[bool, typer.Option("--with-vectors", help="write the vectors too")] = False,
    filter: Annotated[str | None, typer.Option(help="only the points matching this JSON filter")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="points per page")] = 1000,
) -> None:
    """Write a collection's points as JSONL ({"id", "payload"[, "vector"]}), in id order; `points
    import` reads the file back."""
    flt = parse_filter(filter)
    with open_db(data) as db:
        col = open_collection(db, collection, data)
        if output is None:
            n = _export(col, sys.stdout, flt, with_vectors, batch_size)
            where = "stdout"
        else:
            tmp = output.with_name(f".{output.name}.part")  # a failed export leaves no half file
            try:
                with open(tmp, "w", encoding="utf-8") as out:
                    n = _export(col, out, flt, with_vectors, batch_size)
                tmp.replace(output)
            finally:
                tmp.unlink(missing_ok=True)
            where = str(output)
    err.print(f"exported {n} points of {collection} to {where}")


def _export(col: CollectionAPI, out: Any, flt: dict[str, Any] | None, with_vectors: bool, page: int) -> int:
    n, cursor = 0, None
    while True:
        got = col.scroll(limit=page, cursor=cursor, filter=flt, with_vectors=with_vectors)
        for record in got.records:
            line: dict[str, Any] = {"id": record.id, "payload": record.payload or {}}
            if with_vectors and record.vector is not None:
                line["vector"] = record.vector
            if with_vectors and record.vectors:
                line["vectors"] = {k: _plain(v) for k, v in record.vectors.items()}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        n += len(got.records)
        cursor = got.next_cursor
        if not cursor:
            return n


def _plain(value: Any) -> Any:
    """A named vector as JSON: a sparse one as {"indices", "values"}, arrays as lists."""
    if hasattr(value, "indices") and hasattr(value, "values"):
        return {"indices": np.asarray(value.indices).tolist(), "values": np.asarray(value.values).tolist()}
    return np.asarray(value).tolist() if isinstance(value, np.ndarray) else value
