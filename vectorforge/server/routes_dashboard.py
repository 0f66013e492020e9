"""The dashboard: `GET /dashboard`, a static page whose script fetches JSON from `/dashboard/api/...`.

The page itself holds no data and needs no key; its JSON routes need a key that may read, like every
other route, and answer only what that key may see. Every asset ships inside the package, so the
dashboard works on a machine without internet: ours are the files in `server/dashboard/`, plotly.js
is the minified bundle inside the `plotly` package (served under its version, so browsers keep it).

The page's script puts every string that comes from data into the DOM as text (`textContent`), never
as markup, and the page's Content-Security-Policy allows scripts from this server only: a collection
setting or a gold set named like an HTML tag shows as those characters.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.metadata
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from vectorforge.engine import Database
from vectorforge.errors import NotFoundError, VectorForgeError
from vectorforge.evaluation.online.reports import online_overview
from vectorforge.evaluation.workspace import Workspace
from vectorforge.server.auth import Action
from vectorforge.server.deps import Who
from vectorforge.server.routes_evaluation import visible_goldsets

__all__ = ["CollectionSummary", "EvaluationAnswer", "EvaluationRun", "dashboard_routes"]

ASSETS = Path(__file__).with_name("dashboard")
OWN_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
PLOTLY_PREFIX = "plotly-"  # served as plotly-<plotly.js version>.min.js

# Scripts and styles from this server only. Plotly adds a <style> element of its own (hence the
# inline styles) and draws text measurements into data: images; nothing here runs inline script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The shell and our scripts are checked on each load (a 304 when unchanged); plotly.js never changes
# under its versioned name.
REVALIDATE = "no-cache"
FOREVER = "public, max-age=31536000, immutable"


class CollectionSummary(BaseModel):
    """What the collections panel shows of one collection."""

    name: str
    points: int
    dim: int | None
    metric: str | None
    index: str | None
    vectors: list[str]  # the named vectors ("" is the unnamed dense vector)
    embedder: str | None
    shards: int
    replicas: int
    segments: int
    payload_indexes: dict[str, str]
    failed: str | None  # why the collection refuses writes, if it does


class CollectionsAnswer(BaseModel):
    collections: list[CollectionSummary]


class SegmentMetric(BaseModel):
    """A metric's mean over a segment's queries with its bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int


class EvaluationRun(BaseModel):
    """One recorded evaluation run, as the evaluation panels draw it."""

    model_config = ConfigDict(extra="allow")  # label, pinned ... pass through to the page

    run_id: str
    goldset: str
    goldset_version: str
    collection: str
    created_at: str  # ISO 8601, UTC
    metrics: dict[str, float]  # the overall mean per metric ("ndcg@10": 0.71)
    segments: dict[str, dict[str, SegmentMetric]]  # segment -> metric -> score; "all" first


class GoldsetSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    version: str


class EvaluationAnswer(BaseModel):
    goldsets: list[GoldsetSummary]
    runs: list[EvaluationRun]  # oldest first


@dataclass(frozen=True)
class _Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    cache: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str, cache: str) -> _Asset:
        # Weak: the gzipped and the plain body are one representation to a cache that revalidates.
        etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        return cls(body, gzip.compress(body, compresslevel=6, mtime=0), media_type, cache, etag)

    def response(self, request: Request, headers: dict[str, str] | None = None) -> Response:
        common = {
            "Cache-Control": self.cache,
            "ETag": self.etag,
            "Vary": "Accept-Encoding",
            **(headers or {}),
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=common)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                self.gzipped, media_type=self.media_type, headers={**common, "Content-Encoding": "gzip"}
            )
        return Response(self.body, media_type=self.media_type, headers=common)


def plotly_version() -> str:
    """The version of plotly.js inside the installed `plotly` package (not the Python package's)."""
    head = _plotly_source()[:500].decode("ascii", "replace")
    marker = "plotly.js v"
    start = head.find(marker)
    if start < 0:
        return importlib.metadata.version("plotly")
    return head[start + len(marker) :].split()[0]


@functools.cache
def _plotly_source() -> bytes:
    return importlib.resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()


# Read on first use, not at start: plotly.js is 4.6 MB, and most servers never show the dashboard.
@functools.cache
def _plotly() -> _Asset:
    return _Asset.of(_plotly_source(), "text/javascript", FOREVER)


