"""Points: write, read, search."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter

from vectorforge.cluster.collection import session_token
from vectorforge.engine import Database
from vectorforge.errors import InvalidVector
from vectorforge.server.auth import Action
from vectorforge.server.deps import Key, SegmentHeader, SessionHeader, UserHeader, Who, collection
from vectorforge.server.schemas import (
    AddBody,
    CountBody,
    DeleteBody,
    DeletePayloadBody,
    GetBody,
    PayloadBody,
    QueryBody,
    ScrollBody,
    SearchBatchBody,
    SearchBody,
    SparseBlob,
    SparseIn,
    UpsertBody,
)
from vectorforge.server.search_log import SearchLog
from vectorforge.types import SparseVector
from vectorforge.wire import (
    hit_to_dict,
    named_from_wire,
    record_to_dict,
    sparse_from_wire,
    update_to_dict,
    vectors_from_wire,
)

__all__ = ["point_routes", "run_search", "run_search_batch", "run_upsert"]


def point_routes(db: Database, log: SearchLog) -> APIRouter:
    """The routes, serving `db`; searches of collections that log are logged to `log`."""
    points = APIRouter(prefix="/collections/{name}/points", tags=["points"])

    @points.put("")
    def upsert(name: str, body: UpsertBody, who: Who, key: Key = None) -> dict[str, Any]:
        """Insert or replace points; the answer comes once the write is durable."""
        return run_upsert(db, log, name, body, who, key)

    @points.post("/get")
    def get(name: str, body: GetBody, who: Who) -> dict[str, Any]:
        """Points by id, in the order asked."""
        col = collection(db, name, who, Action.READ)
        with session_token(body.session_ts):
            recs = col.get(
                body.ids,
                with_payload=body.with_payload,
                with_vectors=body.with_vectors,
                consistency=body.consistency,
            )
        return {"records": [record_to_dict(r) for r in recs]}

    @points.post("/delete")
    def delete(name: str, body: DeleteBody, who: Who, key: Key = None) -> dict[str, Any]:
        """Delete points by ids and/or filter; `count`: how many were deleted."""
        col = collection(db, name, who, Action.WRITE)
        return update_to_dict(col.delete(ids=body.ids, filter=body.filter, idempotency_key=key))

    @points.post("/payload")
    def set_payload(name: str, body: PayloadBody, who: Who, key: Key = None) -> dict[str, Any]:
        """Merge `payload` into the chosen points' payloads (Qdrant's set payload)."""
        col = collection(db, name, who, Action.WRITE)
        return update_to_dict(col.set_payload(body.payload, body.ids, body.filter, idempotency_key=key))

    @points.put("/payload")
    def overwrite_payload(name: str, body: PayloadBody, who: Who, key: Key = None) -> dict[str, Any]:
        """Replace the chosen points' payloads with `payload`."""
        col = collection(db, name, who, Action.WRITE)
        return update_to_dict(col.overwrite_payload(body.payload, body.ids, body.filter, idempotency_key=key))

    @points.post("/payload/delete")
    def delete_payload(name: str, body: DeletePayloadBody, who: Who, key: Key = None) -> dict[str, Any]:
        """Remove payload keys from the chosen points."""
        col = collection(db, name, who, Action.WRITE)
        return update_to_dict(col.delete_payload(body.keys, body.ids, body.filter, idempotency_key=key))

    @points.post("/count")
    def count(name: str, body: CountBody, who: Who) -> dict[str, int]:
        """Number of points (matching the filter)."""
        col = collection(db, name, who, Action.READ)
        with session_token(body.session_ts):
            return {"count": col.count(filter=body.filter, consistency=body.consistency)}

    @points.post("/scroll")
    def scroll(name: str, body: ScrollBody, who: Who) -> dict[str, Any]:
        """Points in id order, a page at a time."""
        col = collection(db, name, who, Action.READ)
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
    def search(
        name: str,
        body: SearchBody,
        who: Who,
        user: UserHeader = None,
        session: SessionHeader = None,
        segment: SegmentHeader = None,
    ) -> dict[str, Any]:
        """The k nearest points to one vector."""
        # A plain def runs in the thread pool: inline on the event loop it would be faster, but a
        # search waiting behind a long write would then stall every request, /healthz included.
        return run_search(db, log, name, body, who, user, session, segment)

    @points.post("/search/batch")
    def search_batch(name: str, body: SearchBatchBody, who: Who) -> dict[str, Any]:
        """`search` for many vectors at once."""
        return run_search_batch(db, name, body, who)

    @points.post("/add")
    def add(name: str, body: AddBody, who: Who, key: Key = None) -> dict[str, Any]:
        """Embed texts with the collection's embedder and upsert them."""
        col = collection(db, name, who, Action.WRITE)
        result = col.add(body.texts, ids=body.ids, payloads=body.payloads, idempotency_key=key)
        if log.watches_documents(name):  # corpus drift: the embeddings the add just made (cached)
            log.record_documents(name, list(range(len(body.texts))), col.embedder().encode(body.texts))
        return update_to_dict(result)

    @points.post("/query")
    def query(
        name: str,
        body: QueryBody,
        who: Who,
        user: UserHeader = None,
        session: SessionHeader = None,
        segment: SegmentHeader = None,
    ) -> dict[str, Any]:
        """Embed a text with the collection's embedder and search."""
        col = collection(db, name, who, Action.READ)
        began = time.perf_counter()
        with session_token(body.session_ts):
            hits = col.query(
                body.text,
                using=body.using,
                mode=body.mode,
                fusion=body.fusion,
                weights=body.weights,
                **_options(body),
            )
        dense = body.using is None  # the dense embedder made the query (alone, or in a hybrid)
        return _logged(
            log,
            name,
            col,
            hits,
            began,
            body,
            text=body.text,
            embed_text=dense,
            user=user,
            session=session,
            segment=segment,
        )

    return points


