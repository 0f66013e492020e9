"""`vectorforge ...`: import data, search, inspect a data folder, reshard, serve, manage keys."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from vectorforge.connect import connect
from vectorforge.errors import CollectionNotFound, VectorForgeError

app = typer.Typer(help="vectorforge: a vector database for production retrieval.", no_args_is_help=True)
console = Console()

DataOpt = Annotated[Path, typer.Option("--data", help="data folder (created if missing)")]
CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="collection name")]


def _fail(exc: VectorForgeError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    raise typer.Exit(code=2)


@app.command("import")
def import_(
    data: DataOpt,
    collection: CollectionOpt,
    beir: Annotated[Path, typer.Option(help="a BEIR folder with corpus.jsonl")],
    index: Annotated[str, typer.Option(help="flat, hnsw or ivfpq")] = "hnsw",
    embedder: Annotated[str, typer.Option(help="registered embedder")] = "minilm",
    batch_size: Annotated[int, typer.Option(help="documents per write")] = 256,
    limit: Annotated[int, typer.Option(help="import only the first N documents (0: all)")] = 0,
) -> None:
    """Embed a BEIR corpus into a collection (resumable: re-running skips nothing but re-uses the cache)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vectorforge.datasets import load_beir

    try:
        ds = load_beir(beir, split=None)
        with connect(data) as db:
            try:
                col = db.get_collection(collection)
            except CollectionNotFound:
                col = db.create_collection(collection, index=index, embedder=embedder)
            doc_ids = list(ds.corpus)[: limit or None]
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console) as progress:
                task = progress.add_task(f"embedding into {collection}", total=len(doc_ids))
                for start in range(0, len(doc_ids), batch_size):
                    chunk = doc_ids[start : start + batch_size]
                    payloads = [{"title": ds.corpus[d]["title"]} for d in chunk]
                    col.add([ds.doc_text(d) for d in chunk], ids=chunk, payloads=payloads, batch_size=64)
                    progress.advance(task, len(chunk))
            console.print(f"imported {len(doc_ids)} documents; {collection} holds {col.count()} points")
    except VectorForgeError as exc:
        _fail(exc)


@app.command()
def search(
    data: DataOpt,
    collection: CollectionOpt,
    text: Annotated[str, typer.Argument(help="query text (embedded with the collection's model)")],
    k: Annotated[int, typer.Option("-k", help="results")] = 10,
    filter: Annotated[str | None, typer.Option(help="filter as JSON")] = None,
) -> None:
    """Search a collection by text and show the hits."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        flt = json.loads(filter) if filter else None
    except ValueError as exc:
        console.print(f"[red]error:[/red] --filter is not JSON: {exc}")
        raise typer.Exit(code=2) from exc
    try:
        with connect(data) as db:
            hits = db.get_collection(collection).query(text, k=k, filter=flt)
    except VectorForgeError as exc:
        _fail(exc)
        return
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
    data: DataOpt,
    collection: Annotated[str | None, typer.Option("--collection", "-c", help="one collection")] = None,
) -> None:
    """Show the collections of a data folder and their statistics."""
    try:
        with connect(data) as db:
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
            for name in names:
                stats = db.get_collection(name).info()
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
    except VectorForgeError as exc:
        _fail(exc)


@app.command()
def reshard(
    data: DataOpt,
    collection: CollectionOpt,
    shards: Annotated[int, typer.Option(help="the new number of shards")],
    n_probe: Annotated[int | None, typer.Option(help="semantic sharding: shards a query asks")] = None,
    batch_size: Annotated[int, typer.Option(help="points copied per batch")] = 100,
) -> None:
    """Move a sharded collection to another number of shards (Ctrl-C leaves it as it was).

    This opens the data folder itself; to reshard a collection that a server is serving, call
    `reshard` through the server (the HTTP client or POST /collections/{name}/reshard)."""
    try:
        with connect(data) as db:
            col = db.get_collection(collection)
            before = col.info().get("shards", 1)
            try:
                col.reshard(shards, n_probe=n_probe, batch_size=batch_size, progress=True)
            except KeyboardInterrupt:
                console.print(f"[yellow]interrupted[/yellow]: {collection} is unchanged ({before} shards)")
                raise typer.Exit(code=130) from None
            console.print(f"{collection}: {before} -> {shards} shards, {col.count()} points")
    except VectorForgeError as exc:
        _fail(exc)


@app.command()
def serve(
    data: DataOpt,
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
) -> None:
    """Serve a data folder over HTTP (OpenAPI at /docs, metrics at /metrics)."""
    from vectorforge.cluster.backend import Cluster
    from vectorforge.server.run import serve as run_server

    try:
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
        )
    except VectorForgeError as exc:
        _fail(exc)


keys_app = typer.Typer(help="Manage the API keys of a data folder.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    data: DataOpt,
    role: Annotated[str, typer.Option(help="admin, read-write or read-only")] = "read-only",
    collection: Annotated[
        list[str] | None, typer.Option("--collection", "-c", help="limit to (repeatable)")
    ] = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from vectorforge.server.auth import KeyStore

    try:
        key, entry = KeyStore(data).create(role, collection)
    except VectorForgeError as exc:
        _fail(exc)
        return
    console.print(f"key id {entry.id} ({entry.role.value}, collections: {entry.collections or 'all'})")
    print(key)


@keys_app.command("list")
def keys_list(data: DataOpt) -> None:
    """List keys (ids, roles, scopes; never the keys)."""
    from vectorforge.server.auth import KeyStore

    table = Table(title="API keys")
    for column in ("id", "role", "collections", "created"):
        table.add_column(column)
    for entry in KeyStore(data).entries():
        table.add_row(entry.id, entry.role.value, ", ".join(entry.collections or ["all"]), entry.created)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(data: DataOpt, key_id: Annotated[str, typer.Argument(help="the key's id")]) -> None:
    """Revoke a key; a running server refuses it from its next request."""
    from vectorforge.server.auth import KeyStore

    try:
        KeyStore(data).revoke(key_id)
    except VectorForgeError as exc:
        _fail(exc)
    console.print(f"revoked {key_id}")


@keys_app.command("off")
def keys_off(data: DataOpt) -> None:
    """Let a loopback server answer without keys again (only when no key is left)."""
    from vectorforge.server.auth import KeyStore

    try:
        KeyStore(data).turn_off()
    except VectorForgeError as exc:
        _fail(exc)
    console.print(
        "[yellow]API keys are OFF for this data folder: a server on loopback answers anyone as admin[/]"
    )


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m vectorforge.cli`
    main()
