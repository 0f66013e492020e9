"""Replicas on the local backend: quorums, catch-up, failover with fencing, consistency levels."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.cluster.replicaset import ReplicaSet, StaleEpoch

DIM = 4
RNG = np.random.default_rng(0)


def vecs(n: int) -> np.ndarray:
    return RNG.standard_normal((n, DIM)).astype(np.float32)


def replicated(
    db: vf.Database, name: str = "r", replicas: int = 3, quorum: str = "majority", shards: int = 1
):
    col = db.create_collection(
        name, dim=DIM, index="flat", shards=shards, replicas=replicas, write_quorum=quorum
    )
    assert isinstance(col, ShardedCollection)
    return col, col.shards[0]


def counts(rs: ReplicaSet) -> list[int]:
    return [r.collection.count() for r in rs.replicas]


def test_majority_quorum_survives_a_minority_and_refuses_without_it() -> None:
    col, rs = replicated(vf.connect())
    col.upsert([1, 2], vecs(2))
    rs.fail(2)
    col.upsert([3], vecs(1))  # 2 of 3: acknowledged
    rs.fail(1)
    with pytest.raises(vf.UnavailableError, match="quorum is 2"):
        col.upsert([4], vecs(1))
    rs.recover(1)
    rs.recover(2)
    assert counts(rs) == [4, 4, 4]  # the unacknowledged write is in the log and reaches everyone


@pytest.mark.parametrize(("quorum", "down", "ok"), [("1", 2, True), ("all", 1, False), ("majority", 1, True)])
def test_write_quorum_levels(quorum: str, down: int, ok: bool) -> None:
    col, rs = replicated(vf.connect(), quorum=quorum)
    for i in range(down):
        rs.fail(2 - i)
    if ok:
        col.upsert([1], vecs(1))
        assert col.count() == 1
    else:
        with pytest.raises(vf.UnavailableError):
            col.upsert([1], vecs(1))


def test_a_replica_that_was_down_catches_up_from_the_log() -> None:
    col, rs = replicated(vf.connect())
    rs.fail(1)
    for i in range(10):
        col.upsert([i], vecs(1))
    col.delete(ids=[0, 1])
    assert counts(rs)[1] == 0
    rs.recover(1)
    assert counts(rs) == [8, 8, 8]
    assert rs.replicas[1].rseq == rs.last_rseq


def test_failover_keeps_majority_acknowledged_writes_and_fences_the_old_epoch() -> None:
    col, rs = replicated(vf.connect())
    acked = []
    for i in range(20):
        col.upsert([i], vecs(1))
        acked.append(i)
    old_epoch, old_leader = rs.epoch, rs.leader
    rs.fail(old_leader)
    col.upsert([100], vecs(1))  # the write notices the dead leader and fails over
    assert rs.leader != old_leader and rs.epoch == old_epoch + 1
    found = {r.id for r in col.get([*acked, 100], consistency="strong")}
    assert found == {*acked, 100}
    # a deposed leader's write (older epoch) is refused by every replica of the new epoch
    stale = {
        "op": "delete",
        "ids": [1],
        "seq": rs.last_rseq + 1,
        "meta": {"rseq": rs.last_rseq + 1, "ts": 0, "op_id": "old", "epoch": old_epoch},
    }
    with pytest.raises(StaleEpoch):
        rs.replicas[rs.leader].apply(stale)
    assert col.count() == 21


def test_retried_operation_id_applies_once() -> None:
    _, rs = replicated(vf.connect())
    first = rs.upsert([1], vecs(1), op_id="batch-7")
    again = rs.upsert([1], vecs(1), op_id="batch-7")
    assert first == again and rs.last_rseq == 1


def test_eventual_can_be_stale_session_and_strong_cannot() -> None:
    col, rs = replicated(vf.connect(), quorum="1")
    col.upsert([1], vecs(1))
    rs.lag(1)
    rs.lag(2)
    point = vecs(1)
    col.upsert([2], point)  # only the leader has it
    eventual = [len(col.get([2], consistency="eventual")) for _ in range(6)]
    assert 0 in eventual  # some read landed on a lagging replica: stale
    found = [col.search(point[0], k=1, consistency="eventual")[0].id for _ in range(6)]
    assert 1 in found  # a search on a lagging replica: the new point is missing
    for level in ("strong", "session"):
        for _ in range(6):
            assert [r.id for r in col.get([2], consistency=level)] == [2]
            assert col.search(point[0], k=1, consistency=level)[0].id == 2


def test_bounded_staleness_waits_for_or_avoids_replicas_too_far_behind() -> None:
    col, rs = replicated(vf.connect(), quorum="1")
    rs.max_staleness = 0.0
    rs.lag(1)
    rs.lag(2)
    col.upsert([5], vecs(1))
    for _ in range(6):
        assert col.count(consistency="bounded") == 1  # lagging replicas are behind the bound


def test_unknown_consistency_is_refused_everywhere() -> None:
    db = vf.connect()
    col = replicated(db)[0]
    plain = db.create_collection("plain", dim=DIM)
    for c in (col, plain):
        with pytest.raises(vf.InvalidParameter, match="consistency"):
            c.count(consistency="linearizable")


def test_replicas_catch_up_after_a_restart(tmp_path: Path) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = replicated(db, shards=2)[0]
        col.upsert(list(range(50)), vecs(50))
        for shard in col.shards:
            shard.lag(2)
        col.upsert(list(range(50, 80)), vecs(30))
        behind = [s.replicas[2].collection.count() for s in col.shards]
        assert sum(behind) == 50
    with vf.connect(tmp_path / "d") as db:
        col2 = db.get_collection("r")
        assert isinstance(col2, ShardedCollection)
        assert col2.count() == 80
        for shard in col2.shards:  # the lagging replica replayed the replication log on open
            assert len(set(counts(shard))) == 1
        assert sum(s.replicas[2].collection.count() for s in col2.shards) == 80


def test_the_in_memory_log_keeps_only_what_a_replica_still_needs() -> None:
    col, rs = replicated(vf.connect())
    for i in range(50):
        col.upsert([i], vecs(1))
    assert rs._memory_log == []  # every replica has everything: nothing kept twice in memory
    rs.lag(2)
    for i in range(50, 60):
        col.upsert([i], vecs(1))
    assert [e["seq"] for e in rs._memory_log] == list(range(51, 61))
    rs.recover(2)
    col.upsert([60], vecs(1))
    assert rs._memory_log == [] and counts(rs) == [61, 61, 61]


def test_a_strong_read_sees_every_shard_at_one_instant(tmp_path: Path) -> None:
    """A writer rewrites one point per shard in each batch; a strong read never sees half a batch."""
    import threading

    db = vf.connect(tmp_path / "data")  # fsynced writes: a batch takes a while to reach every shard
    col = db.create_collection("snap", dim=DIM, index="flat", shards=4, replicas=2)
    assert isinstance(col, ShardedCollection)
    ids: list[int] = []
    for pid in range(1000):  # one id on each shard
        if len(ids) < 4 and col._layout.by_shard([pid]).keys() == {len(ids)}:
            ids.append(pid)
    point = vecs(1)
    col.upsert(ids, np.repeat(point, 4, axis=0), [{"v": 0}] * 4)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        version = 0
        try:
            while not stop.is_set():
                version += 1
                col.upsert(ids, np.repeat(point, 4, axis=0), [{"v": version}] * 4)
        except BaseException as exc:
            errors.append(exc)

    seen: dict[str, list[int]] = {"strong": [], "eventual": []}
    t = threading.Thread(target=writer)
    t.start()
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            for level in seen:
                got = {r.payload["v"] for r in col.get(ids, consistency=level)}  # type: ignore[index]
                hits = col.search(point[0], k=4, consistency=level)
                found = {h.payload["v"] for h in hits}  # type: ignore[index]
                seen[level] += [len(got), len(found)]
    finally:
        stop.set()
        t.join()
        db.close()
    assert not errors
    assert len(seen["strong"]) > 20
    assert set(seen["strong"]) == {1}, "a strong read saw a batch on some shards only"
    torn = sum(n > 1 for n in seen["eventual"])
    print(f"reads that saw half a batch: eventual {torn} of {len(seen['eventual'])}")


def test_a_session_token_waits_for_its_own_writes_only() -> None:
    """A client's token (its last write) is what a session read waits for, not everyone's writes."""
    from vectorforge.cluster.collection import session_token

    col, rs = replicated(vf.connect(), quorum="1")
    col.upsert([1], vecs(1))
    mine = col.session_ts  # client A's token: its last write
    rs.lag(1)
    rs.lag(2)
    col.upsert([2], vecs(1))  # client B's write: only the leader has it
    with session_token(mine):
        assert all([r.id for r in col.get([1], consistency="session")] == [1] for _ in range(6))
        seen = [len(col.get([2], consistency="session")) for _ in range(6)]
    assert 0 in seen  # A's reads may use replicas that lack B's write: it did not wait for it
    with session_token(col.session_ts):  # B's token: B always sees its write
        assert all(len(col.get([2], consistency="session")) == 1 for _ in range(6))
