"""What every route depends on: the server's settings, who is asking (API keys), the idempotency
key of a write, and the collection a route names (checked against the caller's scope)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Header, Request

from vectorforge.engine import Collection, Database
from vectorforge.evaluation.schedule import ScheduledEvaluation
from vectorforge.server.auth import OPEN_ACCESS, Action, KeyStore, Principal
from vectorforge.types import check_name

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "Key",
    "SegmentHeader",
    "SessionHeader",
    "UserHeader",
    "ServerSettings",
    "Who",
    "collection",
    "principal",
    "scope_name",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0  # seconds the next part of a request body may take to arrive


class ServerSettings:
    """What `create_app` needs: the database, the keys, and whether keys are required."""

    def __init__(
        self,
        db: Database,
        keys: KeyStore | None,
        *,
        require_keys: bool,
        max_body: int = DEFAULT_MAX_BODY,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        eval_schedule: list[ScheduledEvaluation] | None = None,
    ) -> None:
        self.db = db
        self.eval_schedule = eval_schedule or []
        self.keys = keys
        self.require_keys = require_keys
        self.keys_were_required = require_keys or (keys is not None and keys.required)
        self.max_body = max_body
        self.body_timeout = body_timeout


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("api-key")


async def principal(request: Request) -> Principal:
    """Who sends this request (the FastAPI dependency behind every route).

    `async` although it does not await: FastAPI runs a plain `def` dependency in its thread pool, a
    hop that costs more than the check itself.
    """
    settings: ServerSettings = request.app.state.settings
    # Keys are off only while none has ever existed: the first `keys create` turns them on in a
    # running server, and revoking the last one leaves them on (`vectorforge keys off` turns them off).
    if settings.keys is None:
        return OPEN_ACCESS
    required = settings.require_keys or settings.keys.required
    if required != settings.keys_were_required:  # a key created or `keys off` while the server runs
        settings.keys_were_required = required
        if required:
            logger.warning(
                "API keys are now required (%s appeared): a request without a valid key gets 401",
                settings.keys.path,
            )
        else:
            logger.warning("API keys are OFF again (`vectorforge keys off`): loopback requests need no key")
    if not required:
        return OPEN_ACCESS
    return settings.keys.authenticate(_bearer(request))


Who = Annotated[Principal, Depends(principal)]
# A client's key for one write, reused on its retries: a repeated key applies nothing again and
# answers with the first result (the IETF Idempotency-Key header).
Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
# Who searches, for the search log and experiments' assignment (online evaluation).
UserHeader = Annotated[str | None, Header(alias="X-User-Id", max_length=256)]
SessionHeader = Annotated[str | None, Header(alias="X-Session-Id", max_length=256)]
SegmentHeader = Annotated[str | None, Header(alias="X-Segment", max_length=256)]


def scope_name(db: Database, name: str, who: Principal) -> str:
    """The name to hold against `who`'s collections for a request naming `name`: `name` itself,
    or, for an alias outside the scope, the collection it points at.

    A key scoped to an alias follows it across switches (the blue/green case: the application's key
    names "docs", and only an admin, who could issue any key anyway, moves "docs"); a key scoped to
    a collection reaches it by any alias too, as it could by its own name. An alias whose target is
    outside the scope gets the same 403 as a name that does not exist: a scoped key learns nothing.
    """
    if who.may_see(name):
        return name
    target = db.list_aliases().get(name)
    return target if target is not None and who.may_see(target) else name


def collection(db: Database, name: str, who: Principal, action: Action) -> Collection:
    """The collection `name` (or that the alias `name` points at), if `who` may do `action` on it
    (the same answer whether or not it exists)."""
    check_name(name)
    checked = scope_name(db, name, who)
    who.require(action, checked)
    # Opened by the name checked: an alias switched meanwhile cannot lead outside the scope.
    return db.get_collection(checked)
