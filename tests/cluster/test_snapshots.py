"""Snapshots of sharded, replicated collections: one file, every shard at one instant."""

from __future__ import annotations

import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection

DIM = 8


def scroll_all(col: Any) -> list[tuple[Any, Any, Any]]:
    out, cursor = [], None
    while True:
        page = col.scroll(limit=100, cursor=cursor, with_vectors=True)
        out.extend((r.id, r.payload, r.vector) for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            return out


@pytest.mark.parametrize("sharding", ["hash", "key", "semantic"])
def test_snapshot_and_restore_a_sharded_replicated_collection(tmp_path: Path, sharding: str) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    extra: dict[str, Any] = {"shard_key": "tenant"} if sharding == "key" else {}
    if sharding == "semantic":
        extra["n_probe"] = 3
    with vf.connect(tmp_path / "data") as db:
        col = db.create_collection(
            "src", dim=DIM, index="flat", shards=3, replicas=3, sharding=sharding, **extra
        )
        assert isinstance(col, ShardedCollection)
        col.upsert(list(range(300)), vectors, [{"tenant": f"t{i % 7}", "i": i} for i in range(300)])
        col.delete(ids=list(range(0, 300, 10)))
        for shard in col.shards:  # failovers first: the restored replicas carry a later epoch
            shard.failover()
        col.upsert(
            list(range(1000, 1030)), vectors[:30], [{"tenant": f"t{i % 7}", "i": i} for i in range(30)]
        )
        before = scroll_all(col)
        hits = col.search(vectors[5], k=10)
        path = col.snapshot(tmp_path / "src.snapshot")
        assert path.is_file() and not list((tmp_path / "data" / "collections" / "src").glob(".snapshot-*"))
        copy = db.restore(path, name="copy")
        assert isinstance(copy, ShardedCollection)
        assert (copy.config.shards, copy.config.replicas, copy.config.sharding.value) == (3, 3, sharding)
        assert scroll_all(copy) == before
        assert [(h.id, h.score) for h in copy.search(vectors[5], k=10)] == [(h.id, h.score) for h in hits]
        for shard in copy.shards:  # every replica of every shard holds the leader's copy
            assert len({r.collection.count() for r in shard.replicas}) == 1
        new = list(range(2000, 2030))  # it takes writes, on every shard
        copy.upsert(new, vectors[:30], [{"tenant": f"t{i % 7}", "i": i} for i in range(30)])
        assert copy.count() == col.count() + 30
    leftover = tmp_path / "data" / "collections" / "src" / ".snapshot-crashed"
    leftover.mkdir()  # what a snapshot killed midway leaves
    with vf.connect(tmp_path / "data") as db:  # the copy is there after a reopen
        assert len(scroll_all(db.get_collection("copy"))) == len(before) + 30
        db.get_collection("src")
        assert not leftover.exists()


def test_a_snapshot_holds_every_shard_at_one_instant(tmp_path: Path) -> None:
    """A writer rewrites one point on each shard per batch; no snapshot catches half a batch."""
    with vf.connect(tmp_path / "data") as db:
        col = db.create_collection("live", dim=DIM, index="flat", shards=4, replicas=2)
        assert isinstance(col, ShardedCollection)
        ids: list[int] = []
        for pid in range(1000):
            if len(ids) < 4 and col._layout.by_shard([pid]).keys() == {len(ids)}:
                ids.append(pid)
        point = np.ones((4, DIM), dtype=np.float32)
        col.upsert(ids, point, [{"v": 0}] * 4)
        stop = threading.Event()
        written = threading.Event()

        errors: list[BaseException] = []

        def writer() -> None:
            version = 0
            try:
                while not stop.is_set():
                    version += 1
                    col.upsert(ids, point, [{"v": version}] * 4)
                    written.set()
            except BaseException as exc:  # reported below: a dead writer must fail the test
                errors.append(exc)
                written.set()

        t = threading.Thread(target=writer)
        t.start()
        try:
            assert written.wait(30)
            paths = []
            for i in range(6):
                paths.append(col.snapshot(tmp_path / f"s{i}.snapshot"))
                time.sleep(0.02)  # let the writer in between snapshots
        finally:
            stop.set()
            t.join()
        assert not errors, errors[:3]
        versions = []
        for i, path in enumerate(paths):
            copy = db.restore(path, name=f"copy{i}")
            found = {r.payload["v"] for r in copy.get(ids)}  # type: ignore[index]
            assert len(found) == 1, f"snapshot {i} caught half a batch: {found}"
            versions.append(found.pop())
        assert versions[-1] > 0


def test_snapshot_errors_change_nothing(tmp_path: Path) -> None:
    with vf.connect() as memory:
        col = memory.create_collection("m", dim=DIM, shards=2)
        with pytest.raises(vf.UsageError, match="persistent"):
            col.snapshot(tmp_path / "m.snapshot")
    with vf.connect(tmp_path / "data") as db:
        col = db.create_collection("c", dim=DIM, shards=3)
        col.upsert(list(range(20)), np.ones((20, DIM), dtype=np.float32))
        path = col.snapshot(tmp_path / "c.snapshot")
        broken = tmp_path / "broken.snapshot"
        with tarfile.open(path) as src, tarfile.open(broken, "w") as dst:
            for member in src.getmembers():
                if member.name != "shards/1.tar":  # one shard missing
                    dst.addfile(member, src.extractfile(member))
        with pytest.raises(vf.InvalidParameter, match="one archive for each of its 3 shards"):
            db.restore(broken, name="broken")
        assert db.list_collections() == ["c"]
        assert [p.name for p in (tmp_path / "data" / "collections").iterdir()] == ["c"]
