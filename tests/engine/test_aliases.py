"""Collection aliases: the namespace rules, every call taking an alias, persistence, failed writes,
and a switch that queries running meanwhile never see without a target."""

from __future__ import annotations

import errno
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.storage import fsio

BLUE, GREEN = [1, 2, 3], [11, 12, 13]


def _pair(db: vf.DatabaseAPI) -> None:
    """Collections blue (ids 1-3) and green (ids 11-13), alias prod -> blue."""
    rng = np.random.default_rng(0)
    for name, ids in (("blue", BLUE), ("green", GREEN)):
        col = db.create_collection(name, dim=4, index="flat")
        col.upsert(ids, rng.normal(size=(3, 4)).astype(np.float32), [{"c": name}] * 3)
    db.create_alias("prod", "blue")


def test_an_alias_reaches_its_collection_and_switches(any_db: vf.DatabaseAPI) -> None:
    _pair(any_db)
    assert any_db.list_aliases() == {"prod": "blue"}
    assert any_db.list_collections() == ["blue", "green"]  # an alias is not a collection
    assert any_db.has_collection("prod")
    col = any_db.get_collection("prod")
    assert col.name == "blue"
    assert {h.id for h in col.search([1.0, 0, 0, 0], k=10)} == set(BLUE)
    assert col.count() == 3 and col.info()["name"] == "blue"

    any_db.switch_alias("prod", "green")
    assert any_db.list_aliases() == {"prod": "green"}
    assert any_db.get_collection("prod").name == "green"
    assert {h.id for h in any_db.get_collection("prod").search([1.0, 0, 0, 0], k=10)} == set(GREEN)
    # get_or_create through the alias: the existing collection, its settings checked
    assert any_db.get_or_create_collection("prod", dim=4).name == "green"
    with pytest.raises(vf.ConflictError, match="dim=4, not 8"):
        any_db.get_or_create_collection("prod", dim=8)

    any_db.create_alias("staging", "green")
    assert any_db.list_aliases() == {"prod": "green", "staging": "green"}
    any_db.delete_alias("prod")
    assert any_db.list_aliases() == {"staging": "green"}
    assert not any_db.has_collection("prod")
    with pytest.raises(vf.CollectionNotFound):
        any_db.get_collection("prod")
    assert any_db.get_collection("green").count() == 3  # deleting an alias leaves its collection


def test_the_rules_refuse_and_change_nothing(any_db: vf.DatabaseAPI) -> None:
    _pair(any_db)
    before = any_db.list_aliases()
    with pytest.raises(vf.InvalidName, match="alias name"):
        any_db.create_alias("no/slash", "blue")
    with pytest.raises(vf.ConflictError, match="'green' is the name of a collection"):
        any_db.create_alias("green", "blue")
    with pytest.raises(vf.AliasAlreadyExists, match="switch_alias"):
        any_db.create_alias("prod", "green")
    with pytest.raises(vf.CollectionNotFound, match="'nowhere'"):
        any_db.create_alias("other", "nowhere")
    with pytest.raises(vf.CollectionNotFound, match="'nowhere'"):
        any_db.switch_alias("prod", "nowhere")
    with pytest.raises(vf.InvalidParameter, match="'prod' is an alias"):
        any_db.create_alias("chain", "prod")
    with pytest.raises(vf.AliasNotFound, match="'missing' does not exist"):
        any_db.switch_alias("missing", "blue")
    with pytest.raises(vf.AliasNotFound, match="'blue' is a collection, not an alias"):
        any_db.delete_alias("blue")
    with pytest.raises(vf.AliasNotFound):
        any_db.delete_alias("missing")
    with pytest.raises(vf.CollectionAlreadyExists, match="'prod' is an alias of collection 'blue'"):
        any_db.create_collection("prod", dim=4, index="flat")
    with pytest.raises(vf.ConflictError, match="target of alias 'prod'"):
        any_db.delete_collection("blue")
    with pytest.raises(vf.ConflictError, match="'prod' is an alias of collection 'blue', not a collection"):
        any_db.delete_collection("prod")
    assert any_db.list_aliases() == before
    assert any_db.list_collections() == ["blue", "green"]
    assert any_db.get_collection("blue").count() == 3
    any_db.switch_alias("prod", "green")
    any_db.delete_collection("blue")  # no alias points at it any more
    assert any_db.list_collections() == ["green"]


def test_aliases_survive_a_reopen_in_one_atomic_file(data_dir: Path) -> None:
    with vf.connect(data_dir) as db:
        _pair(db)
        db.create_alias("staging", "green")
    assert json.loads((data_dir / "aliases.json").read_text()) == {
        "format": 1,
        "aliases": {"prod": "blue", "staging": "green"},
    }
    assert not (data_dir / "aliases.json.tmp").exists()
    with vf.connect(data_dir) as db:
        assert db.list_aliases() == {"prod": "blue", "staging": "green"}
        assert db.get_collection("prod").name == "blue"
        db.switch_alias("prod", "green")
    with vf.connect(data_dir) as db:
        assert db.list_aliases() == {"prod": "green", "staging": "green"}


def test_in_memory_aliases_need_no_folder() -> None:
    with vf.connect() as db:
        _pair(db)
        assert db.get_collection("prod").name == "blue"


