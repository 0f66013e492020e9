"""One SQLite file shared by threads and processes: a connection per thread, WAL (readers never
block the writer), transactions that a writer begins IMMEDIATE. The evaluation history and the
online event store are both built on it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vectorforge.errors import InvalidParameter

__all__ = ["SQLiteFile"]


class SQLiteFile:
    """A database file with `schema` applied when it is opened."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(schema)

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections are not shared between threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard) never block a writer
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=FULL")  # what was stored survives a power loss
            self._local.db = db
        return db

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction on this thread's connection: a writer takes the write lock at once
        (IMMEDIATE), a reader reads a snapshot (DEFERRED) and, under WAL, never waits for a writer."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def sql(self, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a read-only SQL query: (column names, rows)."""
        uri = f"file:{self.path}?mode=ro"
        with sqlite3.connect(uri, uri=True) as db:
            try:
                cursor = db.execute(query)
            except sqlite3.Error as exc:
                raise InvalidParameter(f"SQL query failed: {exc}") from exc
            return [d[0] for d in cursor.description or []], cursor.fetchall()

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
