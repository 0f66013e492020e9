"""`vectorforge keys ...`: the API keys of a data folder."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from vectorforge.cli.common import DEFAULT_DATA, DataOpt, console

__all__ = ["keys_app"]

keys_app = typer.Typer(help="Manage the API keys of a data folder.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    data: DataOpt = DEFAULT_DATA,
    role: Annotated[
        str | None,
        typer.Option(help="admin, read-write or read-only (default: the first key admin, then read-only)"),
    ] = None,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="limit to these collections or aliases (repeatable)"),
    ] = None,
    no_admin: Annotated[bool, typer.Option("--no-admin", help="allow a store without an admin key")] = False,
) -> None:
    """Create a key; it is printed once and stored only as a hash. The first key turns keys on."""
    from vectorforge.server.auth import KeyStore

    key, entry = KeyStore(data).create(role, collection, allow_no_admin=no_admin)
    console.print(f"key id {entry.id} ({entry.role.value}, collections: {entry.collections or 'all'})")
    print(key)


@keys_app.command("list")
def keys_list(data: DataOpt = DEFAULT_DATA) -> None:
    """List keys (ids, roles, scopes; never the keys)."""
    from vectorforge.server.auth import KeyStore

    table = Table(title="API keys")
    for column in ("id", "role", "collections", "created"):
        table.add_column(column)
    for entry in KeyStore(data).entries():
        table.add_row(entry.id, entry.role.value, ", ".join(entry.collections or ["all"]), entry.created)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id")],
    data: DataOpt = DEFAULT_DATA,
    no_admin: Annotated[bool, typer.Option("--no-admin", help="allow revoking the last admin key")] = False,
) -> None:
    """Revoke a key; a running server refuses it from its next request."""
    from vectorforge.server.auth import KeyStore

    KeyStore(data).revoke(key_id, allow_no_admin=no_admin)
    console.print(f"revoked {key_id}")


@keys_app.command("off")
def keys_off(data: DataOpt = DEFAULT_DATA) -> None:
    """Let a loopback server answer without keys again (only when no key is left)."""
    from vectorforge.server.auth import KeyStore

    KeyStore(data).turn_off()
    console.print(
        "[yellow]API keys are OFF for this data folder: a server on loopback answers anyone as admin[/]"
    )