@pytest.mark.parametrize("op", ["write", "fsync", "rename"])
def test_a_failed_write_leaves_the_old_aliases_in_memory_and_on_disk(data_dir: Path, op: str) -> None:
    with vf.connect(data_dir) as db:
        _pair(db)
        on_disk = (data_dir / "aliases.json").read_bytes()
        changes = (
            lambda: db.switch_alias("prod", "green"),
            lambda: db.create_alias("staging", "green"),
            lambda: db.delete_alias("prod"),
        )
        for change in changes:
            plan = fsio.FaultPlan(op, 1, errno.ENOSPC, where="aliases.json")
            with fsio.inject(plan), pytest.raises(vf.WriteNotDurable, match="nothing changed"):
                change()
            assert plan.fired
        assert db.list_aliases() == {"prod": "blue"}
        assert db.get_collection("prod").name == "blue"
        assert (data_dir / "aliases.json").read_bytes() == on_disk
        assert not (data_dir / "aliases.json.tmp").exists()
    with vf.connect(data_dir) as db:
        assert db.list_aliases() == {"prod": "blue"}


def test_a_rename_not_made_durable_is_undone(data_dir: Path) -> None:
    """The folder fsync after the rename fails: the old table is written back, so disk and memory
    agree; if that fails too, memory keeps the old table and the error says the disk is uncertain."""
    with vf.connect(data_dir) as db:
        _pair(db)
        with fsio.inject(fsio.FaultPlan("fsync_dir", 1, errno.EIO)), pytest.raises(vf.WriteNotDurable):
            db.switch_alias("prod", "green")
        assert db.list_aliases() == {"prod": "blue"}
        assert json.loads((data_dir / "aliases.json").read_text())["aliases"] == {"prod": "blue"}
        with (
            fsio.inject(fsio.FaultPlan("fsync_dir", 1, errno.EIO, count=2)),
            pytest.raises(vf.StorageError, match="nor undone"),
        ):
            db.switch_alias("prod", "green")
        assert db.list_aliases() == {"prod": "blue"}
        assert db.get_collection("prod").name == "blue"


def test_a_snapshot_is_not_restored_under_an_alias_name(data_dir: Path, tmp_path: Path) -> None:
    with vf.connect(data_dir) as db:
        _pair(db)
        snap = db.get_collection("blue").snapshot(tmp_path / "blue.tar")
        with pytest.raises(vf.CollectionAlreadyExists, match="'prod' is an alias"):
            db.restore(snap, "prod")
        old = db.create_collection("old", dim=4, index="flat")
        old_snap = old.snapshot(tmp_path / "old.tar")
        db.delete_collection("old")
        db.create_alias("old", "green")
        with pytest.raises(vf.CollectionAlreadyExists, match="'old' is an alias"):
            db.restore(old_snap)  # under the name stored in it
        assert db.list_collections() == ["blue", "green"]
        assert db.restore(old_snap, "old2").name == "old2"


def test_a_corrupt_alias_file_is_named(data_dir: Path) -> None:
    vf.connect(data_dir).close()
    (data_dir / "aliases.json").write_text('{"format": 1, "aliases": {"../x": "blue"}}')
    with pytest.raises(vf.CorruptionError, match=r"aliases\.json"):
        vf.connect(data_dir)
    (data_dir / "aliases.json").write_text("[1,")
    with pytest.raises(vf.CorruptionError, match=r"aliases\.json"):
        vf.connect(data_dir)
    (data_dir / "aliases.json").unlink()
    vf.connect(data_dir).close()  # the lock was released by the failed opens


@pytest.mark.parametrize("where", ["memory", "disk", "sharded"])
def test_queries_during_switches_see_the_old_or_the_new_collection(data_dir: Path, where: str) -> None:
    db = vf.connect(None if where == "memory" else data_dir)
    try:
        shards = {"shards": 2} if where == "sharded" else {}
        rng = np.random.default_rng(1)
        for name, ids in (("blue", BLUE), ("green", GREEN)):
            col = db.create_collection(name, dim=4, index="flat", **shards)  # type: ignore[arg-type]
            col.upsert(ids, rng.normal(size=(3, 4)).astype(np.float32))
        db.create_alias("prod", "blue")
        stop = threading.Event()
        seen: dict[str, int] = {"blue": 0, "green": 0}
        failures: list[BaseException] = []

        def query() -> None:
            while not stop.is_set():
                try:
                    col = db.get_collection("prod")
                    ids = {h.id for h in col.search([1.0, 0, 0, 0], k=10)}
                    expected = set(BLUE) if col.name == "blue" else set(GREEN)
                    if ids != expected:
                        raise AssertionError(f"{col.name}: {ids}")
                    seen[col.name] += 1
                except BaseException as exc:  # reported below
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=query) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        i = 0
        while i < 60 or (min(seen.values()) < 5 and time.monotonic() < deadline):
            db.switch_alias("prod", "green" if i % 2 == 0 else "blue")
            i += 1
            time.sleep(0.001)
        stop.set()
        for t in threads:
            t.join()
        assert not failures, failures[0]
        assert seen["blue"] and seen["green"], seen
    finally:
        db.close()
