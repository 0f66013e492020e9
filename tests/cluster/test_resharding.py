"""Online resharding: `col.reshard(N2)` moves every point while reads and writes go on.

The oracle is the same as for sharding: one unsharded collection holding the same points. Under
load, readers check at every moment that nothing is missing and nothing is counted twice.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.cluster import ShardedCollection

DIM = 4


def grid_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    """Small integers: exact scores, real ties (they must break the same way: by id)."""
    vectors = rng.integers(-2, 3, size=(n, DIM)).astype(np.float32)
    vectors[np.all(vectors == 0, axis=1), 0] = 1.0
    return vectors


def scroll_all(col: Any, **kwargs: Any) -> list[Any]:
    out, cursor = [], None
    while True:
        page = col.scroll(limit=50, cursor=cursor, **kwargs)
        out.extend(page.records)
        cursor = page.next_cursor
        if cursor is None:
            return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 60),
    before=st.integers(2, 5),
    after=st.integers(1, 7),
    sharding=st.sampled_from(["hash", "key", "semantic"]),
    metric=st.sampled_from(["cosine", "dot", "l2"]),
    k=st.integers(1, 12),
    offset=st.integers(0, 5),
    batch_size=st.integers(1, 25),
    seed=st.integers(0, 2**16),
)
def test_resharded_equals_unsharded(
    n: int,
    before: int,
    after: int,
    sharding: str,
    metric: str,
    k: int,
    offset: int,
    batch_size: int,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    vectors = grid_vectors(rng, n)
    ids: list[int | str] = [i if i % 3 else f"p{i}" for i in range(n)]
    payloads = [{"g": i % 4, "tenant": f"t{i % 5}"} for i in range(n)]
    db = vf.connect()
    one = db.create_collection("one", dim=DIM, metric=metric, index="flat")
    extra: dict[str, Any] = {"shard_key": "tenant"} if sharding == "key" else {}
    if sharding == "semantic":
        extra["n_probe"] = before
    many = db.create_collection(
        "many", dim=DIM, metric=metric, index="flat", shards=before, sharding=sharding, **extra
    )
    assert isinstance(many, ShardedCollection)
    if sharding == "semantic" and n < before:
        return  # too few points to train the first layout (tested in test_sharding)
    if n:
        for col in (one, many):
            col.upsert(ids, vectors, payloads)
    probe = {"n_probe": after} if sharding == "semantic" else {}
    if after == before:  # nothing to do: said, and nothing copied
        with pytest.raises(vf.InvalidParameter, match=f"already has {before} shards; nothing to reshard"):
            many.reshard(after, batch_size=batch_size, **probe)
        assert len(many.shards) == before and many.config.layout == 0
    elif sharding == "semantic" and 0 < n < after:  # too few points for the new centroids: nothing changes
        with pytest.raises(vf.InvalidParameter, match="semantic sharding"):
            many.reshard(after, batch_size=batch_size, **probe)
        assert len(many.shards) == before and many.config.layout == 0
    else:
        many.reshard(after, batch_size=batch_size, **probe)
        assert len(many.shards) == after and many.config.shards == after and many.config.layout == 1
    assert many.count() == one.count() == n
    query = grid_vectors(rng, 1)[0]
    for flt in (None, {"must": [{"key": "g", "match": 1}]}):
        got = many.search(query, k=k, offset=offset, filter=flt)
        want = one.search(query, k=k, offset=offset, filter=flt)
        assert [(h.id, h.score, h.payload) for h in got] == [(h.id, h.score, h.payload) for h in want]
    assert [r.id for r in scroll_all(many)] == [r.id for r in scroll_all(one)]
    if n:  # every point lives on exactly one shard of the new layout
        per_shard = [s.replicas[0].collection.count() for s in many.shards]
        assert sum(per_shard) == n


def test_reshard_under_load_loses_nothing_and_counts_nothing_twice(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    db = vf.connect(tmp_path / "data")
    col = db.create_collection("live", dim=16, metric="cosine", index="flat", shards=3, replicas=2)
    assert isinstance(col, ShardedCollection)
    n_static = 3000
    static_vecs = rng.standard_normal((n_static, 16)).astype(np.float32)
    col.upsert(list(range(n_static)), static_vecs, [{"kind": "static", "i": i} for i in range(n_static)])
    static = {"must": [{"key": "kind", "match": "static"}]}

    stop = threading.Event()
    errors: list[BaseException] = []
    acked: dict[int, int] = {}  # id -> last acknowledged version (upserts by the writer)
    deleted: set[int] = set()
    checks = [0]

    def writer() -> None:
        w_rng = np.random.default_rng(1)
        version = 0
        try:
            while not stop.is_set():
                version += 1
                batch = [int(x) for x in w_rng.choice(np.arange(10_000, 10_400), size=8, replace=False)]
                col.upsert(
                    batch,
                    w_rng.standard_normal((8, 16)).astype(np.float32),
                    [{"kind": "dynamic", "v": version} for _ in batch],
                )
                for pid in batch:
                    acked[pid] = version
                    deleted.discard(pid)
                if version % 5 == 0:  # and delete a few
                    gone = batch[:2]
                    col.delete(ids=gone)
                    for pid in gone:
                        acked.pop(pid, None)
                        deleted.add(pid)
        except BaseException as exc:
            errors.append(exc)

    updated: dict[int, int] = {}  # static id -> last acknowledged version

    def updater() -> None:  # rewrites static points, so a copy that overwrote a newer write would show
        u_rng = np.random.default_rng(3)
        version = 0
        try:
            while not stop.is_set():
                version += 1
                batch = sorted(int(x) for x in u_rng.choice(n_static, size=50, replace=False))
                col.upsert(
                    batch, static_vecs[batch], [{"kind": "static", "i": i, "v": version} for i in batch]
                )
                for pid in batch:
                    updated[pid] = version
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        r_rng = np.random.default_rng(2)
        try:
            while not stop.is_set():
                # nothing missing, nothing counted twice, at every moment
                assert col.count(static) == n_static
                pick = [int(x) for x in r_rng.choice(n_static, size=20, replace=False)]
                assert sorted(r.id for r in col.get(pick)) == sorted(pick)
                i = pick[0]
                hits = col.search(static_vecs[i], k=5, filter=static)
                assert hits[0].id == i and len({h.id for h in hits}) == 5
                checks[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (writer, updater, reader)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    during = (len(updated), len(acked), checks[0])
    col.reshard(7, batch_size=64)
    during = tuple(b - a for a, b in zip(during, (len(updated), len(acked), checks[0]), strict=True))
    print("during the reshard: updated, written, checked", during)
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert checks[0] > 0
    assert len(col.shards) == 7
    # every acknowledged write is there with its last version; deleted points stay deleted
    records = {r.id: r.payload for r in scroll_all(col)}
    assert len(records) == n_static + len(acked)
    for pid, version in acked.items():
        assert records[pid] == {"kind": "dynamic", "v": version}
    assert not deleted & set(records)
    for pid in range(n_static):
        want = {"kind": "static", "i": pid} | ({"v": updated[pid]} if pid in updated else {})
        assert records[pid] == want
    assert col.count() == n_static + len(acked)
    for shard in col.shards:  # both replicas of every new shard agree
        assert len({r.collection.count() for r in shard.replicas}) == 1
    db.close()
    # the switch is durable: the new layout reopens, the old one is gone from disk
    folder = tmp_path / "data" / "collections" / "live"
    assert sorted(p.name for p in folder.glob("shards*")) == ["shards-1"]
    db = vf.connect(tmp_path / "data")
    again = db.get_collection("live")
    assert isinstance(again, ShardedCollection) and len(again.shards) == 7
    assert {r.id: r.payload for r in scroll_all(again)} == records
    db.close()


def test_key_sharding_after_a_reshard_still_sends_a_tenant_to_one_shard() -> None:
    db = vf.connect()
    col = db.create_collection("mt", dim=DIM, shards=2, sharding="key", shard_key="tenant")
    assert isinstance(col, ShardedCollection)
    rng = np.random.default_rng(3)
    col.upsert(list(range(200)), grid_vectors(rng, 200), [{"tenant": f"t{i % 9}"} for i in range(200)])
    col.reshard(5)
    for t in range(9):
        homes = [
            s
            for s in col.shards
            if s.replicas[0].collection.count({"must": [{"key": "tenant", "match": f"t{t}"}]})
        ]
        assert len(homes) == 1
        flt = {"must": [{"key": "tenant", "match": f"t{t}"}]}
        assert col.router.probe(np.zeros((1, DIM), np.float32), flt) == [[col.shards.index(homes[0])]]


def test_bad_reshard_requests_change_nothing() -> None:
    db = vf.connect()
    col = db.create_collection("c", dim=DIM, shards=3)
    col.upsert(list(range(30)), grid_vectors(np.random.default_rng(0), 30))
    for bad in (0, -1, 2000, "4", 2.5, True):
        with pytest.raises(vf.InvalidParameter, match="shards must be"):
            col.reshard(bad)  # type: ignore[arg-type]
    with pytest.raises(vf.InvalidParameter, match="batch_size"):
        col.reshard(4, batch_size=0)
    with pytest.raises(vf.InvalidParameter, match="n_probe"):
        col.reshard(4, n_probe=0)
    assert len(col.shards) == 3 and col.count() == 30 and col.config.layout == 0
    plain = db.create_collection("plain", dim=DIM)
    with pytest.raises(vf.UsageError, match="cannot be resharded"):
        plain.reshard(4)


def test_one_reshard_at_a_time() -> None:
    db = vf.connect()
    col = db.create_collection("c", dim=DIM, index="flat", shards=2)
    assert isinstance(col, ShardedCollection)
    col.upsert(list(range(3000)), grid_vectors(np.random.default_rng(0), 3000))
    second: list[BaseException] = []
    started = threading.Event()

    def other() -> None:
        started.wait()
        try:
            col.reshard(5)
        except vf.UsageError as exc:
            second.append(exc)

    t = threading.Thread(target=other)
    t.start()
    with col._writes.write():  # hold the first reshard at its first batch while the second one asks
        first = threading.Thread(target=lambda: col.reshard(4, batch_size=10))
        first.start()
        while not col._resharding.locked():
            time.sleep(0.001)
        started.set()
        t.join()
    first.join()
    assert second and "already being resharded" in str(second[0])
    assert len(col.shards) == 4 and col.count() == 3000


CRASHER = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    import vectorforge as vf
    db = vf.connect(sys.argv[1])
    col = db.get_collection("c")

    def kill_midway():  # SIGKILL once a quarter of the points are in the new layout, not all
        while True:
            new = col._next
            if new is not None and sum(s.replicas[0].collection.count() for s in new.shards) >= 1000:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(0.001)

    threading.Thread(target=kill_midway, daemon=True).start()
    col.reshard(6, batch_size=20)
    print("finished before it was killed", flush=True)
    """
)


def test_a_reshard_killed_midway_leaves_the_collection_as_it_was(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = vf.connect(data)
    col = db.create_collection("c", dim=DIM, index="flat", shards=2, replicas=2)
    vectors = grid_vectors(np.random.default_rng(5), 4000)
    col.upsert(list(range(4000)), vectors, [{"i": i} for i in range(4000)])
    before = [(r.id, r.payload) for r in scroll_all(col)]
    db.close()
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, str(data)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    folder = data / "collections" / "c"
    assert (folder / "shards-1").exists()  # it was killed mid-way
    db = vf.connect(data)
    col = db.get_collection("c")
    assert isinstance(col, ShardedCollection)
    assert len(col.shards) == 2 and col.config.layout == 0
    assert [(r.id, r.payload) for r in scroll_all(col)] == before
    assert not (folder / "shards-1").exists()  # what the killed reshard left is gone
    col.reshard(3)  # and a reshard now completes
    assert [(r.id, r.payload) for r in scroll_all(col)] == before
    db.close()