def run_upsert(
    db: Database, log: SearchLog, name: str, body: UpsertBody, who: Any, key: str | None
) -> dict[str, Any]:
    """An upsert, as both the JSON and the msgpack route answer it."""
    col = collection(db, name, who, Action.WRITE)
    if isinstance(body.vectors, dict):
        vectors = named_from_wire(body.vectors)
    else:
        vectors = vectors_from_wire(_plain(body.vectors))
    result = col.upsert(body.ids, vectors, body.payloads, idempotency_key=key)
    log.record_documents(name, body.ids, None if isinstance(vectors, dict) else vectors)  # corpus drift
    return update_to_dict(result)


def run_search(
    db: Database,
    log: SearchLog,
    name: str,
    body: SearchBody,
    who: Any,
    user: str | None = None,
    session: str | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """A search, as both the JSON and the msgpack route answer it (logged, offered to shadows)."""
    vector: Any
    if isinstance(body.vector, SparseIn):
        vector = SparseVector(body.vector.indices, body.vector.values)
    elif isinstance(body.vector, SparseBlob):
        rows = sparse_from_wire(body.vector.model_dump(), "vector")
        if len(rows) != 1 or rows[0] is None:
            raise InvalidVector("a sparse query is one sparse vector (lengths: [n])")
        vector = rows[0]
    else:
        vector = vectors_from_wire(_plain(body.vector))
        if body.using is None and getattr(vector, "ndim", 1) == 2 and vector.shape[0] == 1:
            vector = vector[0]
    col = collection(db, name, who, Action.READ)
    began = time.perf_counter()
    with session_token(body.session_ts):
        hits = col.search(vector, using=body.using, **_options(body))
    dense = _dense_query(vector) if body.using is None else None
    return _logged(
        log, name, col, hits, began, body, vector=dense, user=user, session=session, segment=segment
    )


def run_search_batch(db: Database, name: str, body: SearchBatchBody, who: Any) -> dict[str, Any]:
    """A batch of searches, as both the JSON and the msgpack route answer it."""
    col = collection(db, name, who, Action.READ)
    with session_token(body.session_ts):
        results = col.search_batch(vectors_from_wire(_plain(body.vectors)), **_options(body))
    return {"results": [[hit_to_dict(h) for h in hits] for hits in results]}


def _logged(
    log: SearchLog,
    name: str,
    col: Any,
    hits: list[Any],
    began: float,
    body: Any,
    *,
    text: str | None = None,
    vector: Any = None,
    embed_text: bool = False,
    user: str | None = None,
    session: str | None = None,
    segment: str | None = None,
) -> dict[str, Any]:
    """The answer to a search, with its `query_id` if the collection logs its searches (opt-in);
    offered to the collection's shadows, if it has any."""
    latency_ms = 1000 * (time.perf_counter() - began)
    out: dict[str, Any] = {"hits": [hit_to_dict(h) for h in hits]}
    query_id = log.maybe_record(
        name,
        col,
        hits,
        latency_ms,
        text=text,
        vector=vector,
        embed_text=embed_text,
        user=user,
        session=session,
        segment=segment,
    )
    if query_id is not None:
        out["query_id"] = query_id
    if body.offset == 0:  # a later page has nothing to compare the candidate's first page with
        log.mirror(
            name,
            hits,
            latency_ms,
            text=text,
            vector=vector if body.using is None else None,
            filter=body.filter,
            query_id=query_id,
            segment=segment,
        )
    return out


def _dense_query(vector: Any) -> Any:
    """The searched vector as a float32 row, if it is one dense vector (a JSON list passes through
    the wire as a list; the search has just accepted it), else None."""
    if isinstance(vector, SparseVector):
        return None
    try:
        dense = np.asarray(vector, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    return dense if dense.ndim == 1 else None


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
