"""A server stopped (SIGTERM) or killed (SIGKILL) under write load keeps every acknowledged write, and
loses unacknowledged ones whole; and readers racing writers only ever see consistent points."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import vectorforge as vf
from tests.serverproc import ServerProcess, start_server

DIM = 4
BATCH = 20  # points per upsert
WRITERS = 4

pytestmark = pytest.mark.slow


def _batch(writer: int, number: int) -> tuple[list[int], np.ndarray, list[dict[str, Any]]]:
    """The points of one upsert: ids, vectors filled with one value, payloads that name the batch."""
    first = (writer * 100_000 + number) * BATCH
    ids = list(range(first, first + BATCH))
    value = float(writer * 100_000 + number)  # exact in float32
    vectors = np.full((BATCH, DIM), value, dtype=np.float32)
    return ids, vectors, [{"w": writer, "b": number, "j": j, "v": value} for j in range(BATCH)]


@dataclass
class Load:
    """Writer threads that upsert distinct batches until the server goes away or `stop` is set."""

    url: str
    collection: str
    start_at: int = 0  # first batch number, so that a second load after a restart adds new batches
    stop: threading.Event = field(default_factory=threading.Event)
    acked: list[tuple[int, int]] = field(default_factory=list)  # (writer, batch) the server acknowledged
    failed: list[tuple[int, int]] = field(default_factory=list)  # refused by an injected disk fault
    sent: list[tuple[int, int]] = field(default_factory=list)  # every batch sent, acknowledged or not
    errors: list[BaseException] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def _write(self, writer: int) -> None:
        with vf.connect(self.url, retries=0, timeout=30) as db:
            col = db.get_collection(self.collection)
            number = self.start_at
            while not self.stop.is_set():
                ids, vectors, payloads = _batch(writer, number)
                self.sent.append((writer, number))
                try:
                    col.upsert(ids, vectors, payloads)
                except vf.ServerUnavailable:
                    return  # the server is going away: this batch may or may not have landed
                except (vf.WriteNotDurable, vf.CollectionFailed):  # a drill's disk fault: it must not land
                    self.failed.append((writer, number))
                    number += 1
                    continue
                except vf.VectorForgeError as exc:  # anything else is a failure of the test
                    self.errors.append(exc)
                    return
                self.acked.append((writer, number))
                number += 1

    def start(self) -> Load:
        self.threads = [threading.Thread(target=self._write, args=(w,), daemon=True) for w in range(WRITERS)]
        for thread in self.threads:
            thread.start()
        return self

    def wait_for(self, batches: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < batches:
            assert time.monotonic() < deadline, f"only {len(self.acked)} batches written in {timeout}s"
            assert not self.errors, self.errors
            time.sleep(0.02)

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a writer thread hangs"
        assert not self.errors, self.errors


def _check_batches(
    url: str,
    collection: str,
    acked: list[tuple[int, int]],
    sent: list[tuple[int, int]],
    failed: list[tuple[int, int]] = (),  # type: ignore[assignment]
) -> int:
    """Every acknowledged batch is there in full; every batch that failed is absent; every other
    batch is there in full or not at all. Returns the number of batches found."""
    found = 0
    with vf.connect(url, timeout=60) as db:
        col = db.get_collection(collection)
        for writer, number in sorted(set(sent)):
            ids, vectors, payloads = _batch(writer, number)
            records = col.get(ids, with_vectors=True)
            if (writer, number) in acked:
                assert len(records) == BATCH, f"acknowledged batch {(writer, number)} lost points"
            elif (writer, number) in failed:
                assert not records, f"batch {(writer, number)} failed with an I/O error yet is there"
            else:
                assert len(records) in (0, BATCH), f"batch {(writer, number)} half written: {len(records)}"
            for record, vector, payload in zip(records, vectors, payloads, strict=False):
                assert record.payload == payload
                assert np.array_equal(np.asarray(record.vector, dtype=np.float32), vector)
            found += bool(records)
        assert col.count() == found * BATCH
    return found


def _new_collection(url: str, name: str) -> None:
    with vf.connect(url) as db:
        db.create_collection(name, dim=DIM, metric="l2", index="flat")


def _restart(server: ServerProcess) -> ServerProcess:
    return start_server(server.data)


def _stop_under_load(
    tmp_path: Path,
    stopping: Callable[[ServerProcess], None],
    rounds: int,
    faults: str | None = None,
) -> list[tuple[int, int]]:
    """Rounds of: a write load, a stop, a restart and a check. With `faults` (a VECTORFORGE_FAULTS
    plan) the server's disk fails as the plan says during the load. Returns the failed batches."""
    env = {"VECTORFORGE_FAULTS": faults} if faults else None
    server = start_server(tmp_path / "data", env=env)
    _new_collection(server.url, "load")
    acked: list[tuple[int, int]] = []
    sent: list[tuple[int, int]] = []
    failed: list[tuple[int, int]] = []
    try:
        for round_ in range(rounds):
            load = Load(server.url, "load", start_at=round_ * 10_000).start()
            load.wait_for(40)  # the signal lands in the middle of the load
            stopping(server)
            load.join()
            acked += load.acked
            sent += load.sent
            failed += load.failed
            assert load.acked, "no write was acknowledged"
            server = start_server(server.data, env=env)
            found = _check_batches(server.url, "load", acked, sent, failed)
            assert found >= len(acked)
    finally:
        server.stop()
    return failed


