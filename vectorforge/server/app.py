"""The FastAPI application: routes are thin, the engine does the work.

Handlers are plain `def`s: FastAPI runs them in its thread pool, and the collection's readers-writer
lock lets searches proceed side by side while FAISS works outside the GIL.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import vectorforge
from vectorforge.cluster.collection import session_token
from vectorforge.engine import Collection, Database
from vectorforge.engine.restore_check import RestoreLimits
from vectorforge.errors import PermissionDenied, RequestTimeout, RequestTooLarge, VectorForgeError
from vectorforge.server.auth import OPEN_ACCESS, Action, KeyStore, Principal
from vectorforge.server.errors import error_response, install_error_handlers
from vectorforge.server.metrics import Metrics
from vectorforge.server.schemas import (
    AddBody,
    CountBody,
    CreateCollectionBody,
    DeleteBody,
    GetBody,
    QueryBody,
    ReshardBody,
    ScrollBody,
    SearchBatchBody,
    SearchBody,
    UpsertBody,
)
from vectorforge.types import (
    check_name,
    hit_to_dict,
    record_to_dict,
    vectors_from_wire,
)

__all__ = ["ServerSettings", "create_app"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY = 64 * 1024 * 1024
DEFAULT_BODY_TIMEOUT = 30.0  # seconds the next part of a request body may take to arrive
RESTORE_FACTOR = 4  # a restore may unpack this many times the upload limit, every replica counted


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
    ) -> None:
        self.db = db
        self.keys = keys
        self.require_keys = require_keys
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
    if settings.keys is None or (not settings.require_keys and not settings.keys.required):
        return OPEN_ACCESS
    return settings.keys.authenticate(_bearer(request))


Who = Annotated[Principal, Depends(principal)]
# A client's key for one write, reused on its retries: a repeated key applies nothing again and
# answers with the first result (the IETF Idempotency-Key header).
Key = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def create_app(settings: ServerSettings) -> FastAPI:
    """The ASGI app serving `settings.db`."""
    db = settings.db

    def collection(name: str, who: Principal, action: Action) -> Collection:
        check_name(name)
        who.require(action, name)
        return db.get_collection(name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
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
    db.restore_limits = RestoreLimits(max_bytes=RESTORE_FACTOR * settings.max_body)

    def _stats() -> list[dict[str, Any]]:
        out = []
        for name in db.list_collections():
            try:
                out.append(db.get_collection(name).info())
            except vectorforge.VectorForgeError:
                continue
        return out

    metrics = Metrics(_stats)
    app.add_middleware(_BodyLimit, max_body=settings.max_body, read_timeout=settings.body_timeout)
    app.add_middleware(metrics.asgi)

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

    cols = APIRouter(prefix="/collections", tags=["collections"])

    @cols.get("")
    def list_collections(who: Who) -> dict[str, list[str]]:
        """Names of the collections this key may see."""
        who.require(Action.READ)
        return {"collections": [n for n in db.list_collections() if who.may_see(n)]}

    @cols.put("/{name}")
    def create_collection(name: str, body: CreateCollectionBody, who: Who) -> dict[str, Any]:
        """Create a collection."""
        check_name(name)
        who.require(Action.MANAGE, name)
        col = db.create_collection(name, **body.model_dump())
        return col.info()

    @cols.get("/{name}")
    def get_collection(name: str, who: Who) -> dict[str, Any]:
        """A collection's configuration and statistics."""
        return collection(name, who, Action.READ).info()

    @cols.delete("/{name}")
    def delete_collection(name: str, who: Who) -> dict[str, bool]:
        """Delete a collection and its data."""
        check_name(name)
        who.require(Action.MANAGE, name)
        db.delete_collection(name)
        return {"deleted": True}

    @cols.post("/{name}/snapshot", response_class=Response)
    def snapshot(name: str, who: Who) -> Response:
        """The whole collection as one tar file."""
        col = collection(name, who, Action.MANAGE)
        assert db.path is not None
        target = db.path / "snapshots" / f"{name}-{uuid.uuid4().hex[:8]}.tar"  # one per request
        target.parent.mkdir(exist_ok=True)
        try:
            col.snapshot(target)
            data = target.read_bytes()
        finally:
            target.unlink(missing_ok=True)
        return Response(data, media_type="application/x-tar")

    @cols.post(
        "/{name}/restore",
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "a snapshot file, as `POST /collections/{name}/snapshot` returns it",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def restore(name: str, request: Request, who: Who) -> dict[str, Any]:
        """Create collection `name` from a snapshot file sent as the request body."""
        check_name(name)
        who.require(Action.MANAGE, name)
        assert db.path is not None
        upload = db.path / "snapshots" / f"upload-{name}-{uuid.uuid4().hex[:8]}.tar"  # one per request
        upload.parent.mkdir(exist_ok=True)
        upload.write_bytes(await request.body())
        try:
            col = await run_in_threadpool(db.restore, upload, name)
            return await run_in_threadpool(col.info)
        finally:
            upload.unlink(missing_ok=True)

    @cols.post("/{name}/flush")
    def flush(name: str, who: Who) -> dict[str, bool]:
        """Seal the growing segment."""
        collection(name, who, Action.WRITE).flush()
        return {"flushed": True}

    @cols.post("/{name}/optimize")
    def optimize(name: str, who: Who) -> dict[str, bool]:
        """Merge small or dirty segments now."""
        return {"merged": collection(name, who, Action.WRITE).optimize()}

    @cols.post("/{name}/repair")
    def repair(name: str, who: Who) -> dict[str, Any]:
        """Anti-entropy: compare the replicas of every shard and rewrite any that differ."""
        return collection(name, who, Action.WRITE).repair()

    @cols.post("/{name}/reshard")
    def reshard(name: str, body: ReshardBody, who: Who) -> dict[str, int]:
        """Move a sharded collection to `shards` shards; reads and writes go on meanwhile."""
        col = collection(name, who, Action.MANAGE)
        col.reshard(body.shards, n_probe=body.n_probe, batch_size=body.batch_size)
        return {"shards": body.shards}

    points = APIRouter(prefix="/collections/{name}/points", tags=["points"])

    @points.put("")
    def upsert(name: str, body: UpsertBody, who: Who, key: Key = None) -> dict[str, int]:
        """Insert or replace points; the answer comes once the write is durable."""
        col = collection(name, who, Action.WRITE)
        vectors = vectors_from_wire(_plain(body.vectors))
        return {"seq": col.upsert(body.ids, vectors, body.payloads, idempotency_key=key)}

    @points.post("/get")
    def get(name: str, body: GetBody, who: Who) -> dict[str, Any]:
        """Points by id, in the order asked."""
        col = collection(name, who, Action.READ)
        with session_token(body.session_ts):
            recs = col.get(
                body.ids,
                with_payload=body.with_payload,
                with_vectors=body.with_vectors,
                consistency=body.consistency,
            )
        return {"records": [record_to_dict(r) for r in recs]}

    @points.post("/delete")
    def delete(name: str, body: DeleteBody, who: Who, key: Key = None) -> dict[str, int]:
        """Delete points by ids and/or filter; `seq` is a session token that covers the delete."""
        col = collection(name, who, Action.WRITE)
        deleted = col.delete(ids=body.ids, filter=body.filter, idempotency_key=key)
        return {"deleted": deleted, "seq": getattr(col, "session_ts", 0)}

    @points.post("/count")
    def count(name: str, body: CountBody, who: Who) -> dict[str, int]:
        """Number of points (matching the filter)."""
        col = collection(name, who, Action.READ)
        with session_token(body.session_ts):
            return {"count": col.count(filter=body.filter, consistency=body.consistency)}

    @points.post("/scroll")
    def scroll(name: str, body: ScrollBody, who: Who) -> dict[str, Any]:
        """Points in id order, a page at a time."""
        col = collection(name, who, Action.READ)
        with session_token(body.session_ts):
            page = col.scroll(
                body.limit,
                body.cursor,
                filter=body.filter,
                with_payload=body.with_payload,
                with_vectors=body.with_vectors,
                consistency=body.consistency,
            )
        return {"records": [record_to_dict(r) for r in page.records], "next_cursor": page.next_cursor}

    @points.post("/search")
    def search(name: str, body: SearchBody, who: Who) -> dict[str, Any]:
        """The k nearest points to one vector."""
        # A plain def runs in the thread pool: inline on the event loop it would be faster, but a
        # search waiting behind a long write would then stall every request, /healthz included.
        vector = vectors_from_wire(_plain(body.vector))
        if getattr(vector, "ndim", 1) == 2 and vector.shape[0] == 1:
            vector = vector[0]
        col = collection(name, who, Action.READ)
        with session_token(body.session_ts):
            hits = col.search(vector, **_options(body))
        return {"hits": [hit_to_dict(h) for h in hits]}

    @points.post("/search/batch")
    def search_batch(name: str, body: SearchBatchBody, who: Who) -> dict[str, Any]:
        """`search` for many vectors at once."""
        col = collection(name, who, Action.READ)
        with session_token(body.session_ts):
            results = col.search_batch(vectors_from_wire(_plain(body.vectors)), **_options(body))
        return {"results": [[hit_to_dict(h) for h in hits] for hits in results]}

    @points.post("/add")
    def add(name: str, body: AddBody, who: Who, key: Key = None) -> dict[str, int]:
        """Embed texts with the collection's embedder and upsert them."""
        col = collection(name, who, Action.WRITE)
        return {"seq": col.add(body.texts, ids=body.ids, payloads=body.payloads, idempotency_key=key)}

    @points.post("/query")
    def query(name: str, body: QueryBody, who: Who) -> dict[str, Any]:
        """Embed a text with the collection's embedder and search."""
        col = collection(name, who, Action.READ)
        with session_token(body.session_ts):
            hits = col.query(body.text, **_options(body))
        return {"hits": [hit_to_dict(h) for h in hits]}

    for router in (ops, cols, points):
        app.include_router(router)
    return app


def _options(body: Any) -> dict[str, Any]:
    return {
        "k": body.k,
        "offset": body.offset,
        "filter": body.filter,
        "params": body.params,
        "with_payload": body.with_payload,
        "with_vectors": body.with_vectors,
        "consistency": body.consistency,
    }


def _plain(vectors: Any) -> Any:
    return vectors.model_dump() if hasattr(vectors, "model_dump") else vectors


class _BodyLimit:
    """Refuse request bodies over `max_body` bytes with 413, before they are read into memory, and
    bodies whose next part takes over `read_timeout` seconds to arrive with 408 (a slow sender
    must not hold a connection and a handler for as long as it likes)."""

    def __init__(self, app: ASGIApp, max_body: int, read_timeout: float = DEFAULT_BODY_TIMEOUT) -> None:
        self.app = app
        self.max_body = max_body
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = RequestTooLarge(
            f"request body over {self.max_body // (1024 * 1024)} MiB; send smaller batches",
            limit=self.max_body,
        )
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await error_response(too_large)(scope, receive, send)
            return
        seen = 0
        refusal: VectorForgeError | None = None

        async def limited() -> Message:
            nonlocal seen, refusal
            try:
                message = await asyncio.wait_for(receive(), self.read_timeout)
            except TimeoutError:
                refusal = RequestTimeout(
                    f"the request body did not arrive within {self.read_timeout:g} s", limit=self.read_timeout
                )
                raise refusal from None
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                refusal = too_large
                raise too_large
            return message

        async def guarded(message: Message) -> None:
            if refusal is None:  # past a limit, the app's answer (FastAPI's 400, a 500) gives way
                await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None:
            answer = error_response(refusal)
            if isinstance(refusal, RequestTimeout):  # the rest of the body may still come: start afresh
                answer.headers["connection"] = "close"
            await answer(scope, receive, send)
