"""Events of live traffic and where they are kept: `evaluation/events.sqlite` in the data folder,
beside the evaluation history, queryable with any SQLite client.

The schema (one JSON object an event, told apart by `type`):
- `search`: query_id, time, collection, the query's hash (its text only if the logger keeps text),
  user_id / session_id, experiment and arm, segment, latency_ms, the ranked results with scores
  (and, for an interleaved list, the team that placed each);
- `click` (query_id, id, rank from 1), `dwell` (query_id, id, dwell_s), `reformulation`
  (query_id, the next query's id), `success` (query_id, a value: a conversion as the user defines it).

Tables: `searches` (one row a search, its results as JSON) and `feedback` (one row a click, dwell,
reformulation or success). A batch is stored whole or not at all; a search is known by its
query_id, so sending one again is a no-op (clients retry).
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, TypeAdapter
from pydantic import ValidationError as PydanticError

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.sqlite import SQLiteFile

__all__ = [
    "ClickEvent",
    "DwellEvent",
    "Event",
    "BatchWriter",
    "EventStore",
    "ReformulationEvent",
    "ResultItem",
    "SearchEvent",
    "SuccessEvent",
    "hash_query",
    "parse_events",
    "read_jsonl",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

Text = Annotated[StrictStr, Field(min_length=1, max_length=256)]
Number = StrictFloat | StrictInt
Time = Annotated[Number, Field(ge=0)]  # seconds since the epoch, UTC


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    query_id: Text
    time: Time = Field(default_factory=time.time)


class ResultItem(BaseModel):
    """One ranked result: its id, score, and the arm that placed it in an interleaved list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Text | StrictInt
    score: Number = 0.0
    team: Text | None = None


class SearchEvent(_Event):
    type: Literal["search"] = "search"
    collection: Text
    query: Annotated[StrictStr, Field(max_length=10_000)] | None = None
    query_hash: Text | None = None
    query_length: Annotated[StrictInt, Field(ge=0)] | None = None  # characters: a signal drift watches
    user_id: Text | None = None
    session_id: Text | None = None
    experiment: Text | None = None
    arm: Text | None = None
    segment: Text | None = None
    latency_ms: Annotated[Number, Field(ge=0)] = 0.0
    results: list[ResultItem] = Field(default_factory=list, max_length=10_000)


class ClickEvent(_Event):
    type: Literal["click"] = "click"
    id: Text | StrictInt
    rank: Annotated[StrictInt, Field(ge=1)]


class DwellEvent(_Event):
    type: Literal["dwell"] = "dwell"
    id: Text | StrictInt
    dwell_s: Annotated[Number, Field(ge=0)]


class ReformulationEvent(_Event):
    type: Literal["reformulation"] = "reformulation"
    next_query_id: Text | None = None


class SuccessEvent(_Event):
    type: Literal["success"] = "success"
    value: Number = 1.0


Event = Annotated[
    SearchEvent | ClickEvent | DwellEvent | ReformulationEvent | SuccessEvent, Field(discriminator="type")
]
_EVENTS: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

_SCHEMA = """
CREATE TABLE IF NOT EXISTS searches (
    query_id TEXT PRIMARY KEY,
    time REAL NOT NULL,
    collection TEXT NOT NULL,
    query_hash TEXT,
    query_text TEXT,
    query_length INTEGER,
    user_id TEXT,
    session_id TEXT,
    experiment TEXT,
    arm TEXT,
    segment TEXT,
    latency_ms REAL NOT NULL,
    n_results INTEGER NOT NULL,
    results TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS searches_by_time ON searches (collection, time);
CREATE INDEX IF NOT EXISTS searches_by_experiment ON searches (experiment, arm);
CREATE TABLE IF NOT EXISTS feedback (
    query_id TEXT NOT NULL,
    type TEXT NOT NULL,
    time REAL NOT NULL,
    doc_id TEXT,
    rank INTEGER,
    dwell_s REAL,
    value REAL,
    next_query_id TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_query ON feedback (query_id, type);
CREATE INDEX IF NOT EXISTS feedback_by_time ON feedback (time);
CREATE TABLE IF NOT EXISTS logging (
    collection TEXT PRIMARY KEY,
    sample_rate REAL NOT NULL,
    keep_text INTEGER NOT NULL
);
"""


def hash_query(text: str) -> str:
    """The stored stand-in for a query's text: SHA-256 of its NFKC-normalized, case-folded,
    whitespace-collapsed form, so the same query typed twice hashes alike."""
    normal = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(normal.encode()).hexdigest()[:32]


