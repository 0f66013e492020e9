"""A hybrid logical clock: timestamps that follow wall time but never repeat or go backwards.

A timestamp is `physical_ms << 16 | logical`. Every write of a collection takes one from the same
clock, so timestamps order writes across all its shards; a read's guarantee timestamp is taken from
it too.
"""

from __future__ import annotations

import threading
import time

__all__ = ["HybridLogicalClock", "ts_to_seconds"]

LOGICAL_BITS = 16


def ts_to_seconds(ts: int) -> float:
    return (ts >> LOGICAL_BITS) / 1000.0


class HybridLogicalClock:
    """Strictly increasing timestamps; `observe` folds in a timestamp seen elsewhere (a restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def now(self) -> int:
        with self._lock:
            physical = int(time.time() * 1000) << LOGICAL_BITS
            self._last = physical if physical > self._last else self._last + 1
            return self._last

    def observe(self, ts: int) -> None:
        with self._lock:
            self._last = max(self._last, ts)
