"""The hot calls in msgpack: search, search_batch and upsert under `/msgpack/...`, each taking the
same body as its JSON route (the same schema, validated by the same model) and answering the same
document, both as msgpack (`application/msgpack`). Errors are the JSON error bodies of every route.

They exist for speed: the JSON routes spend more time in FastAPI's body parsing, validation and
JSON rendering than in the search itself (docs/benchmarks.md). Here the route only reads the bytes,
and the work runs in the thread pool as for the JSON routes (a search waiting behind a long write
must not stall the event loop).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgpack
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from vectorforge.engine import Database
from vectorforge.errors import InvalidParameter
from vectorforge.server.deps import Key, SegmentHeader, SessionHeader, UserHeader, Who
from vectorforge.server.routes_points import run_search, run_search_batch, run_upsert
from vectorforge.server.schemas import SearchBatchBody, SearchBody, UpsertBody
from vectorforge.server.search_log import SearchLog
from vectorforge.wire import MSGPACK

__all__ = ["msgpack_routes"]

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
