"""The `vectorforge` app: its top-level commands (BEIR import, search, info, count, snapshot, restore,
reshard, serve) and the `collections`, `alias`, `points` and `keys` groups."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vectorforge.cli.aliases import alias_app
from vectorforge.cli.cluster import cluster_app
from vectorforge.cli.collections import collections_app
from vectorforge.cli.common import (
    DEFAULT_DATA,
    INTERRUPTED,
    CliError,
    CollectionOpt,
    DataOpt,
    announce_model_loading,
    command_line,
    console,
    data_args,
    embeds_texts,
    err,
    explain,
    open_collection,
    open_db,
    parse_filter,
    report,
)
from vectorforge.cli.evaluation import eval_app, goldset_app
from vectorforge.cli.finetune import finetune
from vectorforge.cli.keys import keys_app
from vectorforge.cli.models import models_app
from vectorforge.cli.online import events_app
from vectorforge.cli.plan import plan_app
from vectorforge.cli.points import points_app
from vectorforge.cli.synthetic import synthesize
from vectorforge.errors import CollectionAlreadyExists, CollectionNotFound, VectorForgeError

__all__ = ["VectorForgeApp", "app"]


class VectorForgeApp(typer.Typer):
    """A Typer app that turns user errors into one line and an exit code instead of a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except (VectorForgeError, CliError, OSError) as exc:
            report(explain(exc))


app = VectorForgeApp(help="vectorforge: a vector database for production retrieval.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")
app.add_typer(alias_app, name="alias")
app.add_typer(points_app, name="points")
app.add_typer(keys_app, name="keys")
app.add_typer(cluster_app, name="cluster")
app.add_typer(goldset_app, name="goldset")
app.add_typer(eval_app, name="eval")
app.add_typer(models_app, name="models")
app.add_typer(events_app, name="events")
app.add_typer(plan_app, name="plan")
app.command("finetune")(finetune)
app.command("synthesize")(synthesize)


