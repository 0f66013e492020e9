"""Shadow traffic: a share of live queries is also sent to a candidate (another collection or alias,
search configuration or model), off the request path; the candidate's answers are compared with
the primary's and stored, never returned.

Per query: rank-biased overlap (Webber, Moffat and Zobel 2010, extrapolated, p = 0.9 by default),
Jaccard of the two top-k sets, top-1 agreement, and the candidate's top-1 score and latency minus
the primary's. Aggregated per segment; queries whose overlap falls below `review_below` are queued
for judging. A shadow is defined once (`ShadowStore.create`) and kept in
`evaluation/events.sqlite` with its comparisons; `ShadowMirror` runs the candidates in one
background thread per shadow, behind a bounded queue that drops queries rather than slow the
primary down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from vectorforge.errors import ConflictError, InvalidParameter, ShadowNotFound
from vectorforge.evaluation.online.events import BatchWriter, hash_query
from vectorforge.evaluation.online.experiments import Arm, Name
from vectorforge.evaluation.sqlite import SQLiteFile

__all__ = [
    "Shadow",
    "ShadowComparison",
    "ShadowJob",
    "ShadowMirror",
    "ShadowStore",
    "compare_rankings",
    "rank_biased_overlap",
]

logger = logging.getLogger(__name__)

Probability = Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shadows (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    dropped INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS shadow_results (
    name TEXT NOT NULL,
    time REAL NOT NULL,
    query_id TEXT,
    query_hash TEXT,
    query TEXT,
    segment TEXT,
    rbo REAL NOT NULL,
    jaccard REAL NOT NULL,
    top1 INTEGER NOT NULL,
    score_delta REAL,
    primary_ms REAL NOT NULL,
    shadow_ms REAL NOT NULL,
    primary_ids TEXT NOT NULL,
    shadow_ids TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_results_name_time ON shadow_results (name, time);
"""


class Shadow(BaseModel):
    """A candidate that `share` of the searches on `collection` are mirrored to. The candidate
    answers the same request (its k and filter, unless the arm sets its own filter) with its own
    search configuration. `vectors`: also mirror searches by vector (a candidate with another model
    can only take text queries); `keep_text`: store the query text (else its hash only, as the
    search log), so the review queue can be judged; `review_below`: RBO under which a query is
    queued for review; `cpu_budget`: the share of the time the shadow's worker may spend on the
    candidate (it rests in between; what comes meanwhile waits in the queue of `queue` queries
    or is dropped), so that the primary keeps the cores."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    collection: Name
    candidate: Arm
    share: Probability = 1.0
    k: Annotated[StrictInt, Field(ge=1, le=1000)] = 10
    p: Annotated[StrictFloat | StrictInt, Field(gt=0, lt=1)] = 0.9
    review_below: Probability = 0.5
    vectors: StrictBool = True
    keep_text: StrictBool = False
    queue: Annotated[StrictInt, Field(ge=1, le=100_000)] = 1000
    cpu_budget: Annotated[StrictFloat | StrictInt, Field(gt=0, le=1)] = 0.2


def rank_biased_overlap(a: Sequence[Any], b: Sequence[Any], p: float = 0.9) -> float:
    """Extrapolated rank-biased overlap of two rankings (Webber et al. 2010, eq. 32: lists of
    uneven length, the unseen tail assumed to agree as the seen prefix does); 1 for identical
    rankings, 0 for disjoint ones; two empty rankings agree (1)."""
    if not 0 < p < 1:
        raise InvalidParameter(f"p must be between 0 and 1 (exclusive), got {p}")
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, n = len(short), len(long_)
    seen_s: set[Any] = set()
    seen_l: set[Any] = set()
    overlap = 0
    x = np.zeros(n + 1)  # x[d]: the overlap of the first d items (the short list stops at s)
    for d in range(1, n + 1):
        item_l = long_[d - 1]
        if d <= s:
            item_s = short[d - 1]
            if item_s == item_l:
                overlap += 1
            else:
                overlap += (item_s in seen_l) + (item_l in seen_s)
            seen_s.add(item_s)
        elif item_l in seen_s:
            overlap += 1
        seen_l.add(item_l)
        x[d] = overlap
    depths = np.arange(1, n + 1)
    weights = p**depths
    total = float(np.sum(x[1:] / depths * weights))
    tail = depths > s
    total += float(np.sum(x[s] * (depths[tail] - s) / (s * depths[tail]) * weights[tail]))
    value = (1 - p) / p * total + ((x[n] - x[s]) / n + x[s] / s) * p**n
    return float(min(1.0, max(0.0, value)))


@dataclass(frozen=True)
class ShadowComparison:
    """One query's primary and candidate answers, compared."""

    rbo: float
    jaccard: float
    top1: bool  # the same first result (both empty counts as agreement)
    score_delta: float | None  # candidate top-1 score - primary's; None when either is empty
    latency_delta_ms: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare_rankings(
    primary: Sequence[tuple[Any, float]],
    candidate: Sequence[tuple[Any, float]],
    *,
    k: int = 10,
    p: float = 0.9,
    primary_ms: float = 0.0,
    candidate_ms: float = 0.0,
) -> ShadowComparison:
    """Compare two rankings of (id, score), best first, at depth `k`."""
    if k < 1:
        raise InvalidParameter(f"k must be >= 1, got {k}")
    a = [i for i, _ in primary[:k]]
    b = [i for i, _ in candidate[:k]]
    union = set(a) | set(b)
    jaccard = 1.0 if not union else len(set(a) & set(b)) / len(union)
    top1 = (not a and not b) or (bool(a) and bool(b) and a[0] == b[0])
    delta = None if not a or not b else float(candidate[0][1]) - float(primary[0][1])
    return ShadowComparison(
        rbo=rank_biased_overlap(a, b, p),
        jaccard=jaccard,
        top1=top1,
        score_delta=delta,
        latency_delta_ms=candidate_ms - primary_ms,
    )


