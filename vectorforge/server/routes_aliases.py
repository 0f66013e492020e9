"""Aliases: list, create, switch, delete (Qdrant's and Milvus's collection aliases).

Explicit actions, so that a client never moves an alias it meant to create: `PUT /aliases/{alias}`
creates one (409 if it exists), `POST /aliases/{alias}/switch` moves an existing one (404 if there
is none), `DELETE /aliases/{alias}` removes it. Every `/collections/{name}/...` route takes an alias
for `name` (`deps.collection`).

Changes are for admin keys; a key limited to some collections must have in its scope the alias and
the collection it is to point at (so a scoped admin cannot point a name it manages at a collection
it may not see). Listing shows a key the aliases whose name or target is in its scope.
"""

from __future__ import annotations

from fastapi import APIRouter

from vectorforge.engine import Database
from vectorforge.server.auth import Action
from vectorforge.server.deps import Who
from vectorforge.server.schemas import AliasBody
from vectorforge.types import check_name

__all__ = ["alias_routes"]


def alias_routes(db: Database) -> APIRouter:
    """The routes, serving `db`."""
    aliases = APIRouter(prefix="/aliases", tags=["aliases"])

    @aliases.get("")
    def list_aliases(who: Who) -> dict[str, dict[str, str]]:
        """Every alias this key may see and the collection it points at."""
        who.require(Action.READ)
        mapping = db.list_aliases()
        return {"aliases": {a: c for a, c in mapping.items() if who.may_see(a) or who.may_see(c)}}

    @aliases.put("/{alias}")
    def create_alias(alias: str, body: AliasBody, who: Who) -> dict[str, str]:
        """Create alias `alias` for collection `body.collection` (409 if the alias exists)."""
        check_name(alias, "alias")
        who.require(Action.MANAGE, alias)
        who.require(Action.MANAGE, check_name(body.collection))
        db.create_alias(alias, body.collection)
        return {"alias": alias, "collection": body.collection}

    @aliases.post("/{alias}/switch")
    def switch_alias(alias: str, body: AliasBody, who: Who) -> dict[str, str]:
        """Point the existing alias `alias` at `body.collection`, in one write (404 if no alias)."""
        check_name(alias, "alias")
        who.require(Action.MANAGE, alias)
        who.require(Action.MANAGE, check_name(body.collection))
        db.switch_alias(alias, body.collection)
        return {"alias": alias, "collection": body.collection}

    @aliases.delete("/{alias}")
    def delete_alias(alias: str, who: Who) -> dict[str, bool]:
        """Remove alias `alias`; its collection stays."""
        check_name(alias, "alias")
        who.require(Action.MANAGE, alias)
        db.delete_alias(alias)
        return {"deleted": True}

    return aliases
