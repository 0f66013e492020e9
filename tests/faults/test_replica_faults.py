"""Replicas under injected faults: a failed apply, a lagging leader, failover without the data.

Each test is a case that broke a promise before (issue 8); the faults are real: a replica's
write-ahead log fails through the storage seam (ENOSPC on its folder only), or a replica stops
applying (`ReplicaSet.lag`), or goes down (`fail`).
"""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.cluster.replicaset import ReplicaSet
from vectorforge.storage import fsio

DIM = 4


def vecs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def replicated(folder: Path | None, shards: int = 1) -> tuple[vf.Database, ShardedCollection, ReplicaSet]:
    db = vf.connect(str(folder) if folder else None)
    col = db.create_collection("r", dim=DIM, index="flat", shards=shards, replicas=3)
    assert isinstance(col, ShardedCollection)
    return db, col, col.shards[0]


def fail_next_apply(replica: int) -> fsio.FaultPlan:
    """The next log append of replica `replica` (its own write-ahead log) fails: disk full."""
    return fsio.FaultPlan("write", 1, errno.ENOSPC, where=f"/replicas/{replica}/wal/")


def test_a_replica_whose_apply_failed_catches_up_before_the_next_entry(tmp_path: Path) -> None:
    db, col, rs = replicated(tmp_path / "d")
    col.upsert([1], vecs(1))
    with fsio.inject(fail_next_apply(1)) as plan:
        col.upsert([2], vecs(1, 2))  # 2 of 3 applied it: acknowledged, replica 1 is behind
    assert plan.fired
    assert [r.rseq for r in rs.replicas] == [2, 1, 2]
    col.upsert([3], vecs(1, 3))  # replica 1 first gets entry 2 from the log, then entry 3
    assert [r.rseq for r in rs.replicas] == [3, 3, 3]
    # Before: replica 1 applied entry 3 over the gap and never had point 2; after a failover to it
    # strong reads went 3, 2, 3.
    rs.fail(0)
    rs.fail(2)
    assert col.count(consistency="strong") == 3
    assert {r.id for r in rs.replicas[1].collection.scroll().records} == {1, 2, 3}
    db.close()


def test_one_failed_apply_beyond_the_quorum_does_not_fail_the_write(tmp_path: Path) -> None:
    """Before, the write raised although a majority had it, and the point appeared anyway."""
    db, col, _ = replicated(tmp_path / "d")
    with fsio.inject(fail_next_apply(2)):
        col.upsert([7], vecs(1))  # returns: acknowledged by replicas 0 and 1
    assert col.get([7], consistency="strong")[0].id == 7
    db.close()
    with vf.connect(str(tmp_path / "d")) as again:
        reopened = again.get_collection("r")
        assert isinstance(reopened, ShardedCollection)
        assert [r.collection.count() for r in reopened.shards[0].replicas] == [1, 1, 1]


def test_an_entry_out_of_order_is_refused_and_changes_nothing() -> None:
    _, col, rs = replicated(None)
    col.upsert([1], vecs(1))
    store = rs.replicas[1].collection
    gap = {"op": "delete", "ids": [1], "seq": 3, "meta": {"rseq": 3, "ts": 0, "op_id": "x", "epoch": 1}}
    with pytest.raises(vf.ReplicaOutOfSync, match="applied log entry 1 and was sent 3"):
        store.apply_replicated(gap)
    assert store.count() == 1 and rs.replicas[1].rseq == 1


def test_a_lagging_leader_neither_decides_deletes_nor_feeds_a_reshard() -> None:
    """Before: with 10 points acknowledged by a majority and the leader lagging, delete(ids=[0, 1])
    returned 0, and after reshard(3) a strong count was 0."""
    _, col, rs = replicated(None)
    rs.lag(rs.leader)
    col.upsert(list(range(10)), vecs(10))
    assert col.delete(ids=[0, 1]).count == 2
    assert col.count(consistency="strong") == 8
    col.reshard(3)
    assert col.count(consistency="strong") == 8
    assert sorted(r.id for r in col.scroll().records) == list(range(2, 10))


def test_a_lagging_leader_does_not_feed_a_snapshot(tmp_path: Path) -> None:
    db, col, rs = replicated(tmp_path / "d")
    rs.lag(rs.leader)
    col.upsert(list(range(10)), vecs(10))
    col.snapshot(tmp_path / "s.tar")
    assert db.restore(tmp_path / "s.tar", name="copy").count() == 10
    db.close()