def test_sigterm_under_load_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    def terminate(server: ServerProcess) -> None:
        server.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = server.proc.wait(timeout=30)
        assert time.monotonic() - started < 30
        log = server.output()
        # A graceful stop: the application shut down (the database was closed), nothing was forced.
        assert "Application shutdown complete" in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert code in (0, -signal.SIGTERM), f"exit code {code}\n{log[-3000:]}"

    _stop_under_load(tmp_path, terminate, rounds=1)


def test_sigterm_lets_a_request_in_progress_finish(tmp_path: Path) -> None:
    # An upsert into HNSW that is still running when SIGTERM arrives; a faster machine gets a bigger one.
    for attempt, n in enumerate((8_000, 24_000, 64_000)):
        if _sigterm_during_upsert(tmp_path / f"data{attempt}", n):
            return
    raise AssertionError("every upsert was over before the signal: make them bigger")


def _sigterm_during_upsert(data: Path, n: int, dim: int = 64) -> bool:
    """SIGTERM the server while an upsert of n points runs; False if the upsert finished first."""
    server = start_server(data)
    try:
        with vf.connect(server.url) as db:
            db.create_collection("slow", dim=dim, metric="l2", index="hnsw")
        vectors = np.random.default_rng(0).random((n, dim), dtype=np.float32)
        outcome: dict[str, Any] = {}

        def upsert() -> None:
            with vf.connect(server.url, retries=0) as db:
                try:
                    outcome["seq"] = db.get_collection("slow").upsert(list(range(n)), vectors)
                    outcome["done"] = time.monotonic()
                except vf.VectorForgeError as exc:
                    outcome["error"] = exc

        thread = threading.Thread(target=upsert)
        started = time.monotonic()
        thread.start()
        time.sleep(0.5)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=120)
        thread.join(timeout=120)
        assert "seq" in outcome, f"{outcome} after {time.monotonic() - started:.1f}s"
        if outcome["done"] <= signalled:
            return False
        server = _restart(server)
        with vf.connect(server.url) as db:
            col = db.get_collection("slow")
            assert col.count() == n
            record = col.get([n - 1], with_vectors=True)[0]
            assert np.array_equal(np.asarray(record.vector, dtype=np.float32), vectors[-1])
        return True
    finally:
        server.stop()


