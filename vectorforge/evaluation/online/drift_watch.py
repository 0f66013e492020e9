"""Watching a collection's queries for drift: the server keeps the embeddings of the watched
collections' logged queries, holds a reference window (a gold set's queries, or the first full
window of live queries, frozen), and on a schedule compares the newest window with it (`drift`:
classifier AUC and MMD on the embeddings; PSI on top-1 score, query length and zero results).
Every check is recorded; an alarm goes to the log and the watch's webhook.

Corpus drift the same way: with `documents`, the embeddings of the points the server writes to
the collection are kept too, the first full window of them is frozen as the documents' reference,
and each check compares the newest window of inserted documents with it.

Kept in `evaluation/events.sqlite`: `drift_watches` (one a collection), `query_vectors` (the
embeddings of watched collections' logged queries and, with `documents`, inserted documents:
opt-in, since an embedding says something of its text), `drift_references` (one per collection
and kind) and `drift_checks`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StrictFloat, StrictInt, StrictStr

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.online.drift import DriftConfig, detect_drift, signal_drift
from vectorforge.evaluation.sqlite import SQLiteFile

QUERIES, DOCUMENTS = "queries", "documents"

__all__ = [
    "DOCUMENTS",
    "QUERIES",
    "DriftStore",
    "DriftWatch",
    "Reference",
    "check_drift",
    "due",
    "goldset_reference",
    "signals_of",
]

log = logging.getLogger("vectorforge.evaluation")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_watches (
    collection TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS query_vectors (
    query_id TEXT PRIMARY KEY,
    collection TEXT NOT NULL,
    kind TEXT NOT NULL,
    time REAL NOT NULL,
    top1_score REAL,
    n_results INTEGER NOT NULL,
    query_length INTEGER,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS query_vectors_by_time ON query_vectors (collection, kind, time);
CREATE TABLE IF NOT EXISTS drift_references (
    collection TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    until REAL NOT NULL,
    vectors BLOB NOT NULL,
    dim INTEGER NOT NULL,
    signals TEXT NOT NULL,
    PRIMARY KEY (collection, kind)
);
CREATE TABLE IF NOT EXISTS drift_checks (
    collection TEXT NOT NULL,
    time REAL NOT NULL,
    alarm INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drift_checks_by_time ON drift_checks (collection, time);
"""


class DriftWatch(BaseModel):
    """`PUT /online/drift/{collection}`: watch its queries. `reference_goldset`: the reference is
    that gold set's queries (embedded and searched when the watch is set); without it, the first
    `window` logged queries are frozen as the reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Annotated[StrictInt, Field(ge=20, le=10_000)] = 500
    every: Annotated[StrictStr, Field(max_length=16)] = "1h"
    reference_goldset: Annotated[StrictStr, Field(min_length=1, max_length=200)] | None = None
    webhook: HttpUrl | None = None
    auc_threshold: Annotated[StrictFloat | StrictInt, Field(ge=0.5, lt=1)] = 0.55
    alpha: Annotated[StrictFloat | StrictInt, Field(gt=0, lt=1)] = 0.01
    documents: bool = False  # watch the embeddings of inserted documents too (corpus drift)

    @property
    def seconds(self) -> float:
        from vectorforge.evaluation.schedule import (
            parse_interval,
        )  # schedule -> continuous -> workspace -> here

        return parse_interval(self.every)

    def config(self) -> DriftConfig:
        return DriftConfig(
            window=self.window, auc_threshold=float(self.auc_threshold), alpha=float(self.alpha)
        )


class Reference(BaseModel):
    """A reference window: its source, its embeddings and its 1-D signals."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str
    created_at: float
    until: float  # live windows compared with it start after this time
    vectors: Any  # np.ndarray (n, dim)
    signals: dict[str, list[float]]


def signals_of(
    top1: list[float | None], n_results: list[int], lengths: list[int | None]
) -> dict[str, list[float]]:
    """The 1-D signals PSI watches: top-1 score (of searches that found something), query length
    (in characters, where known) and zero results (0/1)."""
    return {
        "top1_score": [float(s) for s in top1 if s is not None],
        "query_length": [float(n) for n in lengths if n is not None],
        "zero_result": [float(n == 0) for n in n_results],
    }


