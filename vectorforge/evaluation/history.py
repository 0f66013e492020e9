"""The evaluation history: every recorded run, in an SQLite database in the data folder
(`evaluation/history.sqlite`), queryable with any SQLite client.

Tables (one row per ...):
- `runs`: run — run_id, created_at (ISO, UTC), goldset, goldset_version, collection, label, pinned
  (1 for a baseline), config, system and regressions as JSON;
- `metrics`: run x segment x metric — mean, low, high (the bootstrap interval), n;
- `query_scores`: run x query x metric — value (what paired tests compare).
SQLite serializes writers itself, so the server and the CLI may record into one history at once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vectorforge.errors import InvalidParameter, RunNotFound
from vectorforge.evaluation.goldsets import segment_order
from vectorforge.evaluation.sqlite import SQLiteFile

__all__ = ["EvalRun", "History", "SegmentScore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    goldset TEXT NOT NULL,
    goldset_version TEXT NOT NULL,
    collection TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    pinned INTEGER NOT NULL DEFAULT 0,
    config TEXT NOT NULL,
    system TEXT NOT NULL,
    regressions TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS runs_by_goldset ON runs (goldset, collection, created_at);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    segment TEXT NOT NULL,
    metric TEXT NOT NULL,
    mean REAL NOT NULL,
    low REAL NOT NULL,
    high REAL NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (run_id, segment, metric)
);
CREATE TABLE IF NOT EXISTS query_scores (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    qid TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, qid, metric)
);
"""


@dataclass(frozen=True)
class SegmentScore:
    """A metric's mean over a segment's queries, its bootstrap interval and the number of queries."""

    mean: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


@dataclass(frozen=True)
class EvalRun:
    """One recorded evaluation: what was measured, on what, how, and when."""

    run_id: str
    created_at: str
    goldset: str
    goldset_version: str
    collection: str
    segments: Mapping[str, Mapping[str, SegmentScore]]  # segment -> metric -> score; "all" first
    per_query: Mapping[str, Mapping[str, float]]  # qid -> metric -> value
    config: Mapping[str, Any] = field(default_factory=dict)
    system: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    pinned: bool = False
    regressions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, float]:
        """The overall mean of each metric."""
        return {m: s.mean for m, s in self.segments.get("all", {}).items()}

    def to_json(self, per_query: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "goldset": self.goldset,
            "goldset_version": self.goldset_version,
            "collection": self.collection,
            "label": self.label,
            "pinned": self.pinned,
            "metrics": self.metrics,
            "segments": {
                seg: {m: s.to_json() for m, s in scores.items()} for seg, scores in self.segments.items()
            },
            "config": dict(self.config),
            "system": dict(self.system),
            "regressions": self.regressions,
        }
        if per_query:
            out["per_query"] = {q: dict(v) for q, v in self.per_query.items()}
        return out


