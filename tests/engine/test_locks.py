"""The locks that order reads and writes: nobody starves, and the two groups never mix."""

from __future__ import annotations

import threading
import time

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
