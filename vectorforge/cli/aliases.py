"""`vectorforge alias create|switch|delete|list`: collection aliases, in a data folder or on a server.

A running server holds its data folder, so `--server URL` (with `--api-key`, an admin key for changes)
changes the aliases it serves; without it the commands open `--data` themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table

from vectorforge.api import DatabaseAPI
from vectorforge.cli.common import DEFAULT_DATA, DataOpt, command_line, console, data_args, err, open_db

__all__ = ["alias_app"]

alias_app = typer.Typer(
    help="Create, switch, delete and list collection aliases (another name for a collection).",
    no_args_is_help=True,
)

AliasArg = Annotated[str, typer.Argument(help="alias name (1-64 of A-Z a-z 0-9 _ -)")]
TargetArg = Annotated[str, typer.Argument(help="the collection it points at")]
ServerOpt = Annotated[
    str | None, typer.Option(help="change the aliases of this running server (http://...) instead of --data")
]
ApiKeyOpt = Annotated[str | None, typer.Option(envvar="VECTORFORGE_API_KEY", help="for --server")]


@contextmanager
def _database(data: DataOpt, server: str | None, api_key: str | None) -> Iterator[DatabaseAPI]:
    if server is None:
        with open_db(data) as db:
            yield db
        return
    from vectorforge.connect import connect

    with connect(server, api_key=api_key) as remote:
        yield remote


def _where(data: DataOpt, server: str | None) -> str:
    return server or str(data)


@alias_app.command("create")
def create(
    alias: AliasArg,
    collection: TargetArg,
    data: DataOpt = DEFAULT_DATA,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Create an alias for a collection (refused if the alias exists: use `alias switch`)."""
    with _database(data, server, api_key) as db:
        db.create_alias(alias, collection)
    console.print(f"alias {alias} -> {collection} in {_where(data, server)}")


@alias_app.command("switch")
def switch(
    alias: AliasArg,
    collection: TargetArg,
    data: DataOpt = DEFAULT_DATA,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Point an existing alias at another collection, in one atomic write."""
    with _database(data, server, api_key) as db:
        before = db.list_aliases().get(alias)
        db.switch_alias(alias, collection)
    console.print(f"alias {alias} -> {collection} (was {before}) in {_where(data, server)}")


@alias_app.command("delete")
def delete(
    alias: AliasArg,
    data: DataOpt = DEFAULT_DATA,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Delete an alias; its collection stays."""
    with _database(data, server, api_key) as db:
        db.delete_alias(alias)
    console.print(f"deleted alias {alias} from {_where(data, server)}")


@alias_app.command("list")
def list_(
    data: DataOpt = DEFAULT_DATA,
    server: ServerOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """List aliases and the collections they point at."""
    with _database(data, server, api_key) as db:
        aliases = db.list_aliases()
    if not aliases:
        where = ["--server", server] if server else data_args(data)
        err.print(
            f"{_where(data, server)} has no aliases; create one with "
            f"{command_line('alias', 'create', 'ALIAS', 'COLLECTION', *where)}"
        )
        return
    table = Table(title=f"aliases in {_where(data, server)}")
    table.add_column("alias")
    table.add_column("collection")
    for alias, collection in aliases.items():
        table.add_row(alias, collection)
    console.print(table)
