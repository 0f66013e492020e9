"""The FastAPI application: routes are thin, the engine does the work.

Handlers are plain `def`s: FastAPI runs them in its thread pool, and the collection's readers-writer
lock lets searches proceed side by side while FAISS works outside the GIL. One module per job:
`deps` (settings, keys, the collection a route names), `routes_ops`, `routes_collections`,
`routes_aliases`, `routes_points`, `routes_msgpack` (the hot calls in msgpack), `routes_evaluation`,
`routes_online` (events, online metrics, experiments), `routes_dashboard` (the dashboard page and
its JSON), `limits` (body size and time), `errors`, `metrics`, `auth`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

import vectorforge
from vectorforge.engine.restore_check import RestoreLimits
from vectorforge.evaluation.online.drift_watch import check_drift, due
from vectorforge.evaluation.online.online_metrics import online_metrics, outcomes
from vectorforge.evaluation.online.reports import enforce_guardrails
from vectorforge.evaluation.schedule import start_background
from vectorforge.server.deps import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY, ServerSettings, principal
from vectorforge.server.errors import install_error_handlers
from vectorforge.server.limits import BodyLimit
from vectorforge.server.metrics import Metrics
from vectorforge.server.routes_aliases import alias_routes
from vectorforge.server.routes_collections import collection_routes
from vectorforge.server.routes_dashboard import dashboard_routes
from vectorforge.server.routes_evaluation import evaluation_routes, start_schedule, workspace_of
from vectorforge.server.routes_msgpack import HotLane, msgpack_routes
from vectorforge.server.routes_online import online_routes
from vectorforge.server.routes_ops import ops_routes
from vectorforge.server.routes_planning import planning_routes
from vectorforge.server.routes_points import point_routes
from vectorforge.server.search_log import SearchLog

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "RESTORE_FACTOR",
    "ServerSettings",
    "create_app",
    "principal",
]

ONLINE_TICK_S = 2.0  # how often the server checks drift watches and experiments' guardrails
RESTORE_FACTOR = 4  # a restore may unpack this many times the upload limit, every replica counted


def create_app(settings: ServerSettings) -> FastAPI:
    """The ASGI app serving `settings.db`."""
    db = settings.db
    log = SearchLog(db)
    on_disk = db.path is not None

    def online_tick() -> None:
        """Check every watched collection whose interval has passed (alarms go to its webhook)
        and stop the A/B tests whose guardrails say so."""
        log.flush()
        ws = workspace_of(db)
        for name in due(ws.drift):
            check_drift(ws.drift, name)
        enforce_guardrails(ws)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler = start_schedule(db, settings.eval_schedule) if settings.eval_schedule else None
        drift = start_background([("online checks", ONLINE_TICK_S, online_tick)]) if on_disk else None
        yield
        for running in (scheduler, drift):
            if running is not None:
                running.shutdown(wait=True)  # a running job finishes before the database closes
        log.close()  # the search events still queued are stored
        db.close()  # runs after uvicorn has drained in-flight requests: seals and releases the folder

    app = FastAPI(
        title="vectorforge",
        version=vectorforge.__version__,
        description="A vector database: collections of points searchable by vector and payload filter.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app, db.path)
    # What a restore may unpack: a small multiple of what one upload may be (replicas counted).
    # Index files from outside are opened in a child process: a crafted one cannot crash the server.
    db.restore_limits = RestoreLimits(max_bytes=RESTORE_FACTOR * settings.max_body, isolate_readers=True)

    def stats() -> list[dict[str, Any]]:
        out = []
        for name in db.list_collections():
            try:
                out.append(db.get_collection(name).info())
            except vectorforge.VectorForgeError:
                continue
        return out

    def online() -> dict[str, dict[str, float | int | None]]:
        found = outcomes(workspace_of(db).events, start=time.time() - 3600)
        groups = online_metrics(found, by="collection")
        return {name.partition(":")[2]: values for name, values in groups.items() if name != "all"}

    def drift_checks() -> dict[str, dict[str, Any]]:
        store = workspace_of(db).drift
        checks = {name: store.last_check(name) for name in store.watches()}
        return {name: check for name, check in checks.items() if check is not None}

    def shadow_summaries() -> dict[str, dict[str, Any]]:
        store, since = workspace_of(db).shadows, time.time() - 3600
        return {s.name: store.summary(s.name, start=since) for s in store.all()}

    metrics = Metrics(
        stats,
        workspace_of(db).history.latest_each if on_disk else None,
        online if on_disk else None,
        drift_checks if on_disk else None,
        shadow_summaries if on_disk else None,
    )
    hot = msgpack_routes(db, log)
    routers = (
        ops_routes(db, metrics),
        collection_routes(db),
        alias_routes(db),
        point_routes(db, log),
        hot,
        evaluation_routes(db),
        online_routes(db, log),
        planning_routes(db),
    )
    for router in (*routers, dashboard_routes(db)):
        app.include_router(router)
    # Outermost last: metrics, then the body limits, then the hot calls' lane, then FastAPI.
    app.add_middleware(HotLane, routes=hot.routes, root=db.path)
    app.add_middleware(BodyLimit, max_body=settings.max_body, read_timeout=settings.body_timeout)
    app.add_middleware(metrics.asgi)
    return app
