"""Cases a review of the fault work found (each failed before its fix): retried moves, a failing
move log, a log that cannot rotate, a replica whose disk is full at open, a failover that cannot
record its leader, a collection that cannot be created."""

from __future__ import annotations

import contextlib
import errno
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.cluster import replicaset as replicaset_module
from vectorforge.storage import fsio

DIM = 4


def one(v: float = 1.0) -> np.ndarray:
    return np.full((1, DIM), v, dtype=np.float32)


def key_sharded(folder: Path) -> tuple[vf.Database, ShardedCollection, dict[int, str]]:
    db = vf.connect(str(folder))
    col = db.create_collection("k", dim=DIM, index="flat", shards=2, sharding="key", shard_key="t")
    assert isinstance(col, ShardedCollection)
    tenants: dict[int, str] = {}
    for name in "abcdefghij":
        tenants.setdefault(int(col.router.place([0], np.zeros((1, DIM)), [{"t": name}])[0]), name)
    return db, col, tenants


def where(col: ShardedCollection, pid: int) -> list[int]:
    return [i for i, s in enumerate(col.shards) if s.replicas[0].collection.get([pid])]


def test_a_retried_move_does_not_delete_a_newer_write(tmp_path: Path) -> None:
    db, col, tenant = key_sharded(tmp_path / "d")
    col.upsert([7], one(), [{"t": tenant[0], "v": 0}])
    # Client A moves 7 to shard 1 with key K; the delete on shard 0 fails (its log's disk is full).
    full = fsio.FaultPlan("write", 1, errno.ENOSPC, count=100, where="/shards/0/replog/")
    with fsio.inject(full), pytest.raises(vf.WriteNotDurable):
        col.upsert([7], one(), [{"t": tenant[1], "v": "A"}], idempotency_key="K")
    col.upsert([7], one(2), [{"t": tenant[0], "v": "B"}])  # client B moves it back: acknowledged
    assert where(col, 7) == [0]
    col.upsert([7], one(), [{"t": tenant[1], "v": "A"}], idempotency_key="K")  # A's retry
    assert [r.payload for r in col.get([7])] == [{"t": tenant[0], "v": "B"}] and col.count() == 1
    db.close()


def test_a_failed_move_is_settled_by_the_next_write(tmp_path: Path) -> None:
    db, col, tenant = key_sharded(tmp_path / "d")
    col.upsert([7], one(), [{"t": tenant[0]}])
    full = fsio.FaultPlan("write", 1, errno.ENOSPC, count=2, where="/shards/0/replog/")
    with fsio.inject(full), pytest.raises(vf.WriteNotDurable):
        col.upsert([7], one(), [{"t": tenant[1]}])  # on shard 1 now; the delete on 0 failed
    col.upsert([8], one(), [{"t": tenant[0]}])  # the disk is fine again: this write settles 7 first
    assert where(col, 7) == [1] and col.count() == 2
    db.close()


def test_a_move_log_that_cannot_mark_done_fails_no_write(tmp_path: Path) -> None:
    db, col, tenant = key_sharded(tmp_path / "d")
    col.upsert([1], one(), [{"t": tenant[0], "v": 1}])
    with fsio.inject(fsio.FaultPlan("write", 2, errno.ENOSPC, where="/moves/")) as plan:
        col.upsert([1], one(), [{"t": tenant[1], "v": 2}])  # the "done" mark fails: harmless
    assert plan.fired
    assert [r.payload for r in col.get([1])] == [{"t": tenant[1], "v": 2}] and where(col, 1) == [1]
    db.close()
    with vf.connect(str(tmp_path / "d")) as again:  # opening settles the move again: a no-op
        assert [r.payload["v"] for r in again.get_collection("k").get([1])] == [2]  # type: ignore[index]


def test_a_log_that_cannot_rotate_fails_the_write_before_logging_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = vf.connect(str(tmp_path / "d"))
    col = db.create_collection("r", dim=DIM, index="flat", replicas=3)
    col.upsert([1], one())
    monkeypatch.setattr(replicaset_module, "LOG_ROTATE_BYTES", 1)  # every write rotates first
    full = fsio.FaultPlan("write", 1, errno.ENOSPC, where="/replog/")
    with fsio.inject(full), pytest.raises(vf.CollectionFailed):
        col.upsert([2], one(), [{"v": "failed"}])
    db.close()
    monkeypatch.setattr(replicaset_module, "LOG_ROTATE_BYTES", 64 << 20)
    with vf.connect(str(tmp_path / "d")) as again:
        assert [r.id for r in again.get_collection("r").scroll().records] == [1]  # never appears


