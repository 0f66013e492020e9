"""Capacity planning over HTTP: `POST /plan` plans a workload, sent as JSON or as YAML text, the same
plan `vectorforge plan FILE` makes (docs/planning.md).

Prices come from a bundled catalog only, and throughput from the server's own calibration profile:
`<data>/planning/profile.json` when `vectorforge plan calibrate --out` put one there (measured on the
server's machine), else the bundled one. A workload that names a file (a catalog or a profile path)
is refused: a request never makes the server read a file it names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from vectorforge.engine import Database
from vectorforge.errors import InvalidParameter, VectorForgeError
from vectorforge.extras import missing_extra
from vectorforge.server.auth import Action
from vectorforge.server.deps import Who

__all__ = ["SERVER_PROFILE", "planning_routes"]

SERVER_PROFILE = Path("planning") / "profile.json"  # under the data folder
MEDIA = {"json": "application/json", "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


def _parsed(body: bytes, content_type: str) -> Any:
    kind = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if kind in ("application/json", ""):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidParameter(f"the workload is not valid JSON: {exc}") from None
    if kind in YAML_TYPES:
        with missing_extra("capacity planning"):
            import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"the workload is not valid YAML: {exc}") from None
    raise InvalidParameter(
        f"Content-Type {kind!r}: send the workload as application/json or application/yaml"
    )


def planning_routes(db: Database) -> APIRouter:
    """The routes, serving `db` (whose data folder may hold the server's calibration profile)."""
    router = APIRouter(tags=["planning"])

    def profile_path() -> Path | None:
        if db.path is None:
            return None
        own = Path(db.path) / SERVER_PROFILE
        return own if own.is_file() else None

    @router.post(
        "/plan",
        response_model=None,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def plan_workload(
        request: Request, who: Who, format: str = Query("json", description="json, md or html")
    ) -> Response:
        """The cheapest plan that meets the workload's SLO, with its what-ifs (`format`: json, md, html)."""
        who.require(Action.READ)
        from vectorforge.planning import load_catalog, load_profile, parse_workload, plan_report
        from vectorforge.planning.report import FORMATS

        if format not in FORMATS:
            raise InvalidParameter(f"format {format!r} is unknown; one of {', '.join(FORMATS)}")
        workload = parse_workload(_parsed(await request.body(), request.headers.get("content-type", "")))
        if workload.profile is not None:
            raise InvalidParameter(
                "profile: over HTTP the server plans with its own calibration profile; leave it out"
            )
        catalog = load_catalog(workload.catalog, bundled_only=True)

        def answer() -> str:
            try:
                profile = load_profile(profile_path())
            except InvalidParameter:  # the server's own file, not the request, is at fault
                raise VectorForgeError(
                    f"the server's calibration profile ({SERVER_PROFILE} in its data folder) is not a "
                    "profile: recalibrate it or remove it"
                ) from None
            return plan_report(workload, catalog, profile, format)[1]

        return Response(await run_in_threadpool(answer), media_type=MEDIA[format])

    return router