class History(SQLiteFile):
    """Recorded runs in one SQLite file. Safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)

    def record(self, run: EvalRun) -> None:
        """Store `run` (all of it or nothing)."""
        with self._connect(write=True) as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.created_at,
                    run.goldset,
                    run.goldset_version,
                    run.collection,
                    run.label,
                    int(run.pinned),
                    json.dumps(dict(run.config), sort_keys=True),
                    json.dumps(dict(run.system), sort_keys=True, default=str),
                    json.dumps(run.regressions),
                ),
            )
            db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (run.run_id, seg, m, s.mean, s.low, s.high, s.n)
                    for seg, scores in run.segments.items()
                    for m, s in scores.items()
                ],
            )
            db.executemany(
                "INSERT INTO query_scores VALUES (?, ?, ?, ?)",
                [(run.run_id, q, m, v) for q, values in run.per_query.items() for m, v in values.items()],
            )

    def get(self, run_id: str) -> EvalRun:
        with self._connect() as db:
            return self._read(db, run_id, with_scores=True)

    @staticmethod
    def _read(db: sqlite3.Connection, run_id: str, *, with_scores: bool) -> EvalRun:
        row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(
                f"no evaluation run {run_id!r}; `vectorforge eval history` lists them", run_id=run_id
            )
        metrics = db.execute(
            "SELECT segment, metric, mean, low, high, n FROM metrics WHERE run_id = ?", (run_id,)
        ).fetchall()
        scores = (
            db.execute("SELECT qid, metric, value FROM query_scores WHERE run_id = ?", (run_id,)).fetchall()
            if with_scores
            else []
        )
        return _run(row, metrics, scores)

    def runs(
        self,
        goldset: str | None = None,
        collection: str | None = None,
        *,
        limit: int | None = None,
        with_scores: bool = False,
        collections: Collection[str] | None = None,
    ) -> list[EvalRun]:
        """Recorded runs, oldest first (the newest `limit` of them); per-query scores only if asked.
        `collections`: only runs of these (what a scoped key may see), filtered before the limit."""
        where, args = _where(goldset=goldset, collection=collection)
        if collections is not None:
            names = sorted(collections)
            where += f" AND collection IN ({', '.join('?' * len(names))})" if names else " AND 0"
            args += names
        sql = f"SELECT run_id FROM runs {where} ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()[::-1]
            return [self._read(db, row[0], with_scores=with_scores) for row in rows]

    def latest(
        self, goldset: str, collection: str, *, pinned: bool = False, version: str | None = None
    ) -> EvalRun | None:
        """The newest run of `goldset` on `collection` (the newest pinned one with `pinned`; of
        gold set version `version` when given)."""
        where, args = _where(goldset=goldset, collection=collection, goldset_version=version)
        if pinned:
            where += " AND pinned = 1"
        with self._connect() as db:
            row = db.execute(
                f"SELECT run_id FROM runs {where} ORDER BY created_at DESC, rowid DESC LIMIT 1", args
            ).fetchone()
        return None if row is None else self.get(row[0])

    def goldset_names(self, collections: Collection[str] | None = None) -> set[str]:
        """The gold sets that have runs (on `collections`, when given)."""
        where, args = "", []
        if collections is not None:
            names = sorted(collections)
            where = f"WHERE collection IN ({', '.join('?' * len(names))})" if names else "WHERE 0"
            args = names
        with self._connect() as db:
            return {r[0] for r in db.execute(f"SELECT DISTINCT goldset FROM runs {where}", args)}

    def latest_each(self) -> list[EvalRun]:
        """The newest run of every gold set and collection (without per-query scores)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT goldset, collection, MAX(created_at) FROM runs GROUP BY goldset, collection"
            ).fetchall()
            ids = [
                db.execute(
                    "SELECT run_id FROM runs WHERE goldset = ? AND collection = ? AND created_at = ? "
                    "ORDER BY rowid DESC LIMIT 1",
                    row,
                ).fetchone()[0]
                for row in rows
            ]
            return [self._read(db, run_id, with_scores=False) for run_id in ids]

    def pin(self, run_id: str, pinned: bool = True) -> None:
        """Make `run_id` the baseline of its gold set and collection (unpinning the previous one)."""
        run = self.get(run_id)
        with self._connect(write=True) as db:
            if pinned:
                db.execute(
                    "UPDATE runs SET pinned = 0 WHERE goldset = ? AND collection = ?",
                    (run.goldset, run.collection),
                )
            db.execute("UPDATE runs SET pinned = ? WHERE run_id = ?", (int(pinned), run_id))

    def prune(
        self,
        *,
        keep_days: float | None = None,
        keep_last: int | None = None,
        goldset: str | None = None,
        collection: str | None = None,
    ) -> int:
        """Delete runs older than `keep_days` and beyond the newest `keep_last` of each gold set and
        collection (only those of `goldset` and `collection` when given); pinned runs stay. Returns
        how many were deleted."""
        if (keep_days is not None and keep_days < 0) or (keep_last is not None and keep_last < 1):
            raise InvalidParameter("retention keeps at least one run and zero or more days")
        doomed: set[str] = set()
        where, args = _where(goldset=goldset, collection=collection)
        with self._connect(write=True) as db:
            if keep_days is not None:
                cutoff = (datetime.now(UTC) - timedelta(days=keep_days)).isoformat(timespec="seconds")
                doomed |= {
                    r[0]
                    for r in db.execute(
                        f"SELECT run_id FROM runs {where} AND pinned = 0 AND created_at < ?", (*args, cutoff)
                    )
                }
            if keep_last is not None:
                newest_first = "ORDER BY created_at DESC, rowid DESC"
                rows = db.execute(
                    f"SELECT run_id, goldset, collection, pinned FROM runs {where} {newest_first}", args
                ).fetchall()
                seen: dict[tuple[str, str], int] = {}
                for run_id, goldset, collection, pinned in rows:
                    n = seen[goldset, collection] = seen.get((goldset, collection), 0) + 1
                    if n > keep_last and not pinned:
                        doomed.add(run_id)
            db.executemany("DELETE FROM runs WHERE run_id = ?", [(r,) for r in doomed])
        return len(doomed)


def _where(**equal: str | None) -> tuple[str, list[str]]:
    terms = [(k, v) for k, v in equal.items() if v is not None]
    if not terms:
        return "WHERE 1 = 1", []
    return "WHERE " + " AND ".join(f"{k} = ?" for k, _ in terms), [v for _, v in terms]


def _run(row: tuple[Any, ...], metrics: list[tuple[Any, ...]], scores: list[tuple[Any, ...]]) -> EvalRun:
    run_id, created_at, goldset, version, collection, label, pinned, config, system, regressions = row
    segments: dict[str, dict[str, SegmentScore]] = {}
    for seg, m, mean, low, high, n in metrics:
        segments.setdefault(seg, {})[m] = SegmentScore(mean, low, high, n)
    per_query: dict[str, dict[str, float]] = {}
    for qid, m, value in scores:
        per_query.setdefault(qid, {})[m] = value
    ordered = dict(sorted(segments.items(), key=lambda kv: segment_order(kv[0])))
    return EvalRun(
        run_id,
        created_at,
        goldset,
        version,
        collection,
        ordered,
        per_query,
        json.loads(config),
        json.loads(system),
        label,
        bool(pinned),
        json.loads(regressions),
    )
