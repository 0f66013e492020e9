"""The evaluation panels with real runs: a real MiniLM collection, a gold set, runs recorded through
the server's own endpoint (one unchanged, one degraded), shown in headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dashboard.conftest import Browser
from tests.evaluation.conftest import HIDE_HALF, SciFactSmall
from tests.serverproc import ServerProcess, start_server
from vectorforge.evaluation.workspace import Workspace

SCREENSHOT_ENV = "VECTORFORGE_DASHBOARD_SCREENSHOT"  # also save the screenshot there (docs/img/dashboard.png)


@pytest.fixture(scope="module")
def recorded(
    scifact_small: SciFactSmall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, list[dict[str, Any]]]]:
    data = tmp_path_factory.mktemp("dash-runs") / "data"
    shutil.copytree(scifact_small.data, data)
    Workspace(data).goldsets.save(scifact_small.goldset)
    server = start_server(data)
    runs = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for search in ({}, {}, {"filter": HIDE_HALF}):
            body = {"collection": "sci", "goldset": "sci", "search": search}
            answer = http.post("/evaluation/runs", json=body)
            assert answer.status_code == 200, answer.text
            runs.append(answer.json())
    yield server, runs
    server.stop()


def test_recorded_runs_show_in_charts_tables_and_the_paired_comparison(
    recorded: tuple[ServerProcess, list[dict[str, Any]]], browser: Browser, tmp_path: Path
) -> None:
    server, runs = recorded
    assert browser.open(server.url + "/dashboard") == "ready"
    segments = list(runs[-1]["segments"])  # all, then the length buckets
    charts = browser.js(
        "return [...document.querySelectorAll('#evaluation-charts .chart-card')]"
        ".map(card => [card.dataset.goldset, card.querySelector('.js-plotly-plot').data.length])"
    )
    assert charts == [["sci", 3 * len(segments)]]
    means = browser.js(
        "const d = document.querySelector('.chart-card[data-goldset=sci] .js-plotly-plot').data;"
        "return d.filter(t => t.mode === 'lines+markers').map(t => [t.name, t.y])"
    )
    assert dict(means)["all"] == pytest.approx([r["metrics"]["ndcg@10"] for r in runs])
    latest = browser.js(
        "return [...document.querySelectorAll('#latest-table tbody tr')]"
        ".map(tr => [tr.dataset.segment, tr.textContent])"
    )
    overall = runs[-1]["segments"]["all"]["ndcg@10"]
    assert [seg for seg, _ in latest] == segments
    assert f"{overall['mean']:.3f} [{overall['low']:.3f}, {overall['high']:.3f}]" in latest[0][1]
    # The default comparison: the latest run (degraded) against the one before it, by the paired test.
    browser.wait_for("document.querySelectorAll('#compare-table tbody tr').length > 0")
    row = browser.js(
        "const rows = [...document.querySelectorAll('#compare-table tbody tr')];"
        "const tr = rows.find(r => r.dataset.segment === 'all' && r.dataset.metric === 'ndcg@10');"
        "return [...tr.children].map(td => td.textContent)"
    )
    change = next(c for c in runs[-1]["changes"] if c["segment"] == "all" and c["metric"] == "ndcg@10")
    assert row[:6] == [
        "all",
        "ndcg@10",
        "80",
        f"{change['baseline']:.3f}",
        f"{change['candidate']:.3f}",
        f"{change['diff']:+.3f}",
    ]
    assert row[-1] == "regression"
    # The two unchanged runs compared: no change anywhere.
    browser.js(
        "const a = document.getElementById('compare-a'); a.value = arguments[0];"
        "const b = document.getElementById('compare-b'); b.value = arguments[1];"
        "b.dispatchEvent(new Event('change'))",
        runs[0]["run_id"],
        runs[1]["run_id"],
    )
    rows = "[...document.querySelectorAll('#compare-table tbody tr')]"
    browser.wait_for(f"{rows}.length > 0 && {rows}.every(tr => tr.children[5].textContent === '+0.000')")
    verdicts = browser.js(f"return {rows}.map(tr => tr.children[8].textContent)")
    assert "regression" not in verdicts and "improvement" not in verdicts
    browser.js(
        "const b = document.getElementById('compare-b');"
        "b.value = arguments[0]; b.dispatchEvent(new Event('change'))",
        runs[2]["run_id"],
    )
    browser.wait_for("document.querySelector('#compare-table td.worse') !== null")
    assert browser.errors() == []
    shot = tmp_path / "dashboard.png"
    assert browser.driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if target := os.environ.get(SCREENSHOT_ENV):
        browser.driver.set_window_size(1280, 2000)
        browser.driver.save_screenshot(target)
        browser.driver.set_window_size(1280, 1000)
