"""Idempotency keys on one collection: a retry applies nothing and returns the first result, the keys
survive a restart (from the log) and a seal (from the manifest), and the window is bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.engine import collection as engine_collection

DIM = 4


def one(v: float = 1.0) -> np.ndarray:
    return np.full((1, DIM), v, dtype=np.float32)


def test_a_retry_applies_nothing_and_returns_the_first_result(any_db: vf.Database) -> None:
    col = any_db.create_collection("c", dim=DIM, index="flat")
    first = col.upsert([1], one(), [{"v": 1}], idempotency_key="a")
    col.upsert([1], one(), [{"v": 2}])  # a newer write of another client
    assert col.upsert([1], one(), [{"v": 1}], idempotency_key="a") == first
    assert col.get([1])[0].payload == {"v": 2}
    assert col.info()["last_seq"] == 2  # the retry wrote nothing


def test_a_keyed_delete_of_nothing_stays_nothing(any_db: vf.Database) -> None:
    col = any_db.create_collection("c", dim=DIM, index="flat")
    assert col.delete(ids=[5], idempotency_key="d").count == 0
    col.upsert([5], one())  # written after the delete
    assert col.delete(ids=[5], idempotency_key="d").count == 0  # the retry does not delete it
    assert col.count() == 1


@pytest.mark.parametrize("seal", [False, True])
def test_keys_survive_a_restart(tmp_path: Path, seal: bool) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("c", dim=DIM, index="flat")
        first = col.upsert([1, 2], np.ones((2, DIM)), idempotency_key="up")
        deleted = col.delete(ids=[2], idempotency_key="del").count
        if seal:
            col.flush()  # the log is dropped: the manifest carries the keys
    with vf.connect(tmp_path / "d") as db:
        col = db.get_collection("c")
        assert col.upsert([1, 2], np.ones((2, DIM)), idempotency_key="up") == first
        assert col.delete(ids=[2], idempotency_key="del").count == deleted == 1
        assert col.count() == 1


def test_the_window_keeps_the_newest_keys(mem_db: vf.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_collection, "KEY_WINDOW", 3)
    col = mem_db.create_collection("c", dim=DIM, index="flat")
    seqs = [col.upsert([i], one(), idempotency_key=f"k{i}").operation_id for i in range(5)]
    assert col.recall("k0") is None and col.recall("k1") is None
    assert [col.recall(f"k{i}") for i in (2, 3, 4)] == seqs[2:]


@pytest.mark.parametrize("bad", ["", "x" * 201, "tab\there", "é", 5])
def test_a_bad_key_is_refused_before_anything_is_written(mem_db: vf.Database, bad: object) -> None:
    col = mem_db.create_collection("c", dim=DIM, index="flat")
    with pytest.raises(vf.InvalidParameter, match="idempotency_key"):
        col.upsert([1], one(), idempotency_key=bad)  # type: ignore[arg-type]
    with pytest.raises(vf.InvalidParameter, match="idempotency_key"):
        col.delete(ids=[1], idempotency_key=bad)  # type: ignore[arg-type]
    assert col.count() == 0
