"""The event schema and its SQLite store (all or nothing, retries, the PII rule, retention) and the
online metrics computed from it, against hand-worked examples and a direct per-search count."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.evaluation.online.events import EventStore, hash_query, parse_events, read_jsonl
from vectorforge.evaluation.online.online_metrics import online_metrics, outcomes, time_series


def search(qid: str, t: float = 100.0, n: int = 3, **extra: Any) -> dict[str, Any]:
    results = [{"id": f"d{i}", "score": 1.0 - i / 10} for i in range(n)]
    return {"type": "search", "query_id": qid, "time": t, "collection": "c", "results": results, **extra}


def test_a_batch_is_stored_whole_or_not_at_all(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    good = [search("q1"), {"type": "click", "query_id": "q1", "id": "d0", "rank": 1, "time": 101}]
    bad = [*good, {"type": "click", "query_id": "q1", "id": "d0", "rank": 0}]
    with pytest.raises(vf.InvalidParameter, match=r"event 2\.click\.rank"):
        parse_events(bad)
    with pytest.raises(vf.InvalidParameter, match="a JSON list"):
        parse_events({"type": "search"})
    with pytest.raises(vf.InvalidParameter, match="surprise: Extra inputs"):
        parse_events([{**search("q2"), "surprise": 1}])
    with pytest.raises(vf.InvalidParameter):
        parse_events([{"type": "teleport", "query_id": "q"}])
    assert store.counts() == {"searches": 0, "feedback": 0}
    assert store.add(parse_events(good)) == {"searches": 1, "duplicates": 0, "feedback": 1}
    assert store.add(parse_events(good[:1])) == {"searches": 0, "duplicates": 1, "feedback": 0}  # a retry
    assert store.counts() == {"searches": 1, "feedback": 1}


def test_a_failed_write_stores_nothing(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    store.add(parse_events([search("q0")]))
    locker = sqlite3.connect(tmp_path / "events.sqlite", timeout=0)
    locker.execute("BEGIN IMMEDIATE")  # another writer holds the file: this add cannot commit
    store._db().execute("PRAGMA busy_timeout = 50")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.add(parse_events([search("q1"), {"type": "success", "query_id": "q1"}]))
    locker.rollback()
    locker.close()
    assert store.counts() == {"searches": 1, "feedback": 0}
    assert [s["query_id"] for s in store.searches()] == ["q0"]


def test_only_the_query_hash_is_kept_unless_told(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    store.add(parse_events([search("q1", query="Vitamin D  and depression")]))
    store.add(parse_events([search("q2", query="vitamin d and DEPRESSION")]), keep_text=True)
    rows = {r["query_id"]: r for r in store.searches()}
    assert rows["q1"]["query_text"] is None
    assert rows["q1"]["query_hash"] == rows["q2"]["query_hash"] == hash_query("vitamin d and depression")
    assert rows["q2"]["query_text"] == "vitamin d and DEPRESSION"
    raw = (tmp_path / "events.sqlite").read_bytes()
    assert b"Vitamin D  and" not in raw


def test_jsonl_errors_name_the_line_and_store_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(search("q1")), "", json.dumps({"type": "dwell", "query_id": "q1", "id": "d0"})]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(vf.InvalidParameter, match=r"line 3: dwell\.dwell_s"):
        read_jsonl(path)
    path.write_text(json.dumps(search("q1")) + "\n{not json\n")
    with pytest.raises(vf.InvalidParameter, match="line 2: not JSON"):
        read_jsonl(path)
    path.write_text(json.dumps(search("q1")) + "\n")
    assert [e.query_id for e in read_jsonl(path)] == ["q1"]


def test_retention_prunes_old_events(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    store.add(parse_events([search("old", t=1000.0), search("new", t=5000.0)]))
    store.add(parse_events([{"type": "click", "query_id": "old", "id": "d0", "rank": 1, "time": 1001.0}]))
    assert store.prune(3000.0, now=6000.0) == {"searches": 1, "feedback": 1}
    assert [s["query_id"] for s in store.searches()] == ["new"]
    with pytest.raises(vf.InvalidParameter, match="positive"):
        store.prune(0)


def test_metrics_of_a_hand_worked_day(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    events = [
        search("q1", t=0, segment="s1", latency_ms=10),
        {"type": "click", "query_id": "q1", "id": "d2", "rank": 3, "time": 4},
        {"type": "dwell", "query_id": "q1", "id": "d2", "dwell_s": 45},
        search("q2", t=10, segment="s1", latency_ms=20),
        {"type": "click", "query_id": "q2", "id": "d0", "rank": 1, "time": 12},
        {"type": "dwell", "query_id": "q2", "id": "d0", "dwell_s": 5},  # a short click: not a success
        {"type": "reformulation", "query_id": "q2", "next_query_id": "q3"},
        search("q3", t=20, segment="s2", latency_ms=30),  # abandoned
        search("q4", t=30, n=0, segment="s2", latency_ms=40),  # no results
        {"type": "success", "query_id": "q4"},
    ]
    store.add(parse_events(events))
    found = outcomes(store)
    m = online_metrics(found, k=2)
    assert m["all"]["searches"] == 4
    assert m["all"]["ctr@2"] == pytest.approx(1 / 4)  # q2 only: q1's click is at rank 3
    assert m["all"]["mrr"] == pytest.approx((1 / 3 + 1) / 4)
    assert m["all"]["abandonment"] == pytest.approx(1 / 4)  # q3
    assert m["all"]["reformulation"] == pytest.approx(1 / 4)
    assert m["all"]["success@2"] == pytest.approx(1 / 4)  # q4's success event; q1's dwell is at rank 3
    assert online_metrics(found, k=3)["all"]["success@3"] == pytest.approx(2 / 4)
    assert m["all"]["zero_result"] == pytest.approx(1 / 4)
    assert m["all"]["time_to_first_click_s"] == pytest.approx(3.0)  # median of 4 and 2
    assert m["all"]["latency_p50_ms"] == pytest.approx(25.0)
    assert m["segment:s1"]["searches"] == 2 and m["segment:s2"]["ctr@2"] == 0
    series = time_series(found, step_s=15, k=2)
    assert [w["searches"] for w in series] == [2, 1, 1]
    assert series[0]["ctr@2"] == pytest.approx(0.5)
    with pytest.raises(vf.InvalidParameter, match="group by"):
        online_metrics(found, by="colour")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    seed=st.integers(0, 10_000),
    k=st.integers(1, 5),
)
def test_metrics_equal_a_direct_count_of_the_events(tmp_path_factory: Any, n: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    truth = []
    for i in range(n):
        qid = f"q{i}"
        n_results = int(rng.integers(0, 6))
        events.append(search(qid, t=float(i), n=n_results, latency_ms=float(rng.integers(1, 100))))
        ranks = (
            sorted(set(rng.integers(1, n_results + 1, size=int(rng.integers(0, 3))).tolist()))
            if n_results
            else []
        )
        dwells = []
        for r in ranks:
            dwells.append(
                {"type": "dwell", "query_id": qid, "id": f"d{r - 1}", "dwell_s": float(rng.integers(0, 60))}
            )
            events.append({"type": "click", "query_id": qid, "id": f"d{r - 1}", "rank": r, "time": i + 0.5})
            events.append(dwells[-1])
        truth.append((ranks, n_results, dwells))
    store = EventStore(tmp_path_factory.mktemp("ev") / "events.sqlite")
    store.add(parse_events(events))
    m = online_metrics(outcomes(store), by=None, k=k)["all"]
    ctr = np.mean([any(r <= k for r in ranks) for ranks, _, _ in truth])
    mrr = np.mean([1 / min(ranks) if ranks else 0 for ranks, _, _ in truth])
    success = np.mean(
        [any(e["dwell_s"] >= 30 and int(e["id"][1:]) + 1 <= k for e in dwells) for _, _, dwells in truth]
    )
    zero = np.mean([n_results == 0 for _, n_results, _ in truth])
    assert m[f"ctr@{k}"] == pytest.approx(ctr)
    assert m["mrr"] == pytest.approx(mrr)
    assert m[f"success@{k}"] == pytest.approx(success)
    assert m["zero_result"] == pytest.approx(zero)
    assert m["abandonment"] == pytest.approx(np.mean([not ranks for ranks, _, _ in truth]))


def test_the_events_commands_import_report_and_prune(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rows = [
        search("q1", t=1e9, segment="s"),
        {"type": "click", "query_id": "q1", "id": "d0", "rank": 1, "time": 1e9},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, {"type": "click", "query_id": "q2"}]))
    bad = cli("events", "import", path)
    assert bad.returncode != 0 and "line 3" in bad.stderr
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = cli("events", "import", path)
    assert done.returncode == 0 and "stored 1 searches (0 already there) and 1 feedback" in done.stdout
    shown = cli("events", "metrics", "-k", "1")
    assert shown.returncode == 0 and "segment:s" in shown.stdout and "ctr@1" in shown.stdout
    pruned = cli("events", "prune", "--days", "1")
    assert pruned.returncode == 0 and "deleted 1 searches and 1 feedback" in pruned.stdout