@dataclass(frozen=True)
class ShadowJob:
    """One mirrored search: how to ask the candidate, and what the primary answered."""

    shadow: Shadow
    primary: list[tuple[Any, float]]
    primary_ms: float
    text: str | None = None
    vector: Any = None
    filter: Any = None
    query_id: str | None = None
    segment: str | None = None
    time: float = 0.0


# Runs the candidate of a job: its ranking [(id, score)], best first.
Runner = Callable[[ShadowJob], list[tuple[Any, float]]]

_AGGREGATES = """
    COUNT(*), AVG(rbo), AVG(jaccard), AVG(top1), AVG(score_delta), AVG(shadow_ms - primary_ms),
    SUM(rbo < ?)
"""


def _aggregate(row: Sequence[Any]) -> dict[str, Any]:
    n, rbo, jac, top1, score, latency, review = row
    return {
        "queries": int(n),
        "rbo": rbo,
        "jaccard": jac,
        "top1_agreement": top1,
        "score_delta": score,
        "latency_delta_ms": latency,
        "low_overlap": int(review or 0),
    }


class ShadowStore(SQLiteFile):
    """Shadows and their comparisons. Safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)

    def create(self, shadow: Shadow, *, replace: bool = False) -> Shadow:
        """Store `shadow`; an existing one of that name is a conflict unless `replace` (its
        comparisons stay: a changed share or threshold does not make them wrong)."""
        with self._connect(write=True) as db:
            exists = db.execute("SELECT 1 FROM shadows WHERE name = ?", (shadow.name,)).fetchone()
            if exists and not replace:
                raise ConflictError(f"shadow {shadow.name!r} exists; pick another name")
            if exists:
                db.execute(
                    "UPDATE shadows SET spec = ? WHERE name = ?", (shadow.model_dump_json(), shadow.name)
                )
            else:
                db.execute(
                    "INSERT INTO shadows (name, spec, created_at) VALUES (?, ?, ?)",
                    (shadow.name, shadow.model_dump_json(), time.time()),
                )
        return shadow

    def get(self, name: str) -> Shadow:
        with self._connect() as db:
            row = db.execute("SELECT spec FROM shadows WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ShadowNotFound(f"no shadow {name!r}; GET /online/shadows lists them")
        return Shadow.model_validate_json(row[0])

    def all(self) -> list[Shadow]:
        with self._connect() as db:
            rows = db.execute("SELECT spec FROM shadows ORDER BY created_at, name").fetchall()
        return [Shadow.model_validate_json(r[0]) for r in rows]

    def delete(self, name: str) -> None:
        """Forget the shadow and its comparisons."""
        with self._connect(write=True) as db:
            if db.execute("DELETE FROM shadows WHERE name = ?", (name,)).rowcount == 0:
                raise ShadowNotFound(f"no shadow {name!r}; GET /online/shadows lists them")
            db.execute("DELETE FROM shadow_results WHERE name = ?", (name,))

    def add(self, name: str, rows: Sequence[tuple[Any, ...]], *, dropped: int = 0, failed: int = 0) -> None:
        """Comparisons (the columns of `shadow_results` after the name) and counter increments, in
        one transaction. A shadow deleted meanwhile takes nothing."""
        with self._connect(write=True) as db:
            if not db.execute("SELECT 1 FROM shadows WHERE name = ?", (name,)).fetchone():
                return
            db.executemany(
                "INSERT INTO shadow_results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(name, *r) for r in rows],
            )
            if dropped or failed:
                db.execute(
                    "UPDATE shadows SET dropped = dropped + ?, failed = failed + ? WHERE name = ?",
                    (dropped, failed, name),
                )

    def summary(self, name: str, *, start: float | None = None, end: float | None = None) -> dict[str, Any]:
        """Means over the comparisons of `name` (in [start, end) when given), overall and per
        segment, with the mirrored, dropped and failed counts."""
        shadow = self.get(name)
        where, args = self._window(name, start, end)
        with self._connect() as db:
            overall = db.execute(
                f"SELECT {_AGGREGATES} FROM shadow_results WHERE {where}",
                (shadow.review_below, *args),
            ).fetchone()
            segments = db.execute(
                f"SELECT COALESCE(segment, ''), {_AGGREGATES} FROM shadow_results WHERE {where} "
                "GROUP BY COALESCE(segment, '') ORDER BY 1",
                (shadow.review_below, *args),
            ).fetchall()
            dropped, failed = db.execute(
                "SELECT dropped, failed FROM shadows WHERE name = ?", (name,)
            ).fetchone()
        out = _aggregate(overall)
        out.update(dropped=int(dropped), failed=int(failed))
        out["segments"] = {s or "(none)": _aggregate(r) for s, *r in segments}
        return out

    def review(self, name: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The queries whose RBO fell below the shadow's `review_below`, lowest first, with both
        rankings: what a judge should look at (their text only if the shadow keeps it)."""
        shadow = self.get(name)
        with self._connect() as db:
            rows = db.execute(
                "SELECT time, query_id, query_hash, query, segment, rbo, jaccard, primary_ids, shadow_ids "
                "FROM shadow_results WHERE name = ? AND rbo < ? ORDER BY rbo, time LIMIT ?",
                (name, shadow.review_below, limit),
            ).fetchall()
        keys = ("time", "query_id", "query_hash", "query", "segment", "rbo", "jaccard")
        return [
            {
                **dict(zip(keys, r[:7], strict=True)),
                "primary": json.loads(r[7]),
                "candidate": json.loads(r[8]),
            }
            for r in rows
        ]

    def prune(self, before: float) -> int:
        """Delete comparisons older than `before` (retention); how many went."""
        with self._connect(write=True) as db:
            return int(db.execute("DELETE FROM shadow_results WHERE time < ?", (before,)).rowcount)

    @staticmethod
    def _window(name: str, start: float | None, end: float | None) -> tuple[str, list[Any]]:
        where: list[str] = ["name = ?"]
        args: list[Any] = [name]
        if start is not None:
            where.append("time >= ?")
            args.append(start)
        if end is not None:
            where.append("time < ?")
            args.append(end)
        return " AND ".join(where), args


