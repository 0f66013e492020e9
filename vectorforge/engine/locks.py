"""A readers-writer lock: searches run side by side (FAISS releases the GIL); writes run alone.

Guards are plain objects with __enter__/__exit__ rather than @contextmanager generators: a search
takes the read lock once per call, and the generator machinery cost more than the search's own
Python work.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator

__all__ = ["RWLock", "StripedLock", "TurnLock"]


class RWLock:
    """Many readers or one writer, taking turns fairly.

    Waiting writers block new readers, so writes cannot starve; and the readers that waited behind
    a writer go in before the next writer does, so a writer that writes back to back cannot starve
    reads either (without this, one busy writer pushed search latency from 0.4 ms to 60 ms at the
    median and 450 ms at p99: bench/write_path.py).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._readers_waiting = 0
        self._admitted = 0  # readers let in past waiting writers when the last writer left
        self._writer = False
        self._writers_waiting = 0
        self._read_guard = _ReadGuard(self)
        self._write_guard = _WriteGuard(self)

    def read(self) -> _ReadGuard:
        """`with lock.read():` shared access."""
        return self._read_guard

    def write(self) -> _WriteGuard:
        """`with lock.write():` exclusive access."""
        return self._write_guard

    def acquire_read(self) -> None:
        with self._cond:
            if self._writer or self._writers_waiting:
                self._readers_waiting += 1
                try:  # Ctrl-C while waiting must not leave this reader counted as waiting
                    while self._writer or (self._writers_waiting and not self._admitted):
                        self._cond.wait()
                except BaseException:
                    # It may have been admitted, and will not come in: writers must not wait for it.
                    self._admitted = min(self._admitted, self._readers_waiting - 1)
                    self._cond.notify_all()
                    raise
                finally:
                    self._readers_waiting -= 1
                if self._admitted:
                    self._admitted -= 1
            self._readers += 1

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0 and self._writers_waiting:  # only a writer waits for no readers
                self._cond.notify_all()

    def acquire_write(self) -> None:
        with self._cond:
            self._writers_waiting += 1
            try:  # Ctrl-C while waiting must not leave a phantom writer that blocks every reader
                while self._writer or self._readers or self._admitted:
                    self._cond.wait()
            except BaseException:
                self._cond.notify_all()  # readers held back by this writer may go now
                raise
            finally:
                self._writers_waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._admitted = self._readers_waiting  # they go before the next writer
            self._cond.notify_all()


class _ReadGuard:
    __slots__ = ("_lock",)

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_read()

    def __exit__(self, *exc: object) -> None:
        lock = self._lock
        with lock._cond:
            lock._readers -= 1
            if lock._readers == 0 and lock._writers_waiting:  # only a writer waits for no readers
                lock._cond.notify_all()


class _WriteGuard:
    __slots__ = ("_lock",)

    def __init__(self, lock: RWLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire_write()

    def __exit__(self, *exc: object) -> None:
        self._lock.release_write()


class TurnLock:
    """Two groups that take turns: any number of one group inside together, never both groups.

    A sharded collection's writers form one group and its `strong` readers the other, so a strong
    read never sees a batch that is on some shards and not yet on others. A group that arrives while
    the other is inside gets the next turn, so neither can starve the other.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = [0, 0]
        self._waiting = [0, 0]
        self._turn = 0
        self._guards = (_TurnGuard(self, 0), _TurnGuard(self, 1))

    def group(self, which: int) -> _TurnGuard:
        """`with lock.group(0):` or `with lock.group(1):`."""
        return self._guards[which]

    def acquire(self, which: int) -> None:
        other = 1 - which
        with self._cond:
            if self._inside[other]:
                self._turn = which  # ours is next: the other group lets no newcomer in
            self._waiting[which] += 1
            try:  # Ctrl-C while waiting must not leave this group counted as waiting
                while self._inside[other] or (self._waiting[other] and self._turn == other):
                    self._cond.wait()
            except BaseException:
                self._cond.notify_all()
                raise
            finally:
                self._waiting[which] -= 1
            self._inside[which] += 1
            if self._waiting[other]:
                self._turn = other  # the group that waited goes next: ours lets no newcomer in

    def release(self, which: int) -> None:
        with self._cond:
            self._inside[which] -= 1
            if not self._inside[which]:
                self._cond.notify_all()


class _TurnGuard:
    __slots__ = ("_lock", "_which")

    def __init__(self, lock: TurnLock, which: int) -> None:
        self._lock = lock
        self._which = which

    def __enter__(self) -> None:
        self._lock.acquire(self._which)

    def __exit__(self, *exc: object) -> None:
        self._lock.release(self._which)


class StripedLock:
    """Per-key mutual exclusion over a fixed set of stripes: writers of the same id wait for each
    other, writers of different ids (almost always) do not. A batch takes its stripes in ascending
    order, so two batches never deadlock."""

    def __init__(self, stripes: int = 1024, key: Callable[[Hashable], int] | None = None) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]
        self._key = key or hash

    @contextlib.contextmanager
    def hold(self, keys: Iterable[Hashable]) -> Iterator[None]:
        chosen = sorted({self._key(k) % len(self._locks) for k in keys})
        taken: list[threading.Lock] = []
        try:
            for i in chosen:
                self._locks[i].acquire()
                taken.append(self._locks[i])
            yield
        finally:
            for lock in reversed(taken):
                lock.release()