def test_failover_never_elects_a_replica_that_lacks_acknowledged_writes() -> None:
    _, col, rs = replicated(None)
    col.upsert([1], vecs(1))
    rs.lag(2)
    col.upsert([2], vecs(1))  # acknowledged by replicas 0 and 1; replica 2 stopped applying
    rs.fail(0)
    rs.fail(1)
    with pytest.raises(vf.UnavailableError, match="no live replica of this shard holds every write"):
        col.count(consistency="strong")
    with pytest.raises(vf.UnavailableError):
        col.upsert([3], vecs(1))
    assert col.count(consistency="eventual") == 1  # eventual reads say what they are: possibly stale
    rs.recover(1)
    assert col.count(consistency="strong") == 2


def test_strong_reads_never_go_back_when_the_leader_changes(tmp_path: Path) -> None:
    db, col, rs = replicated(tmp_path / "d")
    seen = []
    for i in range(12):
        with fsio.inject(fail_next_apply(i % 3)):
            col.upsert([i], vecs(1, i))
        if i % 4 == 3:
            rs.fail(rs.leader)
            seen.append(col.count(consistency="strong"))
            rs.recover(next(r.index for r in rs.replicas if not r.up))
        seen.append(col.count(consistency="strong"))
    assert seen == sorted(seen) and seen[-1] == 12
    report = rs.repair()  # the last failed apply is caught up; the replicas then agree point by point
    assert report["diverged_buckets"] == {} and report["skipped"] == []
    assert len({tuple(sorted(r.id for r in r_.collection.scroll().records)) for r_ in rs.replicas}) == 1
    db.close()


def _contents(rs: ReplicaSet) -> list[dict[object, object]]:
    return [
        {r.id: (r.payload, r.vector) for r in x.collection.scroll(with_vectors=True).records}
        for x in rs.replicas
    ]


def test_anti_entropy_repairs_replicas_that_diverged_behind_the_log(tmp_path: Path) -> None:
    """Damage the log cannot see (a replica changed on disk, a folder of a release that skipped
    entries): each replica is wrong in a different way, the leader too; the majority wins."""
    db, col, rs = replicated(tmp_path / "d", shards=2)
    col.upsert(list(range(200)), vecs(200), [{"n": i} for i in range(200)])
    expected = [_contents(shard)[0] for shard in col.shards]
    rs = col.shards[0]
    ids = sorted(expected[0])
    rs.replicas[0].collection.upsert([ids[0]], vecs(1, 9), [{"n": -1}])  # the leader: a changed point
    rs.replicas[1].collection.delete(ids=ids[1:4])  # missing points
    rs.replicas[2].collection.upsert([10_000], vecs(1, 8), [{"n": 10_000}])  # a point it should not have
    report = col.repair()
    assert report["repaired_points"] == 5 and report["diverged_replicas"] == 3
    for shard, want in zip(col.shards, expected, strict=True):
        assert _contents(shard) == [want, want, want]
    again = col.repair()
    assert again["repaired_points"] == 0
    assert col.info()["replica_sets"][0]["last_repair"]["repaired_points"] == 0
    db.close()
    with vf.connect(str(tmp_path / "d")) as reopened:  # the repairs are durable
        shard = reopened.get_collection("r").shards[0]  # type: ignore[attr-defined]
        assert _contents(shard) == [expected[0]] * 3


def test_anti_entropy_skips_a_lagging_replica_and_says_so() -> None:
    _, col, rs = replicated(None)
    col.upsert([1, 2], vecs(2))
    rs.lag(2)
    col.upsert([3], vecs(1))
    report = rs.repair()
    assert report["skipped"] == [2] and report["replicas"] == [0, 1] and report["repaired_points"] == 0


def test_scheduled_anti_entropy_repairs_without_being_asked_and_shows_in_metrics(tmp_path: Path) -> None:
    import time

    from vectorforge.server.metrics import _CollectionStats

    db = vf.connect(str(tmp_path / "d"), cluster=vf.Cluster(repair_interval=0.1))
    col = db.create_collection("r", dim=DIM, index="flat", replicas=3)
    assert isinstance(col, ShardedCollection)
    col.upsert(list(range(20)), vecs(20))
    col.shards[0].replicas[2].collection.delete(ids=[5])  # damage behind the log's back
    deadline = time.monotonic() + 10
    while col.shards[0].replicas[2].collection.count() != 20:
        assert time.monotonic() < deadline, "the scheduled check never repaired the replica"
        time.sleep(0.05)
    col.shards[0].lag(1)
    col.upsert([99], vecs(1))
    gauges = {m.name: m.samples[0].value for m in _CollectionStats(lambda: [col.info()]).collect()}
    assert gauges["vectorforge_replica_entries_behind"] == 1
    assert gauges["vectorforge_collection_failed"] == 0
    assert "vectorforge_repair_points" in gauges
    db.close()  # stops the schedule