def parse_events(raw: Any) -> list[Event]:
    """A list of event objects, checked: one bad event refuses the batch, naming it."""
    if not isinstance(raw, list):
        raise InvalidParameter("events come as a JSON list of event objects")
    try:
        return _EVENTS.validate_python(raw)
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidParameter(f"event {where}: {first['msg']}") from exc


def read_jsonl(path: str | Path) -> list[Event]:
    """Every event of a JSONL file (one object a line), checked before any is stored."""
    rows: list[Any] = []
    lines: list[int] = []  # the line of each row, to name it in an error
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidParameter(f"{path}, line {n}: not JSON ({exc.msg})") from exc
            lines.append(n)
    try:
        return _EVENTS.validate_python(rows)
    except PydanticError as exc:
        first = exc.errors()[0]
        index, *rest = first["loc"]
        where = ".".join(str(p) for p in rest)
        raise InvalidParameter(f"{path}, line {lines[int(index)]}: {where}: {first['msg']}") from exc


class EventStore(SQLiteFile):
    """Search and feedback events in one SQLite file. Safe to share between threads and processes.

    `keep_text`: store the query's text; by default only its hash is kept (the PII rule)."""

    def __init__(self, path: str | Path, *, keep_text: bool = False) -> None:
        super().__init__(path, _SCHEMA)
        self.keep_text = keep_text

    def add(self, events: Iterable[Event], *, keep_text: bool | None = None) -> dict[str, int]:
        """Store `events`, all or none: {"searches": new searches, "duplicates": searches already
        stored (a retry), "feedback": feedback events}."""
        keep = self.keep_text if keep_text is None else keep_text
        searches, feedback = [], []
        for event in events:
            if isinstance(event, SearchEvent):
                searches.append(_search_row(event, keep))
            else:
                feedback.append(_feedback_row(event))
        with self._connect(write=True) as db:
            before = db.total_changes
            db.executemany("INSERT OR IGNORE INTO searches VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", searches)
            new = db.total_changes - before
            db.executemany("INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?)", feedback)
        return {"searches": new, "duplicates": len(searches) - new, "feedback": len(feedback)}

    def prune(self, older_than_s: float, now: float | None = None) -> dict[str, int]:
        """Retention: delete searches and feedback older than `older_than_s` seconds."""
        if not older_than_s > 0:
            raise InvalidParameter(f"retention must be a positive number of seconds, not {older_than_s}")
        cutoff = (time.time() if now is None else now) - older_than_s
        with self._connect(write=True) as db:
            searches = db.execute("DELETE FROM searches WHERE time < ?", (cutoff,)).rowcount
            feedback = db.execute("DELETE FROM feedback WHERE time < ?", (cutoff,)).rowcount
        return {"searches": searches, "feedback": feedback}

    def searches(
        self,
        *,
        collection: str | None = None,
        experiment: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[dict[str, Any]]:
        """Stored searches in [start, end), oldest first, results parsed."""
        where, args = _window(collection=collection, experiment=experiment, start=start, end=end)
        with self._connect() as db:
            cur = db.execute(f"SELECT * FROM searches {where} ORDER BY time, query_id", args)
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for row in rows:
            row["results"] = json.loads(row["results"])
        return rows

    def feedback(self, query_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The feedback events of these searches, oldest first."""
        out: list[dict[str, Any]] = []
        with self._connect() as db:
            for i in range(0, len(query_ids), 500):  # SQLite caps a statement's parameters
                chunk = list(query_ids[i : i + 500])
                cur = db.execute(
                    f"SELECT * FROM feedback WHERE query_id IN ({','.join('?' * len(chunk))}) ORDER BY time",
                    chunk,
                )
                names = [d[0] for d in cur.description]
                out.extend(dict(zip(names, row, strict=True)) for row in cur.fetchall())
        return out

    def clicked_pairs(self, collection: str | None = None) -> list[dict[str, Any]]:
        """Every (query, clicked result) pair: the query's hash and (if kept) text, the result,
        how often it was clicked, at what mean rank, and the longest dwell; most clicked first."""
        where, args = ("AND s.collection = ?", [collection]) if collection else ("", [])
        with self._connect() as db:
            rows = db.execute(
                "SELECT s.query_hash, MAX(s.query_text), c.doc_id, COUNT(*), AVG(c.rank), "
                "(SELECT MAX(d.dwell_s) FROM feedback d JOIN searches t ON t.query_id = d.query_id "
                " WHERE d.type = 'dwell' AND d.doc_id = c.doc_id AND t.query_hash = s.query_hash) "
                "FROM feedback c JOIN searches s ON s.query_id = c.query_id "
                f"WHERE c.type = 'click' AND s.query_hash IS NOT NULL {where} "
                "GROUP BY s.query_hash, c.doc_id ORDER BY COUNT(*) DESC, s.query_hash, c.doc_id",
                args,
            ).fetchall()
        names = ("query_hash", "query", "id", "clicks", "mean_rank", "max_dwell_s")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def set_logging(self, collection: str, sample_rate: float, keep_text: bool = False) -> None:
        """Have the server log this share of `collection`'s searches (0 turns it off); `keep_text`
        keeps the query's text, not only its hash."""
        if not 0 <= sample_rate <= 1:
            raise InvalidParameter(f"sample_rate must be from 0 to 1, not {sample_rate}")
        with self._connect(write=True) as db:
            row = (collection, float(sample_rate), int(keep_text))
            db.execute("INSERT OR REPLACE INTO logging VALUES (?, ?, ?)", row)

    def logging(self, collection: str) -> dict[str, Any]:
        """{"sample_rate", "keep_text"} of `collection` (off by default: rate 0)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT sample_rate, keep_text FROM logging WHERE collection = ?", (collection,)
            ).fetchone()
        if row is None:
            return {"sample_rate": 0.0, "keep_text": False}
        return {"sample_rate": float(row[0]), "keep_text": bool(row[1])}

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            searches = db.execute("SELECT COUNT(*) FROM searches").fetchone()[0]
            feedback = db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
        return {"searches": int(searches), "feedback": int(feedback)}


def _search_row(event: SearchEvent, keep_text: bool) -> tuple[Any, ...]:
    digest = event.query_hash or (hash_query(event.query) if event.query is not None else None)
    results = [[str(r.id), float(r.score), *([r.team] if r.team else [])] for r in event.results]
    return (
        event.query_id,
        float(event.time),
        event.collection,
        digest,
        event.query if keep_text else None,
        event.query_length
        if event.query_length is not None
        else (None if event.query is None else len(event.query)),
        event.user_id,
        event.session_id,
        event.experiment,
        event.arm,
        event.segment,
        float(event.latency_ms),
        len(event.results),
        json.dumps(results),
    )


def _feedback_row(event: Event) -> tuple[Any, ...]:
    doc = getattr(event, "id", None)
    return (
        event.query_id,
        event.type,
        float(event.time),
        None if doc is None else str(doc),
        getattr(event, "rank", None),
        getattr(event, "dwell_s", None),
        getattr(event, "value", None),
        getattr(event, "next_query_id", None),
    )


def _window(**given: Any) -> tuple[str, list[Any]]:
    terms, args = [], []
    for key, value in given.items():
        if value is None:
            continue
        if key == "start":
            terms.append("time >= ?")
        elif key == "end":
            terms.append("time < ?")
        else:
            terms.append(f"{key} = ?")
        args.append(value)
    return ("WHERE " + " AND ".join(terms)) if terms else "", args


class BatchWriter(Generic[T]):
    """Writes made off the request path: `put` queues an item and returns at once; a writer thread
    hands them to `write` in batches. A full queue drops the item (and counts it) rather than slow
    the caller down; a batch that fails to write is counted and logged. `flush` waits until every
    item queued so far is written."""

    def __init__(
        self,
        write: Callable[[list[T]], None],
        *,
        queue_size: int = 10_000,
        batch: int = 500,
        name: str = "events",
    ) -> None:
        self.dropped = 0
        self.failed = 0
        self._write = write
        self._queue: queue.Queue[tuple[T] | None] = queue.Queue(maxsize=queue_size)
        self._batch = batch
        self._thread = threading.Thread(target=self._run, name=f"vectorforge-{name}-writer", daemon=True)
        self._thread.start()

    def put(self, item: T) -> bool:
        """Queue `item`; False if the queue was full and it was dropped."""
        try:
            self._queue.put_nowait((item,))
        except queue.Full:
            self.dropped += 1  # racy between callers, as a gauge may be
            return False
        return True

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every item queued before the call is written (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the writer."""
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            got = [first]
            while first is not None and len(got) < self._batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                got.append(nxt)
                if nxt is None:
                    break
            items = [x[0] for x in got if x is not None]
            try:
                if items:
                    self._write(items)
            except Exception:  # a full disk: counted and logged; searches go on
                self.failed += len(items)
                logger.exception("could not write %d queued items", len(items))
            finally:
                for _ in got:
                    self._queue.task_done()
            if got[-1] is None:
                return
