"""The locks that order reads and writes: nobody starves, and the two groups never mix."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import pytest

from vectorforge.engine.locks import RWLock, TurnLock


def wait_until(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_reader_that_waited_goes_before_the_next_write() -> None:
    lock, order = RWLock(), []
    lock.acquire_write()

    def reader() -> None:
        with lock.read():
            order.append("read")

    t = threading.Thread(target=reader)
    t.start()
    wait_until(lambda: lock._readers_waiting == 1)
    lock.release_write()
    lock.acquire_write()  # the same writer, straight back: the waiting reader goes first
    order.append("write")
    lock.release_write()
    t.join()
    assert order == ["read", "write"]


def test_a_waiting_writer_holds_back_new_readers() -> None:
    lock, order = RWLock(), []
    lock.acquire_read()

    def writer() -> None:
        with lock.write():
            order.append("write")

    def late_reader() -> None:
        with lock.read():
            order.append("late read")

    w = threading.Thread(target=writer)
    w.start()
    wait_until(lambda: lock._writers_waiting == 1)
    r = threading.Thread(target=late_reader)
    r.start()
    wait_until(lambda: lock._readers_waiting == 1)
    lock.release_read()
    w.join()
    r.join()
    assert order == ["write", "late read"]


def test_turn_lock_groups_never_mix_and_both_get_turns() -> None:
    lock = TurnLock()
    inside = [0, 0]
    mixed: list[tuple[int, int]] = []
    done = [0, 0]
    guard = threading.Lock()
    stop = threading.Event()

    def member(group: int) -> None:
        while not stop.is_set():
            with lock.group(group):
                with guard:
                    inside[group] += 1
                    if inside[1 - group]:
                        mixed.append(tuple(inside))  # type: ignore[arg-type]
                time.sleep(0.0005)
                with guard:
                    inside[group] -= 1
                    done[group] += 1

    threads = [threading.Thread(target=member, args=(g,)) for g in (0, 0, 1, 1)]
    for t in threads:
        t.start()
    wait_until(lambda: min(done) >= 50, 30)
    stop.set()
    for t in threads:
        t.join()
    assert not mixed


# -- Ctrl-C while waiting: the counters go back, nobody hangs afterwards ----------------------------
def _interrupted(wait: Callable[[], None]) -> None:
    """Run `wait` (which blocks) in the main thread and send it SIGINT, as Ctrl-C would. To the
    main thread itself: a process-wide signal may land on another thread (Ray's, FAISS's, from
    earlier tests), whose handler only sets a flag that a main thread asleep on a lock never reads."""
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            wait()
    finally:
        timer.cancel()


def _in_thread(call: Callable[[], None], seconds: float = 5.0) -> None:
    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked after an interrupted wait"


def test_an_interrupted_writer_leaves_no_phantom_that_blocks_readers() -> None:
    lock = RWLock()
    lock.acquire_read()  # a long search
    _interrupted(lock.acquire_write)
    assert lock._writers_waiting == 0
    _in_thread(lambda: (lock.acquire_read(), lock.release_read()))  # new readers are not held back
    lock.release_read()
    _in_thread(lambda: (lock.acquire_write(), lock.release_write()))


def test_an_interrupted_reader_does_not_hold_back_the_next_writer() -> None:
    lock = RWLock()
    lock.acquire_write()
    _interrupted(lock.acquire_read)
    assert lock._readers_waiting == 0
    lock.release_write()
    assert lock._admitted == 0  # no reader that left is let in ahead of the next writer
    _in_thread(lambda: (lock.acquire_write(), lock.release_write()))
    _in_thread(lambda: (lock.acquire_read(), lock.release_read()))


def test_an_interrupted_turn_leaves_the_other_group_free() -> None:
    lock = TurnLock()
    lock.acquire(0)
    _interrupted(lambda: lock.acquire(1))
    assert lock._waiting == [0, 0]
    _in_thread(lambda: (lock.acquire(0), lock.release(0)))  # group 0 is not held back by a ghost
    lock.release(0)
    _in_thread(lambda: (lock.acquire(1), lock.release(1)))
