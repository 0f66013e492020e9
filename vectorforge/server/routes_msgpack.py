"""The hot calls in msgpack: search, search_batch and upsert under `/msgpack/...`, each taking the
same body as its JSON route (the same schema, validated by the same model) and answering the same
document, both as msgpack (`application/msgpack`). Errors are the JSON error bodies of every route.

They exist for speed: the JSON routes spend more time in FastAPI's body parsing, validation and
JSON rendering than in the search itself (docs/benchmarks.md). The routes are declared to FastAPI
(the OpenAPI document, the reference behaviour), and `HotLane` calls the same endpoint functions
before FastAPI's router and dependency machinery see the request: FastAPI's route matching and
dependency solving alone cost more per call than a search of 50k vectors. The work runs in the
thread pool as for the JSON routes (a search waiting behind a long write must not stall the event
loop).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import msgpack
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from fastapi.params import Header as HeaderParam
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from vectorforge.engine import Database
from vectorforge.errors import InvalidParameter, VectorForgeError
from vectorforge.server.deps import Key, SegmentHeader, SessionHeader, UserHeader, Who, principal
from vectorforge.server.errors import error_response, unexpected_error, validation_error
from vectorforge.server.routes_points import run_search, run_search_batch, run_upsert
from vectorforge.server.schemas import SearchBatchBody, SearchBody, UpsertBody
from vectorforge.server.search_log import SearchLog
from vectorforge.wire import MSGPACK

__all__ = ["HotLane", "msgpack_routes"]

M = TypeVar("M", bound=BaseModel)


def _openapi(model: type[BaseModel], answer: str) -> dict[str, Any]:
    """The msgpack request body and answer, in the OpenAPI document (the schemas are the JSON routes')."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "requestBody": {"required": True, "content": {MSGPACK: {"schema": ref}}},
        "responses": {"200": {"description": answer, "content": {MSGPACK: {"schema": {"type": "object"}}}}},
    }


async def _body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    try:
        # keys of any type reach the model and the engine, which name what is wrong with them
        data = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise InvalidParameter(f"the request body is not msgpack: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidParameter(f"the request body is a msgpack {type(data).__name__}; send a map")
    try:
        return model.model_validate(data)
    except ValidationError as exc:  # reported as every route reports a bad body
        raise RequestValidationError(
            [{**err, "loc": ("body", *err.get("loc", ()))} for err in exc.errors(include_url=False)]
        ) from None


def _answer(document: dict[str, Any]) -> Response:
    return Response(msgpack.packb(document, use_bin_type=True), media_type=MSGPACK)


def msgpack_routes(db: Database, log: SearchLog) -> APIRouter:
    """The msgpack routes, serving `db` (searches logged and mirrored as the JSON ones)."""
    fast = APIRouter(prefix="/msgpack/collections/{name}/points", tags=["points (msgpack)"])

    @fast.post(
        "/search", openapi_extra=_openapi(SearchBody, "the hits, as POST /collections/{name}/points/search")
    )
    async def search_msgpack(
        name: str,
        request: Request,
        who: Who,
        user: UserHeader = None,
        session: SessionHeader = None,
        segment: SegmentHeader = None,
    ) -> Response:
        """`POST /collections/{name}/points/search` in msgpack."""
        body = await _body(request, SearchBody)
        return _answer(await run_in_threadpool(run_search, db, log, name, body, who, user, session, segment))

    @fast.post("/search/batch", openapi_extra=_openapi(SearchBatchBody, "one list of hits per query"))
    async def search_batch_msgpack(name: str, request: Request, who: Who) -> Response:
        """`POST /collections/{name}/points/search/batch` in msgpack."""
        body = await _body(request, SearchBatchBody)
        return _answer(await run_in_threadpool(run_search_batch, db, name, body, who))

    @fast.put("", openapi_extra=_openapi(UpsertBody, "the update result, once the write is durable"))
    async def upsert_msgpack(name: str, request: Request, who: Who, key: Key = None) -> Response:
        """`PUT /collections/{name}/points` in msgpack."""
        body = await _body(request, UpsertBody)
        return _answer(await run_in_threadpool(run_upsert, db, log, name, body, who, key))

    return fast


@dataclass(frozen=True)
class _Call:
    """One hot route: its method, path pattern, FastAPI route, and the headers its parameters read."""

    method: str
    path: re.Pattern[str]
    route: Any  # its endpoint is called; the metrics label the request by its template
    headers: dict[str, tuple[str, int | None]]  # parameter -> (header, max length)
    who: str | None  # the parameter that takes the caller's Principal


def _header_params(endpoint: Callable[..., Any]) -> tuple[dict[str, tuple[str, int | None]], str | None]:
    """The endpoint's header parameters (alias, max length) and its Principal parameter, read from its
    annotations: the lane resolves them as FastAPI would, from the same declarations."""
    headers: dict[str, tuple[str, int | None]] = {}
    who = None
    for param, hint in get_type_hints(endpoint, include_extras=True).items():
        for meta in getattr(hint, "__metadata__", ()):
            if isinstance(meta, HeaderParam):
                limit = next((m.max_length for m in meta.metadata if hasattr(m, "max_length")), None)
                headers[param] = (meta.alias or param, limit)
            elif isinstance(meta, DependsParam) and meta.dependency is principal:
                who = param
    return headers, who


class HotLane:
    """ASGI middleware answering the msgpack routes with their own endpoints, before FastAPI's router.

    Inside `BodyLimit` and the metrics middleware (the limits hold, the requests are counted); errors
    get the answers FastAPI's handlers give. Any other request goes on to the app.
    """

    def __init__(self, app: ASGIApp, routes: list[Any], root: Path | None) -> None:
        self.app = app
        self.root = root
        self.calls: list[_Call] = []
        for route in routes:
            if not getattr(route, "path", "").startswith("/msgpack/"):
                continue
            pattern = re.compile("^" + re.escape(route.path).replace(r"\{name\}", "(?P<name>[^/]+)") + "$")
            headers, who = _header_params(route.endpoint)
            for method in route.methods:
                self.calls.append(_Call(method, pattern, route, headers, who))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/msgpack/"):
            await self.app(scope, receive, send)
            return
        for call in self.calls:
            if call.method == scope["method"] and (match := call.path.match(scope["path"])):
                break
        else:
            await self.app(scope, receive, send)  # FastAPI answers: 404, 405
            return
        scope["route"] = call.route
        request = Request(scope, receive)
        try:
            kwargs: dict[str, Any] = {"name": match["name"], "request": request}
            if call.who is not None:
                kwargs[call.who] = await principal(request)
            for param, (header, limit) in call.headers.items():
                value = request.headers.get(header)
                if value is not None and limit is not None and len(value) > limit:  # as FastAPI says it
                    raise InvalidParameter(
                        f"request field {header}: String should have at most {limit} characters"
                    )
                kwargs[param] = value
            answer: Response = await call.route.endpoint(**kwargs)
        except VectorForgeError as exc:
            answer = error_response(exc, self.root)
        except RequestValidationError as exc:
            answer = error_response(validation_error(exc))
        except Exception as exc:  # the server goes on; the caller learns only that it failed
            answer = unexpected_error(exc, scope["method"], scope["path"])
        await answer(scope, receive, send)