@functools.cache
def _own(name: str) -> _Asset:
    return _Asset.of((ASSETS / name).read_bytes(), OWN_ASSETS[name], REVALIDATE)


@functools.cache
def _page() -> _Asset:
    html = (
        (ASSETS / "index.html").read_text().replace("{{plotly}}", f"{PLOTLY_PREFIX}{plotly_version()}.min.js")
    )
    return _Asset.of(html.encode(), "text/html; charset=utf-8", REVALIDATE)


def _summary(info: dict[str, Any]) -> CollectionSummary:
    failed = info.get("failed")
    return CollectionSummary(
        name=info["name"],
        points=info["points"],
        dim=info.get("dim"),
        metric=info.get("metric"),
        index=info.get("index"),
        vectors=sorted(info.get("vectors") or {}),
        embedder=_embedder_name(info.get("embedder")),
        shards=info.get("shards") or 1,
        replicas=info.get("replicas") or 1,
        segments=len(info.get("segments") or []),
        payload_indexes={str(k): str(v) for k, v in (info.get("payload_indexes") or {}).items()},
        failed=None if not failed else str(failed),
    )


def _embedder_name(embedder: Any) -> str | None:
    """info()'s embedder is a dict (name, model, version, dim) or None."""
    if isinstance(embedder, dict):
        return f"{embedder.get('name')} ({embedder.get('model')})"
    return None if embedder is None else str(embedder)


def dashboard_routes(db: Database) -> APIRouter:
    """The routes, serving `db`."""
    dash = APIRouter(prefix="/dashboard", tags=["dashboard"])
    no_store = {"Cache-Control": "no-store"}  # answers that hold data stay out of every cache

    @dash.get("", include_in_schema=False)
    def page(request: Request) -> Response:
        """The page: HTML with no data in it, so it needs no key."""
        headers = {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",  # `?key=...` must not travel on in a Referer header
        }
        return _page().response(request, headers)

    @dash.get("/assets/{name}", include_in_schema=False)
    def asset(name: str, request: Request) -> Response:
        """Our scripts and styles, and plotly.js under its version."""
        headers = {"X-Content-Type-Options": "nosniff"}
        if name in OWN_ASSETS:
            return _own(name).response(request, headers)
        if name == f"{PLOTLY_PREFIX}{plotly_version()}.min.js":
            return _plotly().response(request, headers)
        raise NotFoundError(f"the dashboard has no asset {name!r}")

    @dash.get("/api/collections")
    def collections(who: Who, response: Response) -> CollectionsAnswer:
        """The collections this key may see, with their point counts and main settings."""
        who.require(Action.READ)
        response.headers.update(no_store)
        out = []
        for name in db.list_collections():
            if not who.may_see(name):
                continue
            try:
                out.append(_summary(db.get_collection(name).info()))
            except VectorForgeError:
                continue  # deleted meanwhile, or failing to open: the rest of the list still shows
        return CollectionsAnswer(collections=out)

    @dash.get("/api/evaluation")
    def evaluation(
        who: Who, response: Response, limit: int = Query(500, ge=1, le=10_000)
    ) -> EvaluationAnswer:
        """The gold sets and the newest `limit` recorded evaluation runs (oldest first) of the
        collections this key may see."""
        who.require(Action.READ)
        response.headers.update(no_store)
        if db.path is None:  # an in-memory server keeps no evaluation history
            return EvaluationAnswer(goldsets=[], runs=[])
        ws = Workspace(db.path)
        goldsets = [
            GoldsetSummary(name=name, version=ws.goldsets.versions(name)[-1]["version"])
            for name in visible_goldsets(ws, who)
        ]
        runs = [
            EvaluationRun.model_validate(run.to_json(per_query=False))
            for run in ws.history.runs(limit=limit, collections=who.collections)
        ]
        return EvaluationAnswer(goldsets=goldsets, runs=runs)

    @dash.get("/api/online")
    def online(who: Who, response: Response, hours: int = Query(24, ge=1, le=24 * 90)) -> dict[str, Any]:
        """Hourly online metrics per collection, experiments with their reports, drift checks; of
        the collections this key may see."""
        who.require(Action.READ)
        response.headers.update(no_store)
        if db.path is None:  # an in-memory server keeps no events
            return {"series": {}, "experiments": [], "drift": {}}
        return online_overview(Workspace(db.path), who.may_see, hours=hours)

    return dash