def _lower_priority() -> None:
    """Give this thread the lowest CPU priority (Linux: a thread is a task with its own nice
    value), so that a candidate's search yields the cores to the primary's requests."""
    # not Linux, or not allowed: the queue and the budget still bound the work
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class ShadowMirror:
    """Mirrors searches to shadows: `offer` samples, queues and returns at once; a thread per shadow
    runs the candidate (`run`) and stores the comparison. A full queue drops the query (counted in
    the shadow's `dropped`), a candidate that fails is counted in `failed`; neither reaches the
    primary's caller."""

    def __init__(self, store: Callable[[], ShadowStore], run: Runner) -> None:
        self._store = store  # a callable: the store's file is opened on the first comparison
        self._run = run
        self._writers: dict[str, tuple[Shadow, BatchWriter[ShadowJob]]] = {}
        self._dropped: dict[str, int] = {}

    def offer(self, shadows: Sequence[Shadow], job: ShadowJob) -> int:
        """Queue `job` for each of `shadows` that samples it; how many took it."""
        taken = 0
        for shadow in shadows:
            if job.vector is not None and job.text is None and not shadow.vectors:
                continue
            if shadow.share < 1 and random.random() >= shadow.share:
                continue
            taken += self._writer(shadow).put(replace(job, shadow=shadow, time=job.time or time.time()))
        return taken

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every query queued so far is compared and stored."""
        for name, (_, writer) in list(self._writers.items()):
            writer.flush(timeout)
            if writer.dropped != self._dropped.get(name, 0):  # drops after the last comparison
                self._store().add(name, [], dropped=self._new_drops(name))

    def close(self) -> None:
        for _, writer in list(self._writers.values()):
            writer.close()
        self._writers.clear()

    def _writer(self, shadow: Shadow) -> BatchWriter[ShadowJob]:
        found = self._writers.get(shadow.name)
        if found is None or found[0].queue != shadow.queue:
            if found is not None:
                found[1].close(timeout=5)
            writer: BatchWriter[ShadowJob] = BatchWriter(
                partial(self._compare, shadow.name),
                queue_size=shadow.queue,
                batch=min(shadow.queue, 10),  # small: close and flush wait at most ten rests
                name=f"shadow-{shadow.name}",
            )
            found = (shadow, writer)
            self._writers[shadow.name] = found
        return found[1]

    def _compare(self, name: str, jobs: list[ShadowJob]) -> None:
        _lower_priority()
        rows, failed = [], 0
        for job, answer, ms in self._answers(jobs):
            if answer is None:
                failed += 1
                continue
            s = job.shadow
            c = compare_rankings(
                job.primary, answer, k=s.k, p=s.p, primary_ms=job.primary_ms, candidate_ms=ms
            )
            rows.append(
                (
                    job.time,
                    job.query_id,
                    None if job.text is None else hash_query(job.text),
                    job.text if s.keep_text else None,
                    job.segment,
                    c.rbo,
                    c.jaccard,
                    int(c.top1),
                    c.score_delta,
                    job.primary_ms,
                    ms,
                    json.dumps([i for i, _ in job.primary[: s.k]]),
                    json.dumps([i for i, _ in answer[: s.k]]),
                )
            )
        self._store().add(name, rows, dropped=self._new_drops(name), failed=failed)

    def _new_drops(self, name: str) -> int:
        """Drops since they were last stored (the writer counts them as they happen)."""
        found = self._writers.get(name)
        now = found[1].dropped if found else 0
        new, self._dropped[name] = now - self._dropped.get(name, 0), now
        return new

    def _answers(
        self, jobs: list[ShadowJob]
    ) -> Iterator[tuple[ShadowJob, list[tuple[Any, float]] | None, float]]:
        for job in jobs:
            began = time.perf_counter()
            try:
                answer = self._run(job)
            except Exception as exc:  # the candidate's failure is the shadow's, never the primary's
                logger.warning("shadow %s: the candidate failed: %s", job.shadow.name, exc)
                answer = None
            busy = time.perf_counter() - began
            yield job, answer, 1000 * busy if answer is not None else 0.0
            budget = job.shadow.cpu_budget
            if budget < 1:  # rest so that the busy share of the time stays within the budget
                time.sleep(busy * (1 - budget) / budget)
