"""The evaluation history in SQLite: what is recorded reads back the same, baselines, retention,
read-only SQL, and a failed record leaves nothing behind."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from vectorforge.errors import InvalidParameter, RunNotFound
from vectorforge.evaluation.evaluator import score_run
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun, History
from vectorforge.evaluation.runs import Run

GOLD = GoldSet(
    "g",
    {f"q{i}": f"query {i}" for i in range(8)},
    {f"q{i}": {f"d{i}": 1, f"d{i + 1}": 2} for i in range(8)},
    {f"q{i}": {"half": "low" if i < 4 else "high"} for i in range(8)},
)


def make_run(shift: int = 0, **changes: object) -> EvalRun:
    run = Run({f"q{i}": {f"d{i + shift}": 2.0, "x": 1.0} for i in range(8)})
    scored = score_run(run, GOLD, ["ndcg@10", "recall@10"], collection="c", config={"k": 10})
    return replace(scored, **changes)  # type: ignore[arg-type]


def test_a_recorded_run_reads_back_the_same(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    run = make_run(label="first", system={"points": 9})
    h.record(run)
    back = History(tmp_path / "h.sqlite").get(run.run_id)  # another connection, as another process
    assert back == run
    assert set(back.segments) == {"all", "half=high", "half=low"} and back.segments["all"]["ndcg@10"].n == 8


def test_runs_latest_and_the_pinned_baseline(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    runs = [make_run(shift=s) for s in range(3)]
    for r in runs:
        h.record(r)
    assert [r.run_id for r in h.runs("g", "c")] == [r.run_id for r in runs]
    assert h.runs("g", "other") == [] and [r.run_id for r in h.runs(limit=1)] == [runs[-1].run_id]
    assert h.runs()[0].per_query == {} and h.runs(with_scores=True)[0].per_query == runs[0].per_query
    latest = h.latest("g", "c")
    assert latest is not None and latest.run_id == runs[-1].run_id
    assert h.latest("g", "c", pinned=True) is None
    h.pin(runs[0].run_id)
    h.pin(runs[1].run_id)  # one baseline per gold set and collection
    pinned = h.latest("g", "c", pinned=True)
    assert pinned is not None and pinned.run_id == runs[1].run_id
    assert not h.get(runs[0].run_id).pinned
    with pytest.raises(RunNotFound, match="eval history"):
        h.get("nope")


def test_retention_keeps_pinned_runs(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    old = make_run(created_at="2020-01-01T00:00:00+00:00")
    h.record(old)
    pinned_old = make_run(created_at="2020-01-02T00:00:00+00:00", pinned=True)
    h.record(pinned_old)
    recent = [make_run() for _ in range(4)]
    for r in recent:
        h.record(r)
    assert h.prune(keep_days=30) == 1  # the old unpinned one
    assert h.prune(keep_last=2) == 2  # of the 4 recent + 1 pinned, the 2 oldest unpinned go
    assert {r.run_id for r in h.runs()} == {pinned_old.run_id, *(r.run_id for r in recent[-2:])}
    # the per-query scores of deleted runs went with them
    _, rows = h.sql(f"SELECT COUNT(*) FROM query_scores WHERE run_id = '{old.run_id}'")
    assert rows == [(0,)]
    with pytest.raises(InvalidParameter):
        h.prune(keep_last=0)


def test_sql_is_read_only(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    run = make_run()
    h.record(run)
    cols, rows = h.sql("SELECT segment, mean FROM metrics WHERE metric = 'ndcg@10' ORDER BY segment")
    assert cols == ["segment", "mean"] and [r[0] for r in rows] == ["all", "half=high", "half=low"]
    with pytest.raises(InvalidParameter, match="SQL query failed"):
        h.sql("DELETE FROM runs")
    assert len(h.runs()) == 1


def test_a_failed_record_leaves_nothing(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    run = make_run()
    h.record(run)
    with pytest.raises(sqlite3.IntegrityError):
        h.record(run)  # the same id again: refused whole
    broken = make_run(per_query={"q1": {"ndcg@10": None}})  # fails at the last table
    with pytest.raises(sqlite3.IntegrityError):
        h.record(broken)
    assert [r.run_id for r in h.runs()] == [run.run_id]
    _, rows = h.sql(f"SELECT COUNT(*) FROM metrics WHERE run_id = '{broken.run_id}'")
    assert rows == [(0,)]


def test_threads_record_into_one_history(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    runs = [make_run() for _ in range(8)]
    threads = [threading.Thread(target=h.record, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.run_id for r in h.runs()} == {r.run_id for r in runs}


def test_retention_of_one_gold_set_and_collection_leaves_the_others(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    mine = [make_run() for _ in range(3)]
    theirs = [make_run(collection="other") for _ in range(2)]
    for r in [*mine, *theirs]:
        h.record(r)
    assert h.prune(keep_last=1, goldset="g", collection="c") == 2
    assert {r.run_id for r in h.runs()} == {mine[-1].run_id, *(r.run_id for r in theirs)}


def test_the_collection_filter_applies_before_the_limit(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    mine = make_run(collection="a")
    h.record(mine)
    for _ in range(3):
        h.record(make_run(collection="b"))  # newer runs of another collection
    assert [r.run_id for r in h.runs(limit=1, collections={"a"})] == [mine.run_id]
    assert (
        h.runs(collections=set()) == []
        and h.goldset_names({"a"}) == {"g"}
        and h.goldset_names(set()) == set()
    )


def test_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite")
    h.record(make_run())
    writer = sqlite3.connect(tmp_path / "h.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of recording a run
    try:
        done: list[float] = []
        reader = threading.Thread(target=lambda: done.append(len(h.runs())))
        reader.start()
        reader.join(timeout=5)
        assert done == [1]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
