"""Evaluation through a real server process: gold sets and runs over HTTP, evaluating on request,
scoped keys, Prometheus gauges, and the server's own schedule."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.evaluation.conftest import HIDE_HALF, SciFactSmall
from tests.server.conftest import create_key
from tests.serverproc import start_server
from vectorforge.evaluation.history import History
from vectorforge.evaluation.workspace import Workspace


@pytest.fixture
def data(scifact_small: SciFactSmall, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(scifact_small.data, folder)
    Workspace(folder).goldsets.save(scifact_small.goldset)
    return folder


def test_evaluate_list_compare_and_scrape_over_http(data: Path) -> None:
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            (gold,) = http.get("/evaluation/goldsets").json()
            assert gold["name"] == "sci" and gold["versions"][-1]["queries"] == 80
            first = http.post("/evaluation/runs", json={"collection": "sci", "goldset": "sci"})
            assert first.status_code == 200, first.text
            bad = http.post(
                "/evaluation/runs",
                json={"collection": "sci", "goldset": "sci", "search": {"filter": HIDE_HALF}},
            ).json()
            assert bad["baseline_run_id"] == first.json()["run_id"]
            assert any(c["regression"] and c["segment"] == "all" for c in bad["changes"])
            runs = http.get("/evaluation/runs", params={"goldset": "sci"}).json()
            assert [r["run_id"] for r in runs] == [first.json()["run_id"], bad["run_id"]]
            assert "per_query" not in runs[0]
            one = http.get(f"/evaluation/runs/{bad['run_id']}").json()
            assert len(one["per_query"]) == 80 and one["regressions"]
            cmp = http.get(
                "/evaluation/compare", params={"baseline": bad["run_id"], "candidate": first.json()["run_id"]}
            ).json()
            assert any(c["improvement"] for c in cmp["changes"])
            scrape = http.get("/metrics").text
            line = next(
                x
                for x in scrape.splitlines()
                if x.startswith(
                    'vectorforge_eval_metric{collection="sci",goldset="sci",metric="ndcg@10",segment="all"}'
                )
            )
            assert float(line.split()[-1]) == pytest.approx(bad["metrics"]["ndcg@10"])
            assert 'vectorforge_eval_regressions{collection="sci",goldset="sci"}' in scrape
            typo = http.post(
                "/evaluation/runs", json={"collection": "sci", "goldset": "sci", "search": {"nprobe": 1}}
            )
            assert typo.status_code == 422
            missing = http.post("/evaluation/runs", json={"collection": "sci", "goldset": "nope"})
            assert missing.status_code == 404 and missing.json()["error"] == "GoldSetNotFound"
            assert http.get("/evaluation/runs/nope").status_code == 404
    finally:
        server.stop()
    assert len(History(data / "evaluation" / "history.sqlite").runs()) == 2


def test_keys_scope_the_runs(data: Path) -> None:
    Workspace(data).history  # noqa: B018 - the history exists before the server starts
    _, admin = create_key(data, "admin")
    _, reader = create_key(data, "read-only")
    _, writer = create_key(data, "read-write", "sci")
    _, other = create_key(data, "read-only", "elsewhere")
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.get("/evaluation/runs").status_code == 401
            denied = http.post(
                "/evaluation/runs", json={"collection": "sci", "goldset": "sci"}, headers={"api-key": reader}
            )
            assert denied.status_code == 403
            done = http.post(
                "/evaluation/runs", json={"collection": "sci", "goldset": "sci"}, headers={"api-key": admin}
            )
            assert done.status_code == 200, done.text
            run_id = done.json()["run_id"]
            assert len(http.get("/evaluation/runs", headers={"api-key": reader}).json()) == 1
            assert http.get("/evaluation/runs", headers={"api-key": other}).json() == []
            assert http.get(f"/evaluation/runs/{run_id}", headers={"api-key": other}).status_code == 404
            # gold sets: a key limited to other collections sees none of this one's queries
            assert [
                g["name"] for g in http.get("/evaluation/goldsets", headers={"api-key": reader}).json()
            ] == ["sci"]
            assert http.get("/evaluation/goldsets", headers={"api-key": other}).json() == []
            assert http.get("/evaluation/goldsets/sci", headers={"api-key": other}).status_code == 404
            assert http.get("/evaluation/goldsets/sci", headers={"api-key": reader}).status_code == 200
            # a webhook or a retention setting is the admin's to set (the server would POST anywhere)
            body = {"collection": "sci", "goldset": "sci", "webhook": "http://127.0.0.1:9/x"}
            assert http.post("/evaluation/runs", json=body, headers={"api-key": writer}).status_code == 403
            body = {"collection": "sci", "goldset": "sci", "keep_last": 1}
            assert http.post("/evaluation/runs", json=body, headers={"api-key": writer}).status_code == 403
            body = {"collection": "sci", "goldset": "sci", "baseline": "20200101T000000-abcdef"}
            assert http.post("/evaluation/runs", json=body, headers={"api-key": writer}).status_code == 404
            body = {"collection": "sci", "goldset": "sci", "metrics": ["ndcg@010"]}
            done = http.post("/evaluation/runs", json=body, headers={"api-key": writer})
            assert done.status_code == 200 and list(done.json()["metrics"]) == ["ndcg@10"]
    finally:
        server.stop()


def test_the_server_runs_its_schedule(data: Path, tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(yaml.safe_dump([{"collection": "sci", "goldset": "sci", "every": "2s"}]))
    server = start_server(data, "--eval-schedule", str(schedule))
    history = History(data / "evaluation" / "history.sqlite")
    try:
        deadline = time.monotonic() + 60
        while len(history.runs()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        server.stop()
    runs = history.runs()
    assert len(runs) >= 2 and {r.label for r in runs} == {"scheduled"}
    assert not any(r.regressions for r in runs)  # an unchanged system does not alarm


def test_a_bad_schedule_stops_the_server_from_starting(data: Path, tmp_path: Path) -> None:
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(yaml.safe_dump([{"collection": "sci", "goldset": "sci", "every": "often"}]))
    with pytest.raises(RuntimeError, match="interval 'often' is not understood"):
        start_server(data, "--eval-schedule", str(schedule))
    schedule.write_text(yaml.safe_dump([{"collection": "sci", "gold": "sci"}]))
    with pytest.raises(RuntimeError, match="entry 1: goldset: Field required; gold: Extra inputs"):
        start_server(data, "--eval-schedule", str(schedule))
