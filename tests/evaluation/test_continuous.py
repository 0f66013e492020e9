"""Continuous evaluation on a real collection: an unchanged re-run never alarms, a degraded system
does (in the history, the log and a real webhook), through the library, the CLI and a server."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

import vectorforge as vf
from tests.cli.conftest import Run
from tests.evaluation.conftest import HIDE_HALF, Receiver, SciFactSmall, interrupted_command
from tests.serverproc import start_server
from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.continuous import evaluate_and_record
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import History
from vectorforge.evaluation.runs import SearchConfig
from vectorforge.evaluation.workspace import Workspace


def test_rerun_is_quiet_and_degradation_alarms(
    scifact_small: SciFactSmall, tmp_path: Path, webhook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    history = History(tmp_path / "h.sqlite")
    with vf.connect(scifact_small.data) as db:
        col = db.get_collection("sci")
        first = evaluate_and_record(col, scifact_small.goldset, history, webhook=webhook.url)
        assert first.baseline is None and first.run.metrics["ndcg@10"] > 0.6
        again = evaluate_and_record(col, scifact_small.goldset, history, webhook=webhook.url)
        assert again.baseline is not None and again.baseline.run_id == first.run.run_id
        assert not again.regressed and all(c.diff == 0 for c in again.changes)
        assert webhook.bodies == []
        history.pin(first.run.run_id)
        webhook.fail_first = 1  # the receiver fails once: the alert is retried
        with caplog.at_level(logging.WARNING, "vectorforge.evaluation"):
            bad = evaluate_and_record(
                col,
                scifact_small.goldset,
                history,
                config=SearchConfig(filter=HIDE_HALF),
                webhook=webhook.url,
            )
    assert bad.baseline is not None and bad.baseline.run_id == first.run.run_id  # the pinned one
    assert bad.regressed
    lost = {(c.segment, c.metric) for c in bad.changes if c.regression}
    assert ("all", "ndcg@10") in lost and ("all", "recall@100") in lost
    (body,) = webhook.bodies
    assert body["event"] == "vectorforge.evaluation.regression"
    assert body["run_id"] == bad.run.run_id and body["baseline_run_id"] == first.run.run_id
    assert {(r["segment"], r["metric"]) for r in body["regressions"]} == lost
    assert "regression on sci/sci segment all: ndcg@10" in caplog.text
    recorded = history.get(bad.run.run_id)
    assert recorded.regressions == bad.run.regressions and recorded.config["filter"] == HIDE_HALF
    assert recorded.system["points"] == 400 and recorded.system["embedder"]["name"] == "minilm"


def test_the_cli_records_reports_and_exits_1_on_a_regression(
    scifact_small: SciFactSmall, cli: Run, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(scifact_small.data, data)
    done = cli(
        "goldset",
        "import",
        "sci",
        "--data",
        data,
        "--jsonl",
        scifact_small.queries_jsonl,
        "--segment-field",
        "half",
    )
    assert done.returncode == 0, done.stderr
    assert "half=a: 40 queries" in done.stdout and "new version" in done.stdout
    again = cli(
        "goldset",
        "import",
        "sci",
        "--data",
        data,
        "--jsonl",
        scifact_small.queries_jsonl,
        "--segment-field",
        "half",
    )
    assert "unchanged" in again.stdout
    first = cli("eval", "run", "-d", data, "-c", "sci", "-g", "sci", "--json", tmp_path / "r1.json")
    assert first.returncode == 0, first.stderr
    assert "no baseline yet" in first.stderr
    report = json.loads((tmp_path / "r1.json").read_text())
    assert set(report["segments"]) >= {"all", "half=a", "half=b"} and report["metrics"]["ndcg@10"] > 0.6
    second = cli("eval", "run", "-d", data, "-c", "sci", "-g", "sci", "--markdown", tmp_path / "r2.md")
    assert second.returncode == 0, second.stderr
    assert "0 regressions" in second.stderr and "| half=a |" in (tmp_path / "r2.md").read_text()
    (tmp_path / "bad.yaml").write_text(json.dumps({"k": 100, "filter": HIDE_HALF}))
    bad = cli(
        "eval",
        "run",
        "-d",
        data,
        "-c",
        "sci",
        "-g",
        "sci",
        "--config",
        tmp_path / "bad.yaml",
        "--html",
        tmp_path / "r3.html",
    )
    assert bad.returncode == 1, bad.stderr
    assert "regression all ndcg@10" in bad.stderr
    page = (tmp_path / "r3.html").read_text()
    assert "Plotly" in page and "<script src=" not in page  # self-contained: plotly.js inlined
    history = cli("eval", "history", "-d", data, "-g", "sci")
    assert history.returncode == 0 and history.stdout.count("sci@") == 3
    rows = cli("eval", "sql", "-d", data, "SELECT run_id, regressions FROM runs ORDER BY created_at")
    runs = [json.loads(line) for line in rows.stdout.splitlines()]
    assert [len(json.loads(r["regressions"])) > 0 for r in runs] == [False, False, True]
    shown = cli("eval", "show", runs[2]["run_id"], "-d", data, "--baseline", runs[0]["run_id"])
    assert shown.returncode == 0 and "REGRESSION" in shown.stdout
    (tmp_path / "typo.yaml").write_text("k: 10\nnprobe: 3\n")
    typo = cli("eval", "run", "-d", data, "-c", "sci", "-g", "sci", "--config", tmp_path / "typo.yaml")
    assert typo.returncode == 2 and "nprobe: Extra inputs are not permitted" in typo.stderr
    missing = cli("eval", "run", "-d", data, "-c", "sci", "-g", "nope")
    assert missing.returncode == 2 and "gold set 'nope' does not exist" in missing.stderr
    assert len(History(data / "evaluation" / "history.sqlite").runs()) == 3  # refusals recorded nothing


def test_eval_run_against_a_server_records_in_the_data_folder(
    scifact_small: SciFactSmall, cli: Run, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(scifact_small.data, data)
    assert (
        cli("goldset", "import", "sci", "--data", data, "--jsonl", scifact_small.queries_jsonl).returncode
        == 0
    )
    server = start_server(data)
    try:
        done = cli("eval", "run", "-d", data, "--server", server.url, "-c", "sci", "-g", "sci")
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()
    (run,) = History(data / "evaluation" / "history.sqlite").runs()
    assert run.collection == "sci" and run.metrics["ndcg@10"] > 0.6


def test_eval_watch_runs_on_its_schedule(scifact_small: SciFactSmall, cli: Run, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(scifact_small.data, data)
    assert (
        cli("goldset", "import", "sci", "--data", data, "--jsonl", scifact_small.queries_jsonl).returncode
        == 0
    )
    done = cli("eval", "watch", "-d", data, "-c", "sci", "-g", "sci", "--every", "1s", "--times", "2")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("ndcg@10") == 2
    assert len(History(data / "evaluation" / "history.sqlite").runs()) == 2
    bad = cli("eval", "watch", "-d", data, "-c", "sci", "-g", "sci", "--every", "soon")
    assert bad.returncode == 2 and "interval 'soon' is not understood" in bad.stderr


def test_goldset_commands_and_retention(scifact_small: SciFactSmall, cli: Run, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(scifact_small.data, data)
    jsonl = scifact_small.queries_jsonl
    assert cli("goldset", "import", "sci", "-d", data, "--jsonl", jsonl).returncode == 0
    lines = jsonl.read_text().splitlines()[:-1]  # one query fewer: a new version
    (tmp_path / "v2.jsonl").write_text("\n".join(lines) + "\n")
    assert cli("goldset", "import", "sci", "-d", data, "--jsonl", tmp_path / "v2.jsonl").returncode == 0
    listed = cli("goldset", "list", "-d", data)
    assert listed.returncode == 0 and "sci" in listed.stdout and "│ 2 " in listed.stdout
    v1, v2 = (v["version"] for v in Workspace(data).goldsets.versions("sci"))
    shown = cli("goldset", "show", f"sci@{v1[:6]}", "-d", data)
    assert f"version {v1}" in shown.stdout and "all: 80 queries" in shown.stdout
    changed = json.loads(cli("goldset", "diff", "sci", v1, "-d", data).stdout)
    assert changed["from"] == v1 and changed["to"] == v2 and len(changed["queries_removed"]) == 1
    for _ in range(3):
        done = cli("eval", "run", "-d", data, "-c", "sci", "-g", "sci", "--keep-last", "2")
        assert done.returncode == 0, done.stderr
    old = cli("eval", "run", "-d", data, "-c", "sci", "-g", f"sci@{v1}", "--keep-last", "2")
    assert old.returncode == 0, old.stderr
    runs = History(data / "evaluation" / "history.sqlite").runs()
    assert len(runs) == 2  # the retention setting applied as runs came
    assert runs[-1].goldset_version == v1 and runs[0].goldset_version == v2  # old versions stay usable


def test_a_new_gold_set_version_starts_without_a_baseline(
    scifact_small: SciFactSmall, tmp_path: Path
) -> None:
    history = History(tmp_path / "h.sqlite")
    gold = scifact_small.goldset
    fewer = GoldSet(gold.name, gold.queries, {q: gold.qrels[q] for q in gold.judged[:-1]}, {})
    with vf.connect(scifact_small.data) as db:
        col = db.get_collection("sci")
        first = evaluate_and_record(col, gold, history)
        other = evaluate_and_record(col, fewer, history)
        assert other.baseline is None  # scores under other judgments do not pair
        again = evaluate_and_record(col, gold, history)
        assert again.baseline is not None and again.baseline.run_id == first.run.run_id
        with pytest.raises(InvalidParameter, match="a baseline must be a run of sci@"):
            evaluate_and_record(col, gold, history, baseline=other.run.run_id)


def test_ctrl_c_stops_eval_watch_mid_search(scifact_small: SciFactSmall, tmp_path: Path) -> None:
    data, code, stderr = interrupted_command(scifact_small, tmp_path, "eval", "watch", "--every", "1h")
    assert code == 130, stderr
    assert "stopped after 0 runs" in stderr
    assert History(data / "evaluation" / "history.sqlite").runs() == []  # the interrupted run is not kept
