"""`vectorforge collections create|list|info|delete`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vectorforge.cli.common import (
    DEFAULT_DATA,
    CliError,
    DataOpt,
    command_line,
    console,
    data_args,
    err,
    open_collection,
    open_db,
)

__all__ = ["collections_app"]

collections_app = typer.Typer(help="Create, list, inspect and delete collections.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="collection name (1-64 of A-Z a-z 0-9 _ -)")]


@collections_app.command("create")
def create(
    name: NameArg,
    data: DataOpt = DEFAULT_DATA,
    dim: Annotated[int | None, typer.Option(help="vector length (taken from --embedder if left out)")] = None,
    metric: Annotated[str, typer.Option(help="cosine, dot or l2")] = "cosine",
    index: Annotated[str, typer.Option(help="hnsw, flat, ivfflat or ivfpq")] = "hnsw",
    embedder: Annotated[
        str | None,
        typer.Option(help="embed texts with this model (minilm): `points import` of texts, search"),
    ] = None,
    sparse: Annotated[
        list[str] | None,
        typer.Option(help="a BM25 sparse vector of this name, filled from texts (repeatable)"),
    ] = None,
    multi: Annotated[
        list[str] | None,
        typer.Option(
            help="a multi vector (a token matrix per point, scored by MaxSim: ColBERT) of this name "
            "(repeatable); without --dim or --embedder the collection has no dense vector"
        ),
    ] = None,
    multi_encoder: Annotated[
        str | None,
        typer.Option(help="the token encoder (colbert-minilm) that fills the multi vectors from texts"),
    ] = None,
    multi_dim: Annotated[
        int | None,
        typer.Option(help="the multi vectors' token length (taken from --multi-encoder if left out)"),
    ] = None,
    multi_index: Annotated[
        str, typer.Option(help="the multi vectors' index: flat (exact) or plaid")
    ] = "flat",
    shards: Annotated[int, typer.Option(help="split over this many shards")] = 1,
    replicas: Annotated[int, typer.Option(help="copies of each shard")] = 1,
) -> None:
    """Create an empty collection (the data folder is created if missing)."""
    from vectorforge.types import Sparse

    if not multi and (multi_encoder is not None or multi_dim is not None or multi_index != "flat"):
        raise CliError(
            "--multi-encoder, --multi-dim and --multi-index set the multi vectors: name one with --multi",
            "e.g. "
            + command_line(
                "collections", "create", name, "--multi", "tokens", "--multi-dim", 128, *data_args(data)
            ),
        )
    if dim is None and embedder is None and not multi:
        raise CliError(
            "give the vectors' length with --dim N, or --embedder minilm to embed texts",
            f"e.g. {command_line('collections', 'create', name, '--dim', 384, *data_args(data))}",
        )
    with open_db(data, create=True) as db:
        dense: dict[str, Any] = {"dim": dim, "metric": metric, "index": index}
        vectors = _multi_vectors(multi, multi_encoder, multi_dim, multi_index, dense, embedder, name, data)
        col = db.create_collection(
            name,
            **(dense if vectors is None else {}),
            embedder=embedder,
            sparse={s: Sparse() for s in sparse} if sparse else None,
            vectors=vectors,
            shards=shards,
            replicas=replicas,
        )
        stats = col.info()
    extra = [f"embedder {embedder}"] if embedder else []
    extra += [f"sparse {s} (BM25)" for s in sparse or []]
    for m in multi or []:
        spec = stats["vectors"][m]
        encoded = f", encoder {spec['encoder']}" if spec["encoder"] else ""
        extra.append(f"multi {m} (dim {spec['dim']}, {spec['index']}{encoded})")
    primary = [f"dim {stats['dim']}", stats["metric"], stats["index"]] if stats["dim"] is not None else []
    if not primary:
        primary = ["no dense vector"]
    settings = ", ".join([*primary, *extra])
    console.print(f"created collection {name} ({settings}) in {data}")


def _multi_vectors(
    names: list[str] | None,
    encoder: str | None,
    dim: int | None,
    index: str,
    dense: dict[str, Any],
    embedder: str | None,
    collection: str,
    data: Path,
) -> dict[str, Any] | None:
    """The `vectors=` of a collection with multi vectors (None without): each `vf.Multi`, and the
    dense vector ("dense") if --dim or --embedder asks for one."""
    from vectorforge.embed import get_embedder
    from vectorforge.embed.tokens import get_token_encoder
    from vectorforge.types import Dense, Multi

    if not names:
        return None
    if dim is None and encoder is None:
        raise CliError(
            "give the multi vectors' token length with --multi-dim N, or --multi-encoder NAME to fill "
            "them from texts",
            "e.g. "
            + command_line(
                "collections", "create", collection, "--multi", names[0], "--multi-dim", 128, *data_args(data)
            ),
        )
    if encoder is not None:
        import vectorforge.multivector  # noqa: F401  (registers its token encoders: ColBERT)

        width = get_token_encoder(encoder).dim
        if dim is not None and dim != width:
            raise CliError(
                f"--multi-dim {dim} but token encoder {encoder!r} makes {width}-dimensional tokens",
                "leave --multi-dim out to take the encoder's",
            )
        dim = width
    assert dim is not None
    vectors: dict[str, Any] = {n: Multi(dim=dim, index=index, encoder=encoder) for n in names}
    if dense["dim"] is not None or embedder is not None:
        if "dense" in vectors:
            raise CliError("the dense vector is called 'dense' here: give the multi vector another name")
        width = dense["dim"] if dense["dim"] is not None else get_embedder(str(embedder)).info.dim
        vectors["dense"] = Dense(dim=width, metric=dense["metric"], index=dense["index"])
    return vectors


@collections_app.command("list")
def list_(data: DataOpt = DEFAULT_DATA) -> None:
    """List the collections of a data folder with their sizes."""
    with open_db(data) as db:
        names = db.list_collections()
        rows = [_summary(db.get_collection(n).info()) for n in names]
    if not names:
        create = command_line("collections", "create", "NAME", "--dim", "N", *data_args(data))
        err.print(f"{data} has no collections yet; create one with {create}")
        return
    table = Table(title=f"collections in {data}")
    for column in ("name", "points", "dim", "metric", "index", "embedder", "shards"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _summary(stats: dict[str, Any]) -> tuple[str, ...]:
    emb = stats["embedder"]
    return (
        stats["name"],
        str(stats["points"]),
        str(stats["dim"]),
        stats["metric"],
        stats["index"],
        emb["name"] if emb else "-",
        str(stats.get("shards", 1)),
    )


@collections_app.command("info")
def info(
    name: NameArg,
    data: DataOpt = DEFAULT_DATA,
    as_json: Annotated[bool, typer.Option("--json", help="every statistic, as JSON")] = False,
) -> None:
    """Show one collection's settings, size and vectors."""
    with open_db(data) as db:
        stats = open_collection(db, name, data).info()
    if as_json:
        print(json.dumps(stats, indent=2, default=str))
        return
    emb = stats["embedder"]
    vectors = {k or "(dense)": v["kind"] for k, v in stats.get("vectors", {}).items()}
    rows = {
        "points": stats["points"],
        "dim": stats["dim"],
        "metric": stats["metric"],
        "index": stats["index"],
        "vectors": ", ".join(f"{k}: {v}" for k, v in vectors.items()) or "-",
        "embedder": f"{emb['name']} = {emb['model']} ({emb['version']})" if emb else "-",
        "shards": stats.get("shards", 1),
        "replicas": stats.get("replicas", 1),
        "segments": sum(1 for s in stats.get("segments", []) if s["rows"]),
        "wal bytes": stats.get("wal_bytes", "-"),
    }
    table = Table(title=f"collection {name} in {data}", show_header=False)
    table.add_column("setting")
    table.add_column("value")
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)


@collections_app.command("delete")
def delete(
    name: NameArg,
    data: DataOpt = DEFAULT_DATA,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask")] = False,
) -> None:
    """Delete a collection and its files (asks first, unless --yes)."""
    with open_db(data) as db:
        points = open_collection(db, name, data).count()
        if not yes:
            if not sys.stdin.isatty():
                raise CliError(
                    f"not deleting {name!r} ({points} points) without confirmation",
                    "this shell is not interactive: pass --yes to delete it",
                )
            if not typer.confirm(f"delete collection {name!r} and its {points} points?"):
                err.print("nothing deleted")
                raise typer.Exit(code=1)
        db.delete_collection(name)
    console.print(f"deleted collection {name} ({points} points) from {Path(data)}")
