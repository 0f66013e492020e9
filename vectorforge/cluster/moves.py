"""The move log: upserts that move an id to another shard survive a crash between their two steps.

Under key or semantic sharding an upsert may place an id on another shard than the one holding it:
the new copy is written first, then the other shards' copies are deleted. A crash between the two
would leave two copies (count 2, scroll 1, reads returning the stale one). So the ids of a batch
that live on another shard are logged first (each with the shard it goes to, fsynced), and the move
is marked done once their old copies are deleted; ids that live nowhere else need no record.
Opening the layout resolves every move not marked done, newest first, each id once:

- the id is on its new shard: the write landed, and the copies elsewhere are deleted (completed);
- it is not: the write never landed, and nothing changes (undone; it was never acknowledged).

Newest first, because a "done" mark is not fsynced (losing one is harmless: resolving a finished
move deletes nothing), so an older move of the same id may look pending too; the newest decides.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from vectorforge.errors import VectorForgeError
from vectorforge.storage import WriteAheadLog
from vectorforge.types import PointId

__all__ = ["MoveLog"]

ROTATE_BYTES = 4 * 1024 * 1024
logger = logging.getLogger(__name__)


class MoveLog:
    """Begun and finished moves of one layout (`<layout folder>/moves/`)."""

    def __init__(self, folder: Path) -> None:
        self._log = WriteAheadLog(folder)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._seq = 0
        begun: dict[int, tuple[list[PointId], list[int]]] = {}
        for record in self._log.replay(after_seq=0):
            self._seq = max(self._seq, int(record["seq"]))
            if record["op"] == "move":
                begun[int(record["seq"])] = (record["ids"], record["shards"])
            else:
                begun.pop(int(record["of"]), None)
        self._pending = [begun[seq] for seq in sorted(begun, reverse=True)]  # newest first
        self._log.open_for_append(self._seq + 1)

    def resolve(
        self, holds: Callable[[int, list[PointId]], set[PointId]], drop: Callable[[PointId, int], None]
    ) -> int:
        """Finish or undo the moves a crash interrupted. `holds(shard, ids)` says which of `ids`
        shard `shard` has; `drop(id, shard)` deletes the id from every shard but `shard`. Returns
        how many ids were moved to completion."""
        seen: set[PointId] = set()
        completed = 0
        for ids, shards in self._pending:
            by_shard: dict[int, list[PointId]] = {}
            for pid, shard in zip(ids, shards, strict=True):
                if pid not in seen:
                    seen.add(pid)
                    by_shard.setdefault(shard, []).append(pid)
            for shard, part in by_shard.items():
                for pid in holds(shard, part):
                    drop(pid, shard)
                    completed += 1
        with self._lock:
            self._pending = []
            self._reset()
        return completed

    def begin(self, ids: Sequence[PointId], shards: Sequence[int]) -> int:
        """Log a move durably before any shard is written; returns its number for `done`."""
        with self._lock:
            self._seq += 1
            self._log.append({"seq": self._seq, "op": "move", "ids": list(ids), "shards": list(shards)})
            self._in_flight += 1
            return self._seq

    def done(self, move: int) -> None:
        """Mark a move finished. Best effort, never raises: the shards already hold the outcome,
        and a mark that is lost only makes opening settle a finished move again (a no-op)."""
        with self._lock:
            self._in_flight -= 1
            try:
                self._seq += 1
                self._log.append({"seq": self._seq, "op": "done", "of": move}, sync=False)
                if not self._in_flight and self._log.current_bytes > ROTATE_BYTES:
                    self._reset()
            except (VectorForgeError, OSError) as exc:
                logger.warning("the move log could not mark move %d done (harmless): %s", move, exc)

    def _reset(self) -> None:
        """Nothing in flight: start an empty file and drop the old ones."""
        self._log.rotate(self._seq + 1)
        self._log.drop_through(self._seq)

    def close(self) -> None:
        self._log.close()
