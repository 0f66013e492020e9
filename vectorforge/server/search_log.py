"""The server's log of searches: which collections log (opt-in, a sample rate), which are watched
for drift (their queries' embeddings are kept too), which are shadowed (a share of their searches
mirrored to a candidate), and the writers that do all three off the request path (bounded queues
that drop rather than slow a search)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from vectorforge.engine import Database
from vectorforge.evaluation.online.drift_watch import DOCUMENTS, QUERIES, DriftStore, DriftWatch
from vectorforge.evaluation.online.events import BatchWriter, EventStore, ResultItem, SearchEvent
from vectorforge.evaluation.online.shadow import Shadow, ShadowJob, ShadowMirror, ShadowStore
from vectorforge.evaluation.workspace import Workspace

__all__ = ["SearchLog"]

CACHE_S = 1.0  # how long a collection's logging, drift and shadow settings are trusted without SQLite

# One queued write: a search event (or None), whether to keep its text, and drift rows of a kind.
_Item = tuple[SearchEvent | None, bool, list[tuple[Any, ...]], str]


class SearchLog:
    """Logging searches for one server (`db` on disk; in memory it logs nothing)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._writer: BatchWriter[_Item] | None = None
        self._settings: dict[str, tuple[float, dict[str, Any], DriftWatch | None]] = {}
        self._shadows: tuple[float, dict[str, list[Shadow]]] | None = None
        self._mirror: ShadowMirror | None = None

    @property
    def workspace(self) -> Workspace:
        from vectorforge.server.routes_evaluation import workspace_of

        return workspace_of(self._db)

    @property
    def events(self) -> EventStore:
        return self.workspace.events

    @property
    def drift(self) -> DriftStore:
        return self.workspace.drift

    @property
    def shadows(self) -> ShadowStore:
        return self.workspace.shadows

    def _writer_of(self) -> BatchWriter[_Item]:
        if self._writer is None:
            self._writer = BatchWriter(self._write, name="search-log")
        return self._writer

    def _write(self, items: list[_Item]) -> None:
        for keep in (False, True):
            chosen = [event for event, k, _, _ in items if event is not None and k is keep]
            if chosen:
                self.events.add(chosen, keep_text=keep)
        for kind in (QUERIES, DOCUMENTS):
            rows = [row for _, _, rows, k in items if k == kind for row in rows]
            if rows:
                self.drift.add_vectors(rows, kind)

    def settings(self, name: str) -> tuple[dict[str, Any], DriftWatch | None]:
        """(logging settings, drift watch) of `name`, cached for `CACHE_S`."""
        cached = self._settings.get(name)
        if cached is None or time.monotonic() - cached[0] > CACHE_S:
            cached = (time.monotonic(), self.events.logging(name), self.drift.watches().get(name))
            self._settings[name] = cached
        return cached[1], cached[2]

    def forget(self, name: str) -> None:
        """Settings of `name` changed: read them again."""
        self._settings.pop(name, None)
        self._shadows = None

    def shadows_of(self, name: str) -> list[Shadow]:
        """The shadows mirroring searches on `name`, cached for `CACHE_S`."""
        if self._db.path is None:
            return []
        if self._shadows is None or time.monotonic() - self._shadows[0] > CACHE_S:
            by_collection: dict[str, list[Shadow]] = {}
            for shadow in self.shadows.all():
                by_collection.setdefault(shadow.collection, []).append(shadow)
            self._shadows = (time.monotonic(), by_collection)
        return self._shadows[1].get(name, [])

    def mirror(
        self,
        name: str,
        hits: Sequence[Any],
        latency_ms: float,
        *,
        text: str | None = None,
        vector: Any = None,
        filter: Any = None,
        query_id: str | None = None,
        segment: str | None = None,
    ) -> int:
        """Offer a search on `name` to its shadows (off the request path); how many took it."""
        shadows = self.shadows_of(name)
        if not shadows or (text is None and vector is None):
            return 0
        if self._mirror is None:
            self._mirror = ShadowMirror(lambda: self.shadows, self._run_candidate)
        job = ShadowJob(
            shadow=shadows[0],
            primary=[(h.id, float(h.score)) for h in hits],
            primary_ms=latency_ms,
            text=text,
            vector=vector,
            filter=filter,
            query_id=query_id,
            segment=segment,
        )
        return self._mirror.offer(shadows, job)

    def _run_candidate(self, job: ShadowJob) -> list[tuple[Any, float]]:
        arm, k = job.shadow.candidate, job.shadow.k
        col = self._db.get_collection(arm.collection)
        query_filter = arm.filter if arm.filter is not None else job.filter
        if job.text is not None:
            hits = col.query(
                job.text,
                k=k,
                using=arm.using,
                mode=arm.mode,
                fusion=arm.fusion,
                weights=arm.weights,
                params=arm.params,
                filter=query_filter,
                with_payload=False,
            )
        else:
            hits = col.search(
                job.vector, k=k, using=arm.using, params=arm.params, filter=query_filter, with_payload=False
            )
        return [(h.id, float(h.score)) for h in hits]

    def record(
        self,
        name: str,
        hits: Sequence[Any],
        latency_ms: float,
        *,
        query_id: str | None = None,
        text: str | None = None,
        vector: Any = None,
        user_id: str | None = None,
        session_id: str | None = None,
        experiment: str | None = None,
        arm: str | None = None,
        segment: str | None = None,
        teams: Sequence[str] | None = None,
        keep_text: bool = False,
    ) -> str:
        """Queue one search event (with its embedding if `name` is watched for drift); its query
        id, for the client's clicks."""
        query_id = query_id or uuid.uuid4().hex
        results = [
            ResultItem(id=h.id, score=float(h.score), team=None if teams is None else teams[i])
            for i, h in enumerate(hits)
        ]
        event = SearchEvent(
            query_id=query_id,
            collection=name,
            query=text,
            query_length=None if text is None else len(text),
            user_id=user_id,
            session_id=session_id,
            experiment=experiment,
            arm=arm,
            segment=segment,
            latency_ms=latency_ms,
            results=results,
        )
        rows = []
        if vector is not None and self.settings(name)[1] is not None:
            top1 = float(hits[0].score) if hits else None
            vec = np.asarray(vector, np.float32)
            rows.append((query_id, name, event.time, top1, len(hits), event.query_length, vec))
        self._writer_of().put((event, keep_text, rows, QUERIES))
        return query_id

    def watches_documents(self, name: str) -> bool:
        """Whether `name` is watched for corpus drift."""
        if self._db.path is None:
            return False
        watch = self.settings(name)[1]
        return watch is not None and watch.documents

    def record_documents(self, name: str, ids: Sequence[Any], vectors: Any) -> None:
        """Keep the embeddings of points just written to `name` if it is watched for corpus drift
        (`vectors`: the dense vectors, one row per id; anything else is left)."""
        if vectors is None or not self.watches_documents(name):
            return
        matrix = np.asarray(vectors, np.float32)
        if matrix.ndim != 2 or len(matrix) != len(ids):
            return  # not plain dense rows: nothing to watch
        now = time.time()
        rows = [(f"doc:{uuid.uuid4().hex}", name, now, None, 0, None, v) for v in matrix]
        self._writer_of().put((None, False, rows, DOCUMENTS))

    def maybe_record(
        self,
        name: str,
        col: Any,
        hits: Sequence[Any],
        latency_ms: float,
        *,
        text: str | None = None,
        vector: Any = None,
        embed_text: bool = False,
        user: str | None = None,
        session: str | None = None,
        segment: str | None = None,
    ) -> str | None:
        """Log a plain search if `name` logs and this one is sampled; its query id, or None.
        `embed_text`: the collection's dense embedder made the query from `text` (its embedding is
        kept when the collection is watched for drift)."""
        if self._db.path is None:
            return None
        logging, watch = self.settings(name)
        if logging["sample_rate"] <= 0 or random.random() >= logging["sample_rate"]:
            return None
        if watch is not None and vector is None and text is not None and embed_text:
            vector = _embedding(col, text)
        return self.record(
            name,
            hits,
            latency_ms,
            text=text,
            vector=vector,
            user_id=user,
            session_id=session,
            segment=segment,
            keep_text=logging["keep_text"],
        )

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        if self._mirror is not None:
            self._mirror.flush()

    def close(self) -> None:
        if self._mirror is not None:
            self._mirror.close()  # first: a comparison may still be running a candidate's search
        if self._writer is not None:
            self._writer.close()


def _embedding(col: Any, text: str) -> Any:
    """The query's dense embedding (the embedder's cache has it: the search just made it), or None
    for a collection without a dense embedder."""
    try:
        return col.embedder().encode([text])[0]
    except Exception:  # no dense vector or embedder: nothing to watch
        return None