def _version(value: bool) -> None:
    if value:
        console.print(f"vectorforge {importlib.metadata.version('vectorforge')}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """vectorforge: a vector database for production retrieval."""
    announce_model_loading()


@app.command("import")
def import_(
    collection: CollectionOpt,
    beir: Annotated[Path, typer.Option(help="a BEIR folder with corpus.jsonl")],
    data: DataOpt = DEFAULT_DATA,
    index: Annotated[str, typer.Option(help="flat, hnsw or ivfpq")] = "hnsw",
    embedder: Annotated[str, typer.Option(help="registered embedder")] = "minilm",
    batch_size: Annotated[int, typer.Option(help="documents per write")] = 256,
    limit: Annotated[int, typer.Option(help="import only the first N documents (0: all)")] = 0,
) -> None:
    """Embed a BEIR corpus into a collection, created if missing (for other files: `points import`).

    Resumable: a re-run re-uses the embedding cache."""
    from vectorforge.datasets import load_beir

    if not (beir / "corpus.jsonl").is_file():
        other = command_line("points", "import", "FILE", "-c", collection)
        raise CliError(
            f"{beir} is not a BEIR folder (no corpus.jsonl)", f"for a JSONL, CSV or NumPy file: {other}"
        )
    ds = load_beir(beir, split=None)
    with open_db(data, create=True) as db:
        try:
            col = db.get_collection(collection)
        except CollectionNotFound:
            col = db.create_collection(collection, index=index, embedder=embedder)
        doc_ids = list(ds.corpus)[: limit or None]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=err) as progress:
            task = progress.add_task(f"embedding into {collection}", total=len(doc_ids))
            for start in range(0, len(doc_ids), batch_size):
                chunk = doc_ids[start : start + batch_size]
                payloads = [{"title": ds.corpus[d]["title"]} for d in chunk]
                col.add([ds.doc_text(d) for d in chunk], ids=chunk, payloads=payloads, batch_size=64)
                progress.advance(task, len(chunk))
        console.print(f"imported {len(doc_ids)} documents; {collection} holds {col.count()} points")


@app.command()
def search(
    collection: CollectionOpt,
    text: Annotated[str, typer.Argument(help="query text (embedded with the collection's model)")],
    data: DataOpt = DEFAULT_DATA,
    k: Annotated[int, typer.Option("-k", help="results")] = 10,
    filter: Annotated[str | None, typer.Option(help="filter as JSON")] = None,
) -> None:
    """Search a collection by text and show the hits."""
    flt = parse_filter(filter)
    with open_db(data) as db:
        col = open_collection(db, collection, data, create_hint="--embedder minilm")
        if not embeds_texts(col):
            raise CliError(
                f"collection {collection!r} has no embedder to embed the query text",
                "search by text needs a collection made with --embedder, e.g. "
                + command_line("collections", "create", "NAME", "--embedder", "minilm", *data_args(data)),
            )
        hits = col.query(text, k=k, filter=flt)
    table = Table(title=f"{collection}: {text}")
    table.add_column("#", justify="right")
    table.add_column("id")
    table.add_column("score", justify="right")
    table.add_column("payload")
    for rank, hit in enumerate(hits, 1):
        shown = {
            k: (v[:80] + "..." if isinstance(v, str) and len(v) > 80 else v)
            for k, v in (hit.payload or {}).items()
        }
        table.add_row(str(rank), str(hit.id), f"{hit.score:.4f}", json.dumps(shown, ensure_ascii=False))
    console.print(table)


@app.command()
def info(
    data: DataOpt = DEFAULT_DATA,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="one collection")] = None,
) -> None:
    """Show the collections of a data folder and their statistics."""
    with open_db(data) as db:
        cols = [open_collection(db, collection, data)] if collection else None
        names = [collection] if collection else db.list_collections()
        table = Table(title=f"vectorforge data folder {data}")
        for col_name in (
            "collection",
            "points",
            "shards",
            "replicas",
            "dim",
            "metric",
            "index",
            "segments",
            "wal bytes",
            "embedder",
        ):
            table.add_column(col_name)
        for i, name in enumerate(names):
            stats = (cols[i] if cols else db.get_collection(name)).info()
            emb = stats["embedder"]
            table.add_row(
                name,
                str(stats["points"]),
                str(stats.get("shards", 1)),
                str(stats.get("replicas", 1)),
                str(stats["dim"]),
                stats["metric"],
                stats["index"],
                str(sum(1 for s in stats["segments"] if s["rows"])),
                str(stats["wal_bytes"]),
                f"{emb['model']} ({emb['version']})" if emb else "-",
            )
        console.print(table)
        if not names:
            err.print(f"no collections yet; create one with {command_line('collections', 'create', 'NAME')}")


@app.command()
def count(
    collection: CollectionOpt,
    data: DataOpt = DEFAULT_DATA,
    filter: Annotated[
        str | None, typer.Option(help="count only the points matching this JSON filter")
    ] = None,
) -> None:
    """Print the number of points (or of those matching --filter)."""
    flt = parse_filter(filter)
    with open_db(data) as db:
        console.print(open_collection(db, collection, data).count(filter=flt))


@app.command()
def snapshot(
    collection: CollectionOpt,
    path: Annotated[Path, typer.Argument(help="the snapshot file to write")],
    data: DataOpt = DEFAULT_DATA,
    force: Annotated[bool, typer.Option("--force", help="replace an existing file")] = False,
) -> None:
    """Write a whole collection into one file (`vectorforge restore` reads it)."""
    if path.is_dir():
        raise CliError(f"{path} is a folder; give a file path, e.g. {path / (collection + '.tar')}")
    if path.exists() and not force:
        raise CliError(f"{path} exists", "pass --force to replace it, or give another path")
    with open_db(data) as db:
        col = open_collection(db, collection, data)
        written = col.snapshot(path)
        console.print(f"wrote {written} ({col.count()} points of {collection})")


@app.command()
def restore(
    path: Annotated[Path, typer.Argument(help="a file written by `vectorforge snapshot`")],
    data: DataOpt = DEFAULT_DATA,
    name: Annotated[str | None, typer.Option(help="restore under this name (default: its own)")] = None,
) -> None:
    """Bring back a collection from a snapshot file (the data folder is created if missing)."""
    if not path.is_file():
        raise CliError(f"no snapshot file at {path}", "write one with vectorforge snapshot -c NAME PATH")
    with open_db(data, create=True) as db:
        try:
            col = db.restore(path, name=name)
        except CollectionAlreadyExists as exc:
            taken = exc.details.get("name", name)
            raise CliError(
                f"collection {taken!r} already exists in {data}",
                f"restore it under another name with --name NEW, or delete it first "
                f"({command_line('collections', 'delete', taken, *data_args(data))})",
            ) from exc
        console.print(f"restored {col.name} ({col.count()} points) into {data}")


@app.command()
def reshard(
    collection: CollectionOpt,
    shards: Annotated[int, typer.Option(help="the new number of shards")],
    data: DataOpt = DEFAULT_DATA,
    n_probe: Annotated[int | None, typer.Option(help="semantic sharding: shards a query asks")] = None,
    batch_size: Annotated[int, typer.Option(help="points copied per batch")] = 100,
) -> None:
    """Move a sharded collection to another number of shards (Ctrl-C leaves it as it was).

    This opens the data folder itself; to reshard a collection that a server is serving, call
    `reshard` through the server (the HTTP client or POST /collections/{name}/reshard)."""
    with open_db(data) as db:
        col = open_collection(db, collection, data, create_hint="--dim N --shards 2")
        before = col.info().get("shards", 1)
        try:
            col.reshard(shards, n_probe=n_probe, batch_size=batch_size, progress=True)
        except KeyboardInterrupt:
            console.print(f"[yellow]interrupted[/yellow]: {collection} is unchanged ({before} shards)")
            raise typer.Exit(code=INTERRUPTED) from None
        console.print(f"{collection}: {before} -> {shards} shards, {col.count()} points")


@app.command()
def serve(
    data: DataOpt = DEFAULT_DATA,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 6333,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
    max_body_mb: Annotated[int, typer.Option(help="largest request body, MiB")] = 64,
    body_timeout: Annotated[
        float, typer.Option(help="seconds the next part of a request body may take to arrive (408 after)")
    ] = 30.0,
    header_timeout: Annotated[
        float, typer.Option(help="seconds a request's headers may take to arrive (408 after)")
    ] = 10.0,
    max_connections: Annotated[int, typer.Option(help="connections served at once (503 beyond)")] = 1000,
    cluster: Annotated[
        str, typer.Option(help="where replicas run: local, ray, ray://auto or ray://<head host:port>")
    ] = "local",
    eval_schedule: Annotated[
        Path | None, typer.Option(help="a YAML list of evaluations to run on a schedule (docs/evaluation.md)")
    ] = None,
) -> None:
    """Serve a data folder over HTTP (OpenAPI at /docs, metrics at /metrics); created if missing."""
    from vectorforge.cluster.backend import Cluster
    from vectorforge.server.run import serve as run_server

    run_server(
        data,
        host,
        port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        max_body=max_body_mb * 1024 * 1024,
        body_timeout=body_timeout,
        header_timeout=header_timeout,
        max_connections=max_connections,
        cluster=Cluster.from_url(cluster),
        eval_schedule=eval_schedule,
    )
