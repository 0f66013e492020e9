"""Collections: create, list, get, delete, snapshot, restore, and their upkeep."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from vectorforge.engine import Database
from vectorforge.server.auth import Action
from vectorforge.server.deps import Who, collection, scope_name
from vectorforge.server.schemas import CreateCollectionBody, PayloadIndexBody, ReshardBody
from vectorforge.types import check_name

__all__ = ["collection_routes"]


def collection_routes(db: Database) -> APIRouter:
    """The routes, serving `db`."""
    cols = APIRouter(prefix="/collections", tags=["collections"])

    @cols.get("")
    def list_collections(who: Who) -> dict[str, list[str]]:
        """Names of the collections this key may see."""
        who.require(Action.READ)
        return {"collections": [n for n in db.list_collections() if who.may_see(n)]}

    @cols.put("/{name}")
    def create_collection(
        name: str, body: CreateCollectionBody, who: Who, exist_ok: bool = False
    ) -> dict[str, Any]:
        """Create a collection; `?exist_ok=true`: or return the one of that name if its settings are
        those given (get_or_create_collection)."""
        check_name(name)
        checked = scope_name(db, name, who)  # an existing collection may be named by an alias
        who.require(Action.MANAGE, checked)
        if exist_ok:
            return db.get_or_create_collection(checked, **body.model_dump(exclude_unset=True)).info()
        col = db.create_collection(name, **body.model_dump())
        return col.info()

    @cols.put("/{name}/index")
    def create_payload_index(name: str, body: PayloadIndexBody, who: Who) -> dict[str, Any]:
        """Index a payload key on every segment now (Qdrant's create field index)."""
        col = collection(db, name, who, Action.MANAGE)
        col.create_payload_index(body.field_name, body.field_schema)
        return {"payload_indexes": col.info()["payload_indexes"]}

    @cols.delete("/{name}/index/{field_name}")
    def delete_payload_index(name: str, field_name: str, who: Who) -> dict[str, Any]:
        """Stop indexing a payload key up front."""
        col = collection(db, name, who, Action.MANAGE)
        col.delete_payload_index(field_name)
        return {"payload_indexes": col.info()["payload_indexes"]}

    @cols.get("/{name}")
    def get_collection(name: str, who: Who) -> dict[str, Any]:
        """A collection's configuration and statistics."""
        return collection(db, name, who, Action.READ).info()

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
        col = collection(db, name, who, Action.MANAGE)
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
        collection(db, name, who, Action.WRITE).flush()
        return {"flushed": True}

    @cols.post("/{name}/optimize")
    def optimize(name: str, who: Who) -> dict[str, bool]:
        """Merge small or dirty segments now."""
        return {"merged": collection(db, name, who, Action.WRITE).optimize()}

    @cols.post("/{name}/repair")
    def repair(name: str, who: Who) -> dict[str, Any]:
        """Anti-entropy: compare the replicas of every shard and rewrite any that differ."""
        return collection(db, name, who, Action.WRITE).repair()

    @cols.post("/{name}/reshard")
    def reshard(name: str, body: ReshardBody, who: Who) -> dict[str, int]:
        """Move a sharded collection to `shards` shards; reads and writes go on meanwhile."""
        col = collection(db, name, who, Action.MANAGE)
        col.reshard(body.shards, n_probe=body.n_probe, batch_size=body.batch_size)
        return {"shards": body.shards}

    return cols
