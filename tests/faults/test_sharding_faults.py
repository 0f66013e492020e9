"""Sharded writes under faults: one id, one copy, at every moment; idempotent retries."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection

HERE = Path(__file__).parent
DIM = 4


def test_a_move_cut_short_by_a_crash_is_finished_on_open(tmp_path: Path) -> None:
    """Before: the id stayed on both shards (count 2, scroll 1, get and search the stale copy)."""
    done = subprocess.run(
        [sys.executable, str(HERE / "mover.py"), str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 137, done.stdout + done.stderr[-2000:]
    with vf.connect(str(tmp_path / "d")) as db:
        col = db.get_collection("k")
        assert isinstance(col, ShardedCollection)
        assert col.count() == 1
        assert [r.payload["v"] for r in col.get([7])] == [2]  # type: ignore[index]
        assert [r.id for r in col.scroll().records] == [7]
        hits = col.search(np.ones(DIM, dtype="float32"), k=5)
        assert [(h.id, h.payload["v"]) for h in hits] == [(7, 2)]  # type: ignore[index]
        assert [shard.replicas[0].collection.count() for shard in col.shards] == [0, 1]


@pytest.mark.parametrize("sharding", ["key", "semantic"])
def test_concurrent_writers_of_one_id_leave_exactly_one_copy(sharding: str) -> None:
    """Before: two concurrent upserts of id 7 under different keys were both acknowledged and the id
    vanished (each deleted the other's copy)."""
    db = vf.connect()
    options = {"shard_key": "tenant"} if sharding == "key" else {}
    col = db.create_collection("k", dim=DIM, index="flat", shards=4, sharding=sharding, **options)
    rng = np.random.default_rng(0)
    if sharding == "semantic":
        col.upsert(list(range(100, 300)), rng.standard_normal((200, DIM)), [{"tenant": "z"}] * 200)
    errors: list[BaseException] = []

    def writer(tenant: str, sign: float) -> None:
        try:
            for _ in range(60):
                col.upsert(
                    [7], np.full((1, DIM), sign) + rng.standard_normal((1, DIM)) * 0.01, [{"tenant": tenant}]
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t, s)) for t, s in (("a", 1.0), ("q", -1.0), ("m", 0.5))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    copies = sum(len(shard.replicas[0].collection.get([7])) for shard in col.shards)
    assert copies == 1
    assert len(col.get([7])) == 1


def test_a_retried_write_with_the_same_key_applies_once(tmp_path: Path) -> None:
    with vf.connect(str(tmp_path / "d")) as db:
        col = db.create_collection("h", dim=DIM, index="flat", shards=3, replicas=3)
        first = col.upsert([1, 2, 3], np.ones((3, DIM)), [{"v": 1}] * 3, idempotency_key="k-1")
        col.upsert([1], np.ones((1, DIM)), [{"v": 2}])  # another client's newer write
        assert col.upsert([1, 2, 3], np.ones((3, DIM)), [{"v": 1}] * 3, idempotency_key="k-1") == first
        assert col.get([1])[0].payload == {"v": 2}  # the retry did not overwrite it
        assert col.delete(ids=[2, 3], idempotency_key="d-1").count == 2
    with vf.connect(str(tmp_path / "d")) as db:  # the keys are durable: a retry after a restart
        col = db.get_collection("h")
        assert col.upsert([1, 2, 3], np.ones((3, DIM)), [{"v": 1}] * 3, idempotency_key="k-1") == first
        col.upsert([2], np.ones((1, DIM)), [{"v": 3}])
        assert col.delete(ids=[2, 3], idempotency_key="d-1").count == 2  # the first answer, nothing deleted
        assert [r.payload for r in col.get([1, 2])] == [{"v": 2}, {"v": 3}]


def test_a_write_that_fails_on_the_new_layout_abandons_the_reshard_not_the_write(tmp_path: Path) -> None:
    """Before: a write that reached the old layout but failed on the new one reverted at the switch."""
    import errno

    from vectorforge.storage import fsio

    with vf.connect(str(tmp_path / "d")) as db:
        col = db.create_collection("r", dim=DIM, index="flat", shards=2)
        assert isinstance(col, ShardedCollection)
        col.upsert(list(range(50)), np.ones((50, DIM)), [{"v": 0}] * 50)
        started = threading.Event()
        original = col._copy

        def copy_then_write(records: list[vf.Record], new: object) -> None:
            original(records, new)  # type: ignore[arg-type]
            if not started.is_set():
                started.set()
                # The next layout's disk fails for one write (shards-1 is the new layout's folder).
                plan = fsio.FaultPlan("write", 1, errno.ENOSPC, where="/shards-1/")
                threading.Thread(target=_write_under, args=(col, plan)).start()
                deadline = time.monotonic() + 10
                while not col._writes._readers_waiting:  # the write waits behind this batch
                    assert time.monotonic() < deadline, "the writer never came"
                    time.sleep(0.001)

        col._copy = copy_then_write  # type: ignore[method-assign]
        with pytest.raises(vf.UnavailableError, match="resharding 'r' was abandoned"):
            col.reshard(3, batch_size=5)
        assert col.get([0])[0].payload == {"v": 9}  # the write stayed
        assert len(col.shards) == 2 and col.count() == 50
        col.reshard(3)  # and a second attempt succeeds
        assert col.get([0])[0].payload == {"v": 9} and col.count() == 50


def _write_under(col: ShardedCollection, plan: object) -> None:
    from vectorforge.storage import fsio

    plan.thread = threading.get_ident()  # type: ignore[attr-defined]  # this write only, not the copy's
    with fsio.inject(plan):  # type: ignore[arg-type]
        col.upsert([0], np.ones((1, DIM)), [{"v": 9}])
