"""Experiments answered by a real server process on a real SciFact collection, with traffic from
the click simulator (a position-biased cascade over the gold set's judgments): an A/B test's
statistics, an interleaving experiment's preference, and a guardrail that stops a broken arm."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.evaluation.conftest import SciFactSmall
from tests.serverproc import start_server
from vectorforge.evaluation.online.simulator import ClickModel, simulate_clicks

MODEL = ClickModel()
# Every relevant abstract of the small collection has n < 100 (they come first): an arm that hides
# them finds nothing relevant. (Hiding half of them is too small a gap for a few hundred users under
# this click model, position bias and noise clicks dilute it: bench/interleaving.py measures how many
# queries A/B and interleaving each need for a given gap.)
HIDE_RELEVANT = {"must": [{"key": "n", "range": {"gte": 100}}]}


@pytest.fixture
def data(scifact_small: SciFactSmall, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(scifact_small.data, folder)
    return folder


def traffic(http: httpx.Client, name: str, gold: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """`n` simulated users, each one query of the gold set answered by the experiment and clicked
    by the click model; the answers."""
    rng = np.random.default_rng(seed)
    qids = list(gold.queries)
    answers = []
    for i in range(n):
        qid = qids[int(rng.integers(len(qids)))]
        answer = http.post(f"/experiments/{name}/query", json={"text": gold.queries[qid], "user_id": f"u{i}"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ranking = [str(h["id"]) for h in body["hits"]]
        events: list[dict[str, Any]] = []
        for c in simulate_clicks(ranking, gold.qrels[qid], MODEL, rng):
            events.append({"type": "click", "query_id": body["query_id"], "id": c.doc_id, "rank": c.rank})
            events.append(
                {"type": "dwell", "query_id": body["query_id"], "id": c.doc_id, "dwell_s": c.dwell_s}
            )
        if events:
            assert http.post("/events", json=events).status_code == 200
        answers.append(body)
    return answers


def test_an_ab_test_on_simulated_traffic_reports_its_statistics(
    data: Path, scifact_small: SciFactSmall
) -> None:
    spec = {
        "name": "ab",
        "arms": {"full": {"collection": "sci"}, "none": {"collection": "sci", "filter": HIDE_RELEVANT}},
    }
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            http.post("/experiments", json=spec)
            http.post("/experiments/ab/start")
            traffic(http, "ab", scifact_small.goldset, 240, seed=1)
            report = http.get("/experiments/ab/results").json()
    finally:
        server.stop()
    tests = {(c["metric"], c["method"]): c for c in report["comparisons"]}
    assert set(tests) == {
        ("ctr@10", "z-test"),
        ("ctr@10", "msprt"),
        ("success@10", "z-test"),
        ("success@10", "msprt"),
        ("mrr", "welch"),
        ("ctr@10 per user", "delta"),
    }
    assert all(c["arm"] == "none" for c in report["comparisons"])
    success = tests["success@10", "z-test"]
    assert success["n_a"] + success["n_b"] == 240
    assert success["mean_a"] == pytest.approx(report["arms"]["full"]["success@10"])
    assert (
        success["diff"] < 0 and success["p_value"] < 0.05 and success["significant"]
    )  # every relevant abstract hidden
    assert tests["success@10", "msprt"]["p_value"] >= success["p_value"]  # always valid costs evidence
    assert report["guardrails"]["stop"] is False


def test_interleaving_credits_clicks_to_the_arm_that_placed_them(
    data: Path, scifact_small: SciFactSmall
) -> None:
    spec = {
        "name": "tdi",
        "kind": "interleaving",
        "arms": {"full": {"collection": "sci"}, "none": {"collection": "sci", "filter": HIDE_RELEVANT}},
    }
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert (
                http.post(
                    "/experiments", json={**spec, "arms": {**spec["arms"], "x": {"collection": "sci"}}}
                ).status_code
                == 422
            )
            http.post("/experiments", json=spec)
            http.post("/experiments/tdi/start")
            answers = traffic(http, "tdi", scifact_small.goldset, 120, seed=2)
            report = http.get("/experiments/tdi/results").json()
    finally:
        server.stop()
    for body in answers:
        ids = [h["id"] for h in body["hits"]]
        assert body["arm"] == "interleaved" and len(ids) == len(set(ids)) == 10
        assert set(body["teams"]) <= {"full", "none"} and len(body["teams"]) == 10
        assert abs(body["teams"].count("full") - body["teams"].count("none")) <= 1  # team draft alternates
    result = report["interleaving"]
    assert (result["arm_a"], result["arm_b"]) == ("full", "none")
    assert result["n"] == 120 and result["wins_a"] + result["wins_b"] + result["ties"] == 120
    assert result["wins_a"] > result["wins_b"] and result["delta"] < 0 and result["p_value"] < 0.05


def test_a_guardrail_stops_an_arm_that_returns_nothing(data: Path, scifact_small: SciFactSmall) -> None:
    nothing = {"must": [{"key": "half", "match": 7}]}  # no point has half = 7: every answer is empty
    spec = {
        "name": "broken",
        "arms": {"full": {"collection": "sci"}, "empty": {"collection": "sci", "filter": nothing}},
        "guardrails": {"zero_result_increase": 0.05, "min_searches": 20},
    }
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            http.post("/experiments", json=spec)
            http.post("/experiments/broken/start")
            traffic(http, "broken", scifact_small.goldset, 80, seed=3)
            deadline = time.monotonic() + 30
            state = http.get("/experiments/broken").json()
            while state["status"] == "running" and time.monotonic() < deadline:  # the server's schedule
                time.sleep(0.5)
                state = http.get("/experiments/broken").json()
            after = http.post("/experiments/broken/query", json={"text": "x", "user_id": "u1"}).json()
    finally:
        server.stop()
    assert state["status"] == "stopped" and "zero_result_rate" in state["stop_reason"]
    assert state["log"][-1]["who"] == "guardrail" and state["log"][-1]["action"] == "stop"
    assert after["arm"] == "full" and "query_id" not in after  # a stopped experiment answers with the control


def test_cuped_uses_each_users_pre_period_to_narrow_the_interval(data: Path) -> None:
    """Users differ in how often they click (the variance CUPED removes): the same propensity
    drives their searches in the two weeks before the start (posted as events) and in the test."""
    rng = np.random.default_rng(3)
    users = {f"u{i}": float(p) for i, p in enumerate(rng.beta(0.6, 0.6, size=80))}
    spec = {"name": "cu", "arms": {"a": {"collection": "sci"}, "b": {"collection": "sci"}}}
    day = 86400.0

    def clicks(query_id: str, p: float, t: float) -> list[dict[str, Any]]:
        if rng.random() >= p:
            return []
        return [{"type": "click", "query_id": query_id, "id": "0", "rank": 1, "time": t}]

    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            now = time.time()
            before: list[dict[str, Any]] = []
            for u, p in list(users.items())[:60]:  # 20 users have no history: they get the mean
                for j in range(6):
                    qid, t = f"pre-{u}-{j}", now - 3 * day + j
                    before.append({"type": "search", "query_id": qid, "time": t, "collection": "sci",
                                   "user_id": u, "results": [{"id": "0"}]})  # fmt: skip
                    before += clicks(qid, p, t + 1)
            before.append({"type": "search", "query_id": "old", "time": now - 30 * day,
                           "collection": "sci", "user_id": "u79"})  # fmt: skip  # outside 14 days
            assert http.post("/events", json=before).status_code == 200
            assert http.post("/experiments", json=spec).status_code == 200
            assert http.post("/experiments/cu/start").status_code == 200
            for u, p in users.items():
                for _ in range(4):
                    body = http.post("/experiments/cu/query", json={"text": "vitamin d", "user_id": u}).json()
                    events = clicks(body["query_id"], p, time.time())
                    if events:
                        assert http.post("/events", json=events).status_code == 200
            report = http.get("/experiments/cu/results").json()
    finally:
        server.stop()
    tests = {(c["metric"], c["method"]): c for c in report["comparisons"]}
    adjusted = tests["ctr@10 per user", "cuped"]
    assert adjusted["n_a"] + adjusted["n_b"] == len(users)
    assert adjusted["pre_period_coverage"] == pytest.approx(60 / 80)
    assert adjusted["theta"] > 0.3 and adjusted["variance_reduction"] > 0.3
    # every user made 4 searches, so the delta method's ratio is the same mean of user rates,
    # without the covariate: its interval is the wider one
    raw_width = tests["ctr@10 per user", "delta"]["ci_high"] - tests["ctr@10 per user", "delta"]["ci_low"]
    assert adjusted["ci_high"] - adjusted["ci_low"] < raw_width
    assert not adjusted["significant"]  # both arms are the same collection