class DriftStore(SQLiteFile):
    """Watches, query embeddings, references and checks. Safe to share between threads and processes."""

    def __init__(self, path: Any) -> None:
        super().__init__(path, _SCHEMA)

    def set_watch(self, collection: str, watch: DriftWatch) -> None:
        watch.seconds  # noqa: B018 - an interval it cannot parse is refused now
        with self._connect(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO drift_watches VALUES (?, ?)", (collection, watch.model_dump_json())
            )

    def unwatch(self, collection: str) -> None:
        with self._connect(write=True) as db:
            db.execute("DELETE FROM drift_watches WHERE collection = ?", (collection,))
            db.execute("DELETE FROM drift_references WHERE collection = ?", (collection,))
            db.execute("DELETE FROM query_vectors WHERE collection = ?", (collection,))

    def watches(self) -> dict[str, DriftWatch]:
        with self._connect() as db:
            rows = db.execute("SELECT collection, spec FROM drift_watches").fetchall()
        return {c: DriftWatch.model_validate_json(s) for c, s in rows}

    def add_vectors(
        self,
        rows: list[tuple[str, str, float, float | None, int, int | None, np.ndarray]],
        kind: str = QUERIES,
    ) -> None:
        """(id, collection, time, top1 score, results, query length, embedding) rows of `kind`
        ("queries": a logged search's; "documents": an inserted point's, without the signals)."""
        with self._connect(write=True) as db:
            db.executemany(
                "INSERT OR IGNORE INTO query_vectors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], r[1], kind, *r[2:6], np.asarray(r[6], np.float32).tobytes()) for r in rows],
            )

    def window(
        self, collection: str, n: int, *, after: float = 0.0, oldest: bool = False, kind: str = QUERIES
    ) -> tuple[np.ndarray, dict[str, list[float]], float]:
        """The newest (or, with `oldest`, the first) `n` embeddings of `kind` after `after`:
        (vectors, signals, time of the newest one)."""
        order = "ASC" if oldest else "DESC"
        with self._connect() as db:
            rows = db.execute(
                "SELECT time, top1_score, n_results, query_length, vector FROM query_vectors "
                f"WHERE collection = ? AND kind = ? AND time > ? ORDER BY time {order} LIMIT ?",
                (collection, kind, after, n),
            ).fetchall()
        if not rows:
            return np.empty((0, 0), np.float32), signals_of([], [], []), after
        vectors = np.stack([np.frombuffer(r[4], np.float32) for r in rows])
        signals = signals_of([r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
        return vectors, signals, max(r[0] for r in rows)

    def set_reference(self, collection: str, ref: Reference, kind: str = QUERIES) -> None:
        vectors = np.asarray(ref.vectors, np.float32)
        with self._connect(write=True) as db:
            db.execute(
                "INSERT OR REPLACE INTO drift_references VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    collection,
                    kind,
                    ref.source,
                    ref.created_at,
                    ref.until,
                    vectors.tobytes(),
                    vectors.shape[1],
                    json.dumps(ref.signals),
                ),
            )

    def reference(self, collection: str, kind: str = QUERIES) -> Reference | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT source, created_at, until, vectors, dim, signals FROM drift_references "
                "WHERE collection = ? AND kind = ?",
                (collection, kind),
            ).fetchone()
        if row is None:
            return None
        source, created, until, blob, dim, signals = row
        vectors = np.frombuffer(blob, np.float32).reshape(-1, dim)
        return Reference(
            source=source, created_at=created, until=until, vectors=vectors, signals=json.loads(signals)
        )

    def record(self, collection: str, report: dict[str, Any]) -> None:
        with self._connect(write=True) as db:
            db.execute(
                "INSERT INTO drift_checks VALUES (?, ?, ?, ?)",
                (collection, report["time"], int(bool(report.get("alarm"))), json.dumps(report)),
            )

    def checks(self, collection: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recorded checks, newest last (the newest `limit`)."""
        where, args = ("WHERE collection = ?", [collection]) if collection else ("", [])
        with self._connect() as db:
            rows = db.execute(
                f"SELECT report FROM drift_checks {where} ORDER BY time DESC LIMIT ?", [*args, limit]
            ).fetchall()
        return [json.loads(r[0]) for r in reversed(rows)]

    def last_check(self, collection: str) -> dict[str, Any] | None:
        found = self.checks(collection, limit=1)
        return found[0] if found else None


def check_drift(store: DriftStore, collection: str, now: float | None = None) -> dict[str, Any]:
    """Compare the newest window of `collection`'s queries (and, if watched, of its inserted
    documents) with the reference, freezing the first full window as the reference where there is
    none; record the outcome unless every side is still waiting for a full window."""
    watch = store.watches().get(collection)
    if watch is None:
        raise InvalidParameter(
            f"collection {collection!r} is not watched for drift; PUT /online/drift/{collection}"
        )
    now = time.time() if now is None else now
    out: dict[str, Any] = {"collection": collection, "time": now, "window": watch.window}
    queries = _side(store, collection, watch, QUERIES, now)
    out.update(queries)
    sides = [queries]
    if watch.documents:
        out["documents"] = _side(store, collection, watch, DOCUMENTS, now)
        sides.append(out["documents"])
    out["alarm"] = any(side["alarm"] for side in sides)
    if all(side["status"] == "waiting" for side in sides):
        return out
    store.record(collection, out)
    if out["alarm"]:
        from vectorforge.evaluation.alerts import post_json

        for kind, side in zip((QUERIES, DOCUMENTS), sides, strict=False):
            if side["alarm"]:
                auc = next(t for t in side["embeddings"]["tests"] if t["name"] == "classifier_auc")
                log.warning(
                    "%s drift on %s: classifier AUC %.3f against %s",
                    kind,
                    collection,
                    auc["statistic"],
                    side["reference"],
                )
        if watch.webhook is not None:
            post_json({"event": "vectorforge.online.drift", **out}, str(watch.webhook))
    return out


def _side(store: DriftStore, collection: str, watch: DriftWatch, kind: str, now: float) -> dict[str, Any]:
    """One kind's comparison: {"status": "waiting" | "reference frozen" | "checked", "alarm", ...}."""
    ref = store.reference(collection, kind)
    if ref is None:
        vectors, signals, newest = store.window(collection, watch.window, oldest=True, kind=kind)
        if len(vectors) < watch.window:
            return {"status": "waiting", "have": len(vectors), "alarm": False}
        frozen = Reference(
            source="frozen window", created_at=now, until=newest, vectors=vectors, signals=signals
        )
        store.set_reference(collection, frozen, kind)
        return {"status": "reference frozen", "alarm": False, "reference": frozen.source}
    vectors, signals, _ = store.window(collection, watch.window, after=ref.until, kind=kind)
    if len(vectors) < watch.window:
        return {"status": "waiting", "have": len(vectors), "alarm": False, "reference": ref.source}
    config = watch.config()
    embeddings = detect_drift(ref.vectors[-watch.window :], vectors, config)
    present = {
        k
        for k in signals
        if len(signals[k]) >= config.min_rows and len(ref.signals.get(k, [])) >= config.min_rows
    }
    one_d = (
        signal_drift({k: ref.signals[k] for k in present}, {k: signals[k] for k in present}, config)
        if present
        else None
    )
    return {
        "status": "checked",
        "reference": ref.source,
        "alarm": embeddings.alarm,
        "embeddings": embeddings.to_json(),
        "signals": None if one_d is None else one_d.to_json(),
    }


def due(store: DriftStore, now: float | None = None) -> list[str]:
    """The watched collections whose last recorded check is older than their interval."""
    now = time.time() if now is None else now
    out = []
    for collection, watch in store.watches().items():
        last = store.last_check(collection)
        if last is None or now - float(last["time"]) >= watch.seconds:
            out.append(collection)
    return out


def goldset_reference(col: Any, goldset: Any, k: int = 10) -> Reference:
    """A reference window from a gold set's queries: embedded by the collection's embedder and
    searched, for the 1-D signals (top-1 score, results, query length)."""
    texts = list(goldset.queries.values())
    vectors = np.asarray(col.embedder().encode(texts), np.float32)
    hits = [col.search(v, k=k, with_payload=False) for v in vectors]
    now = time.time()
    return Reference(
        source=f"goldset {goldset.name}@{goldset.version}",
        created_at=now,
        until=now,
        vectors=vectors,
        signals=signals_of(
            [h[0].score if h else None for h in hits], [len(h) for h in hits], [len(t) for t in texts]
        ),
    )