def test_a_replica_whose_disk_is_full_at_open_does_not_keep_the_collection_closed(tmp_path: Path) -> None:
    db = vf.connect(str(tmp_path / "d"))
    col = db.create_collection("r", dim=DIM, index="flat", replicas=3)
    col.upsert([1], one())
    with fsio.inject(fsio.FaultPlan("write", 1, errno.ENOSPC, where="/replicas/1/wal/")):
        col.upsert([2], one())  # acknowledged by replicas 0 and 2
    db.close()
    with fsio.inject(fsio.FaultPlan("write", 1, errno.ENOSPC, count=10**6, where="/replicas/1/")):
        again = vf.connect(str(tmp_path / "d"))
        reopened = again.get_collection("r")
        assert reopened.count(consistency="strong") == 2
    assert isinstance(reopened, ShardedCollection)
    reopened.upsert([3], one())  # the disk has room again: replica 1 catches up first
    assert [r.rseq for r in reopened.shards[0].replicas] == [3, 3, 3]
    again.close()


def test_a_failover_that_cannot_record_its_leader_changes_nothing(tmp_path: Path) -> None:
    db = vf.connect(str(tmp_path / "d"))
    col = db.create_collection("r", dim=DIM, index="flat", replicas=3)
    assert isinstance(col, ShardedCollection)
    col.upsert([1], one())
    rs = col.shards[0]
    rs.fail(0)
    broken = fsio.FaultPlan("write", 1, errno.EIO, where="replicaset.json")
    with fsio.inject(broken), pytest.raises(vf.WriteNotDurable, match="leader is unchanged"):
        col.upsert([2], one())
    assert (rs.leader, rs.epoch) == (0, 1)
    col.upsert([2], one())  # the next attempt fails over for real
    assert rs.leader != 0 and rs.epoch == 2
    db.close()


@pytest.mark.parametrize("nth", range(1, 8))
def test_a_collection_that_cannot_be_created_leaves_nothing(tmp_path: Path, nth: int) -> None:
    with vf.connect(str(tmp_path / "d")) as db:
        plan = fsio.FaultPlan("any", nth, errno.ENOSPC)
        with fsio.inject(plan), contextlib.suppress(vf.WriteNotDurable):
            db.create_collection("c", dim=DIM, shards=2, replicas=2)
        assert plan.fired
        if not db.has_collection("c"):
            db.create_collection("c", dim=DIM, shards=2, replicas=2)  # the name is free again
        assert db.get_collection("c").count() == 0


def test_idempotency_keys_survive_a_reshard(tmp_path: Path) -> None:
    """Before: the keys lived in the old layout's replicas, and a retry after a reshard applied again."""
    with vf.connect(str(tmp_path / "d")) as db:
        col = db.create_collection("h", dim=DIM, index="flat", shards=2, replicas=2)
        first = col.upsert([1, 2], np.ones((2, DIM)), [{"v": "A"}] * 2, idempotency_key="A-1")
        deleted = col.delete(ids=[2], idempotency_key="A-2").count
        col.reshard(3)
        col.upsert([1], one(2), [{"v": "B"}])  # a newer write of another client
        assert col.upsert([1, 2], np.ones((2, DIM)), [{"v": "A"}] * 2, idempotency_key="A-1") == first
        assert col.delete(ids=[1], idempotency_key="A-2").count == deleted == 1
        assert [r.payload for r in col.get([1, 2])] == [{"v": "B"}]
    with vf.connect(str(tmp_path / "d")) as db:  # and after a restart
        col = db.get_collection("h")
        assert col.upsert([1, 2], np.ones((2, DIM)), [{"v": "A"}] * 2, idempotency_key="A-1") == first
        assert [r.payload for r in col.get([1, 2])] == [{"v": "B"}]


def test_user_keys_are_read_back_from_part_keys() -> None:
    from vectorforge.cluster.layout import user_keys

    parts = [("k:0", 5), ("k:1", 9), ("d:0:d", 2), ("d:1:d", 1), ("m:1:x0", 1), ("a:b:0", 3), ("uuid", 7)]
    assert user_keys(parts) == {"k": 9, "d": 3, "a:b": 3}