def test_sigterm_exit_code_is_zero(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    assert server.stop(signal.SIGTERM) == 0, server.output()


def test_sigkill_under_load_keeps_every_acknowledged_batch(tmp_path: Path) -> None:
    def kill(server: ServerProcess) -> None:
        server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(timeout=30) == -signal.SIGKILL

    _stop_under_load(tmp_path, kill, rounds=2)


def test_sigkill_under_load_with_a_failing_disk(tmp_path: Path) -> None:
    """The same, while every 23rd write to the disk fails with ENOSPC (rolled back, refused)."""

    def kill(server: ServerProcess) -> None:
        server.proc.send_signal(signal.SIGKILL)
        assert server.proc.wait(timeout=30) == -signal.SIGKILL

    failed = _stop_under_load(tmp_path, kill, rounds=2, faults="write:ENOSPC:5:23")
    assert failed, "the drill injected no fault"


# -- readers racing writers ---------------------------------------------------------------------------


def test_a_search_waiting_behind_a_long_write_does_not_stall_the_server(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        # An upsert into HNSW big enough to still run when /healthz is asked; a faster machine gets
        # a bigger write instead of a test that cannot tell.
        for attempt, n in enumerate((8_000, 24_000, 64_000)):
            verdict = _healthz_during_write(server.url, f"slow{attempt}", n)
            if verdict is not None:
                assert verdict < 0.5, f"/healthz took {verdict:.2f}s while a search waited behind a write"
                return
        raise AssertionError("every write was over before /healthz was asked: make them bigger")
    finally:
        server.stop()


def _healthz_during_write(url: str, name: str, n: int, dim: int = 64) -> float | None:
    """Seconds /healthz took while a search waited behind an upsert of n points; None if the write
    was already over when /healthz was asked."""
    with vf.connect(url) as db:
        db.create_collection(name, dim=dim, metric="l2", index="hnsw").upsert(
            [0], np.zeros((1, dim), np.float32)
        )
    vectors = np.random.default_rng(0).random((n, dim), dtype=np.float32)
    done: dict[str, float] = {}

    def upsert() -> None:
        with vf.connect(url, retries=0) as db:
            db.get_collection(name).upsert(list(range(1, n + 1)), vectors)
            done["upsert"] = time.monotonic()

    def search() -> None:
        with vf.connect(url, retries=0) as db:
            col = db.get_collection(name)  # before the write starts: only the search itself waits
            time.sleep(0.4)
            col.search(vectors[0], k=3)
            done["search"] = time.monotonic()

    threads = [threading.Thread(target=upsert), threading.Thread(target=search)]
    for thread in threads:
        thread.start()
    time.sleep(0.6)
    with httpx.Client() as client:
        started = time.monotonic()
        assert client.get(url + "/healthz", timeout=30).status_code == 200
        took = time.monotonic() - started
    for thread in threads:
        thread.join(timeout=120)
    assert set(done) == {"upsert", "search"}
    return took if done["upsert"] - started > 0.5 else None


def _consistent(vector: Any, payload: dict[str, Any] | None) -> bool:
    """A point written as vector [x] * DIM with payload {"v": x, ...}."""
    return payload is not None and bool(
        np.all(np.asarray(vector, dtype=np.float32) == np.float32(payload["v"]))
    )


def test_readers_see_consistent_points_while_writers_upsert(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    duration = 3.0
    try:
        with vf.connect(server.url) as db:
            db.create_collection("race", dim=DIM, metric="l2", index="hnsw", max_segment_points=400)
        stop = threading.Event()
        errors: list[str] = []
        final: dict[int, float] = {}  # id -> last acknowledged value
        final_lock = threading.Lock()
        reads = [0] * WRITERS
        writes = [0] * WRITERS

        def writer(w: int) -> None:
            rng = np.random.default_rng(w)
            try:
                with vf.connect(server.url, timeout=30) as db:
                    col = db.get_collection("race")
                    mine: list[int] = []
                    step = 0
                    while not stop.is_set():
                        step += 1
                        value = float(w * 1_000_000 + step)
                        fresh = [w * 1_000_000 + step * 10 + j for j in range(5)]
                        again = [int(i) for i in rng.choice(mine, size=min(5, len(mine)), replace=False)]
                        ids = fresh + again  # new points and overwrites of this writer's earlier ones
                        vectors = np.full((len(ids), DIM), value, dtype=np.float32)
                        col.upsert(ids, vectors, [{"v": value, "w": w} for _ in ids])
                        mine += fresh
                        with final_lock:
                            final.update(dict.fromkeys(ids, value))
                        writes[w] += 1
            except Exception as exc:
                errors.append(f"writer {w}: {type(exc).__name__}: {exc}")

        def reader(r: int) -> None:
            rng = np.random.default_rng(100 + r)
            last_count = 0
            try:
                with vf.connect(server.url, timeout=30) as db:
                    col = db.get_collection("race")
                    while not stop.is_set():
                        count = col.count()
                        if count < last_count:
                            errors.append(f"reader {r}: count went down from {last_count} to {count}")
                        last_count = count
                        query = np.full(DIM, float(rng.integers(0, 4_000_000)), dtype=np.float32)
                        for hit in col.search(query, k=10, with_vectors=True):
                            if not _consistent(hit.vector, hit.payload):
                                errors.append(f"reader {r}: search hit {hit}")
                        w = int(rng.integers(0, WRITERS))
                        flt = {"must": [{"key": "w", "match": w}]}
                        for hit in col.search(query, k=5, filter=flt, with_vectors=True):
                            if not _consistent(hit.vector, hit.payload) or hit.payload["w"] != w:
                                errors.append(f"reader {r}: filtered hit {hit}")
                        page = col.scroll(limit=50, with_vectors=True)
                        for record in page.records:
                            if not _consistent(record.vector, record.payload):
                                errors.append(f"reader {r}: scrolled {record}")
                        ids = [
                            int(w * 1_000_000 + s * 10 + j) for s in rng.integers(1, 200, 5) for j in (0, 4)
                        ]
                        for record in col.get(ids, with_vectors=True):
                            if not _consistent(record.vector, record.payload):
                                errors.append(f"reader {r}: got {record}")
                        reads[r] += 1
            except Exception as exc:
                errors.append(f"reader {r}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
        threads += [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        time.sleep(duration)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a client thread hangs"
        assert not errors, errors[:10]
        assert min(writes) >= 3 and min(reads) >= 3, (writes, reads)

        # After the race: every point holds the last value its writer had acknowledged.
        with vf.connect(server.url) as db:
            col = db.get_collection("race")
            assert col.count() == len(final)
            ids = sorted(final)
            for start in range(0, len(ids), 1000):
                chunk = ids[start : start + 1000]
                records = col.get(chunk, with_vectors=True)
                assert [r.id for r in records] == chunk
                for record in records:
                    assert record.payload is not None and record.payload["v"] == final[int(record.id)]
                    assert _consistent(record.vector, record.payload)
    finally:
        server.stop()
