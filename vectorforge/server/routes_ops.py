"""Operations: health, readiness, metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from vectorforge.engine import Database
from vectorforge.errors import PermissionDenied
from vectorforge.server.auth import Action
from vectorforge.server.deps import Who
from vectorforge.server.metrics import Metrics

__all__ = ["ops_routes"]


def ops_routes(db: Database, metrics: Metrics) -> APIRouter:
    """The routes, serving `db`."""
    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok"}

    @ops.get("/readyz")
    def readyz() -> dict[str, Any]:
        """The database is open and serving (no key needed, so it says nothing else)."""
        db.list_collections()  # raises if the database is closed
        return {"status": "ready"}

    @ops.get("/metrics")
    def prometheus(who: Who) -> Response:
        """Prometheus text format: every collection's figures, so for admin keys not limited to
        some collections."""
        who.require(Action.MANAGE)
        if who.collections is not None:
            raise PermissionDenied(
                "/metrics covers every collection; it needs an admin key that is not limited to collections"
            )
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return ops
