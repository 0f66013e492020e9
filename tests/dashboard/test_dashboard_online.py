"""The dashboard's Online section in a real headless Chromium against a real `vectorforge serve`
process, with real traffic through the server's own routes: logged searches on the small SciFact
collection (MiniLM) clicked by the click simulator, an A/B test and an interleaving experiment
answered by the server, a drift watch checked twice, and two shadows mirroring the logged searches
(one the same search, one hiding the relevant abstracts), per segment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.dashboard.conftest import Browser
from tests.evaluation.conftest import SciFactSmall
from tests.serverproc import ServerProcess, start_server
from vectorforge.evaluation.online.simulator import ClickModel, simulate_clicks
from vectorforge.evaluation.workspace import Workspace

SCREENSHOT_ENV = "VECTORFORGE_DASHBOARD_ONLINE_SCREENSHOT"  # also save a screenshot of the page there
MODEL = ClickModel()
HIDE_RELEVANT = {"must": [{"key": "n", "range": {"gte": 100}}]}  # every relevant abstract has n < 100
AB = {
    "name": "hide-relevant",
    "arms": {"full": {"collection": "sci"}, "none": {"collection": "sci", "filter": HIDE_RELEVANT}},
}
TDI = {**AB, "name": "tdi", "kind": "interleaving"}
SHADOWS = [
    {"name": "same", "collection": "sci", "candidate": {"collection": "sci"}},
    {"name": "<b>v2</b>", "collection": "sci", "candidate": AB["arms"]["none"]},  # shows as typed
]


def _clicks(
    http: httpx.Client, answer: dict[str, Any], judged: dict[str, int], rng: np.random.Generator
) -> None:
    ranking = [str(h["id"]) for h in answer["hits"]]
    events: list[dict[str, Any]] = []
    for c in simulate_clicks(ranking, judged, MODEL, rng):
        events.append({"type": "click", "query_id": answer["query_id"], "id": c.doc_id, "rank": c.rank})
        events.append({"type": "dwell", "query_id": answer["query_id"], "id": c.doc_id, "dwell_s": c.dwell_s})
    if events:
        assert http.post("/events", json=events).status_code == 200


def _searches(http: httpx.Client, gold: Any, qids: list[str], rng: np.random.Generator) -> None:
    """Logged searches on `sci`, one per query, clicked by the click model."""
    for i, qid in enumerate(qids):
        answer = http.post(
            "/collections/sci/points/query",
            json={"text": gold.queries[qid], "k": 10},
            headers={"X-User-Id": f"s{i}", "X-Segment": "len:long" if i % 3 else "len:short"},
        )
        assert answer.status_code == 200, answer.text
        _clicks(http, answer.json(), gold.qrels[qid], rng)


def _experiment(
    http: httpx.Client, spec: dict[str, Any], gold: Any, n: int, rng: np.random.Generator
) -> None:
    name = spec["name"]
    assert http.post("/experiments", json=spec).status_code in (200, 201)
    assert http.post(f"/experiments/{name}/start").json()["status"] == "running"
    qids = list(gold.queries)
    for i in range(n):
        qid = qids[int(rng.integers(len(qids)))]
        answer = http.post(
            f"/experiments/{name}/query", json={"text": gold.queries[qid], "user_id": f"{name}-u{i}"}
        )
        assert answer.status_code == 200, answer.text
        _clicks(http, answer.json(), gold.qrels[qid], rng)


@pytest.fixture(scope="module")
def online_server(
    scifact_small: SciFactSmall, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    """A server with logged, clicked searches, two experiments and two drift checks; the
    dashboard's online answer and each experiment's results as the server's JSON gives them."""
    data = tmp_path_factory.mktemp("dash-online") / "data"
    shutil.copytree(scifact_small.data, data)
    gold = scifact_small.goldset
    Workspace(data).goldsets.save(gold)
    server = start_server(data)
    rng = np.random.default_rng(7)
    qids = list(gold.queries)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.put("/online/logging/sci", json={"sample_rate": 1.0}).status_code == 200
            for shadow in SHADOWS:
                assert http.post("/online/shadows", json=shadow).status_code == 200
            watch = http.put(
                "/online/drift/sci", json={"window": 20, "every": "24h", "reference_goldset": "sci"}
            )
            assert watch.status_code == 200, watch.text
            checks = []
            for part in (qids[:20], qids[20:40]):
                _searches(http, gold, part, rng)
                checks.append(http.post("/online/drift/sci/check").json())
            assert [c["status"] for c in checks] == ["checked", "checked"], checks
            _experiment(http, AB, gold, 60, rng)
            _experiment(http, TDI, gold, 30, rng)
            results = {n: http.get(f"/experiments/{n}/results").json() for n in (AB["name"], TDI["name"])}
            overview = http.get("/dashboard/api/online").json()
    except BaseException:
        server.stop()
        raise
    yield server, {"overview": overview, "results": results, "checks": checks}
    server.stop()


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with nothing online: no collection, no event."""
    server = start_server(tmp_path_factory.mktemp("dash-quiet") / "data")
    yield server
    server.stop()


def _traces(browser: Browser, container: str) -> list[list[Any]]:
    """[data-collection, [trace names]] of each chart card in `container`."""
    result: list[list[Any]] = browser.js(
        f"return [...document.querySelectorAll('#{container} .chart-card')]"
        ".map(card => [card.dataset.collection, card.querySelector('.js-plotly-plot').data.map(t => t.name)])"
    )
    return result


def test_online_metrics_experiments_and_drift_render_from_real_traffic(
    online_server: tuple[ServerProcess, dict[str, Any]], browser: Browser
) -> None:
    server, seen = online_server
    overview = seen["overview"]
    assert browser.open(server.url + "/dashboard") == "ready"
    browser.wait_for("!document.getElementById('online').hidden")

    # (a) One chart per collection: the metric (ctr@10 first) and the searches per hour.
    assert _traces(browser, "series-charts") == [["sci", ["ctr@10", "searches"]]]
    windows = overview["series"]["sci"]
    bars = browser.js("return document.querySelector('#series-charts .js-plotly-plot').data[1].y")
    assert bars == [w["searches"] for w in windows] and sum(bars) == 40 + 60 + 30
    options = browser.js(
        "return [...document.getElementById('online-metric-select').options].map(o => o.value)"
    )
    assert {"ctr@10", "mrr", "abandonment", "success@10", "zero_result", "latency_p95_ms"} <= set(options)
    browser.js(
        "const s = document.getElementById('online-metric-select'); s.value = 'mrr';"
        "s.dispatchEvent(new Event('change'))"
    )
    line = browser.js(
        "const t = document.querySelector('#series-charts .js-plotly-plot').data[0]; return [t.name, t.y]"
    )
    assert line[0] == "mrr"
    assert line[1] == pytest.approx([w["mrr"] for w in windows], nan_ok=True)

    # (b) The experiments, in the order made: arms, the comparisons with their verdicts, the preference.
    rows = browser.js(
        "return [...document.querySelectorAll('#experiments-table tbody tr')]"
        ".map(tr => [tr.dataset.experiment, ...[...tr.children].map(td => td.innerText)])"
    )
    assert [r[:4] for r in rows] == [
        ["hide-relevant", "hide-relevant", "A/B", "running"],
        ["tdi", "tdi", "interleaving", "running"],
    ]
    ab, tdi = rows
    report = seen["results"]["hide-relevant"]
    arms = report["arms"]
    assert (
        f"full (sci, control): {arms['full']['searches']} searches, ctr@10 {arms['full']['ctr@10']:.3f}"
        in ab[4]
    )
    assert f"none (sci): {arms['none']['searches']} searches" in ab[4]
    assert arms["full"]["searches"] + arms["none"]["searches"] == 60
    success = next(c for c in report["comparisons"] if (c["metric"], c["method"]) == ("success@10", "z-test"))
    verdict = (
        ("better" if success["diff"] > 0 else "worse")
        if success["significant"]
        else "no significant difference"
    )
    expected = (
        f"success@10 (z-test) none \u2212 full: {success['diff']:+.3f} "
        f"[{success['ci_low']:.3f}, {success['ci_high']:.3f}]"
    )
    line_of = next(x for x in ab[5].split("\n") if x.startswith("success@10 (z-test)"))
    assert line_of.startswith(expected) and line_of.endswith("\u2014 " + verdict)
    assert len(ab[5].split("\n")) == len(report["comparisons"])
    assert ab[6] == "\u2014"  # no interleaving
    fewest = min(arms["full"]["searches"], arms["none"]["searches"])
    assert ab[7].split("\n") == [
        f"not checked yet: needs 200 searches per arm (fewest {fewest})",
        "p95 latency \u2264 1.5\u00d7 control; zero results \u2264 control + 0.05",
    ]
    pref = seen["results"]["tdi"]["interleaving"]
    assert tdi[4].startswith("interleaved (full \u00b7 none): 30 searches")
    assert (
        tdi[6].split("\n")[0]
        == f"full wins {pref['wins_a']}, none wins {pref['wins_b']}, ties {pref['ties']}"
    )
    assert f"p {pref['p_value']:.3f}" in tdi[6] or "p <0.001" in tdi[6]
    assert tdi[5] == "\u2014"  # no A/B comparison for an interleaving experiment

    # (c) Drift: AUC per check, the threshold as a line across them, MMD p, the alarms marked.
    assert _traces(browser, "drift-charts") == [
        ["sci", ["classifier AUC", "AUC threshold 0.550", "MMD p-value", "alarm"]]
    ]
    drawn = browser.js("return document.querySelector('#drift-charts .js-plotly-plot').data.map(t => t.y)")
    aucs = [
        next(t for t in c["embeddings"]["tests"] if t["name"] == "classifier_auc")["statistic"]
        for c in seen["checks"]
    ]
    assert drawn[0] == pytest.approx(aucs)
    assert drawn[1] == [0.55, 0.55]
    assert drawn[3] == pytest.approx([a for a, c in zip(aucs, seen["checks"], strict=True) if c["alarm"]])
    last = browser.js(
        "return [...document.querySelectorAll('#drift-table tbody tr')]"
        ".map(tr => [tr.dataset.collection, tr.dataset.test,"
        " tr.children[4].textContent, tr.children[6].textContent])"
    )
    auc_row = next(r for r in last if r[1] == "classifier_auc")
    assert auc_row == ["sci", "classifier_auc", f"{aucs[-1]:.3f}", "> 0.550"]
    assert {"mmd", "centroid"} <= {r[1] for r in last}

    # (d) Shadows: one row for all queries, then one per segment, as the server summarized them.
    assert _shadow_rows(browser) == _expected_shadow_rows(seen["overview"]["shadow"])
    assert browser.js("return document.querySelectorAll('main b').length") == 0  # the name shows as typed
    assert not browser.visible("shadow-empty")
    assert not browser.visible("online-note")
    assert browser.errors() == []
    if target := os.environ.get(SCREENSHOT_ENV):
        browser.driver.set_window_size(1280, 2600)
        browser.driver.save_screenshot(target)
        browser.driver.set_window_size(1280, 1000)


def _shadow_rows(browser: Browser) -> list[list[str]]:
    rows: list[list[str]] = browser.js(
        "return [...document.querySelectorAll('#shadow-table tbody tr')]"
        ".map(tr => [...tr.children].map(td => td.textContent))"
    )
    return rows


def _expected_shadow_rows(shadow: dict[str, Any]) -> list[list[str]]:
    def fixed(v: float | None) -> str:
        return "\u2014" if v is None else f"{v:.3f}"

    def signed(v: float | None, places: int = 3) -> str:
        return "\u2014" if v is None else f"{v:+.{places}f}"

    rows = []
    for name in sorted(shadow):
        summary = shadow[name]["summary"]
        for segment, s in [("all", summary), *sorted(summary["segments"].items())]:
            overall = segment == "all"
            rows.append([
                name, segment, str(s["queries"]),
                str(s["dropped"]) if overall else "", str(s["failed"]) if overall else "",
                fixed(s["rbo"]), fixed(s["jaccard"]), fixed(s["top1_agreement"]),
                signed(s["score_delta"]), signed(s["latency_delta_ms"], 1),
                str(shadow[name]["review"]) if overall else "",
            ])  # fmt: skip
    return rows


def test_shadow_summaries_are_real_comparisons_per_segment(
    online_server: tuple[ServerProcess, dict[str, Any]], browser: Browser
) -> None:
    server, seen = online_server
    shadow = seen["overview"]["shadow"]
    assert set(shadow) == {"same", "<b>v2</b>"}
    same, hiding = shadow["same"]["summary"], shadow["<b>v2</b>"]["summary"]
    assert same["queries"] == hiding["queries"] == 40  # every logged search, none dropped
    assert same["rbo"] == pytest.approx(1.0) and same["top1_agreement"] == 1.0
    assert hiding["rbo"] < 0.8 and shadow["<b>v2</b>"]["review"] > 0
    assert set(hiding["segments"]) == {"len:long", "len:short"}
    assert browser.open(server.url + "/dashboard") == "ready"
    rows = _shadow_rows(browser)
    assert [r[:2] for r in rows] == [
        ["<b>v2</b>", "all"], ["<b>v2</b>", "len:long"], ["<b>v2</b>", "len:short"],
        ["same", "all"], ["same", "len:long"], ["same", "len:short"],
    ]  # fmt: skip
    assert rows == _expected_shadow_rows(shadow)
    assert browser.errors() == []


def test_a_server_with_nothing_online_shows_empty_notices(
    quiet_server: ServerProcess, browser: Browser
) -> None:
    answer = httpx.get(quiet_server.url + "/dashboard/api/online").json()
    assert answer["series"] == {} and answer["experiments"] == [] and answer["drift"] == {}
    assert browser.open(quiet_server.url + "/dashboard") == "ready"
    for notice, text in (
        ("series-empty", "No logged searches in this window."),
        ("experiments-empty", "No experiments yet."),
        ("drift-empty", "No collection is watched for drift."),
        ("shadow-empty", "No shadow traffic yet."),
    ):
        assert browser.visible(notice) and browser.text(notice) == text
    for body in ("series-body", "experiments-table", "drift-body", "shadow-table"):
        assert not browser.visible(body)
    assert browser.js("return document.querySelectorAll('#online .js-plotly-plot').length") == 0
    # The window select asks again, for 30 days, and draws the answer (the notice shown again).
    browser.js(
        "document.getElementById('series-empty').hidden = true;"
        "const s = document.getElementById('online-hours'); s.value = '720';"
        "s.dispatchEvent(new Event('change'))"
    )
    browser.wait_for("!document.getElementById('series-empty').hidden")
    assert browser.visible("collections-empty") and browser.errors() == []


def test_a_failing_online_answer_leaves_the_other_sections(
    quiet_server: ServerProcess, browser: Browser
) -> None:
    """A server without the route (an older one) or an error in it: the page still shows its other
    sections, and the Online section says why it has nothing. The failure is made in the page, by
    wrapping its `fetch` (this server answers the route)."""
    assert browser.open(quiet_server.url + "/dashboard") == "ready"
    browser.js(
        "const real = window.fetch;"
        "window.fetch = (path, init) => String(path).startsWith('/dashboard/api/online')"
        "  ? Promise.resolve(new Response("
        "      JSON.stringify({error: 'Boom', message: 'the event store is locked'}),"
        "      {status: 500, headers: {'Content-Type': 'application/json'}}))"
        "  : real(path, init);"
        "document.body.dataset.state = ''; window.vfDashboard.load()"
    )
    assert browser.wait_state() == "ready"
    assert browser.visible("collections") and browser.visible("evaluation") and browser.visible("online")
    assert browser.visible("online-note")
    assert (
        browser.text("online-note")
        == "Online data unavailable: The server answered 500: the event store is locked"
    )
    assert browser.visible("experiments-empty") and browser.visible("shadow-empty")
    assert not browser.visible("notice")
    assert browser.errors() == []
