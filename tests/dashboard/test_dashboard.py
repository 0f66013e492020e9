"""The dashboard in a real headless Chromium against a real `vectorforge serve` process.

The collections panel shows what the data folder holds; the evaluation section shows its empty state
from the real endpoint, and its charts and tables are drawn by the page's own script from literal
runs (`window.vfDashboard.renderEvaluation`: names no real gold set may have);
tests/dashboard/test_dashboard_runs.py shows real recorded runs. Strings
shaped like HTML must show as typed and make no element; with keys required, no key shows a notice
and no data, a read-only key shows the data.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import vectorforge as vf
from tests.dashboard.conftest import Browser
from tests.server.conftest import create_key
from tests.serverproc import ServerProcess, start_server

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<img src=x onerror=window.__xss=1>"  # shown by the page as a payload index name
HOSTILE_GOLDSET = "<img src=x onerror=window.__xss=2>"
HOSTILE_SEGMENT = "<b onmouseover=window.__xss=3>bold</b>"
COUNTS = {"docs": 42, "notes": 7, "empty": 0}


def _fill(data: Path) -> None:
    db = vf.connect(data)
    try:
        rng = np.random.default_rng(0)
        docs = db.create_collection("docs", dim=8, metric="cosine")
        docs.upsert(
            ids=list(range(COUNTS["docs"])), vectors=rng.random((COUNTS["docs"], 8), dtype=np.float32)
        )
        docs.create_payload_index(HOSTILE, "keyword")
        notes = db.create_collection("notes", dim=4, metric="l2", index="flat", shards=2)
        notes.upsert(
            ids=list(range(COUNTS["notes"])), vectors=rng.random((COUNTS["notes"], 4), dtype=np.float32)
        )
        db.create_collection("empty", dim=4)
    finally:
        db.close()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A loopback server with no keys (anonymous requests allowed)."""
    data = tmp_path_factory.mktemp("dash-open") / "data"
    _fill(data)
    server = start_server(data)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """A server that requires keys: an admin key, a read-only key, and a read-only key for `notes`."""
    data = tmp_path_factory.mktemp("dash-keyed") / "data"
    _fill(data)
    keys = {
        "admin": create_key(data, "admin")[1],
        "read-only": create_key(data, "read-only")[1],
        "notes-only": create_key(data, "read-only", "notes")[1],
    }
    server = start_server(data)
    yield server, keys
    server.stop()


def _rows(browser: Browser) -> dict[str, str]:
    """Collection name -> the points cell's text, as the page shows them."""
    pairs = browser.js(
        "return [...document.querySelectorAll('#collections-table tbody tr')]"
        ".map(tr => [tr.querySelector('.name').textContent, tr.querySelector('.points').textContent])"
    )
    return dict(pairs)


def _runs(second: str = HOSTILE_GOLDSET, segment: str = HOSTILE_SEGMENT) -> list[dict[str, Any]]:
    """Runs of the form /dashboard/api/evaluation answers: two gold sets, three segments in one."""
    runs = []
    for goldset, segments, days in (
        ("scifact", ["all", "len:short", "len:long"], 5),
        (second, ["all", segment], 3),
    ):
        for day in range(days):
            scores = {}
            for k, segment in enumerate(segments):
                mean = 0.6 + 0.02 * day - 0.05 * k
                scores[segment] = {
                    "ndcg@10": {"mean": mean, "low": mean - 0.04, "high": mean + 0.04, "n": 100 - 30 * k},
                    "recall@100": {
                        "mean": mean + 0.2,
                        "low": mean + 0.15,
                        "high": mean + 0.25,
                        "n": 100 - 30 * k,
                    },
                }
            runs.append(
                {
                    "run_id": f"{goldset[:4]}-{day}",
                    "goldset": goldset,
                    "goldset_version": "3f2a9c",
                    "collection": "docs",
                    "created_at": f"2026-11-{10 + day:02d}T09:30:00+00:00",
                    "metrics": {m: s["mean"] for m, s in scores["all"].items()},
                    "segments": scores,
                }
            )
    return runs


def _no_injected_markup(browser: Browser) -> None:
    assert browser.js("return window.__xss") is None
    assert browser.js("return document.querySelectorAll('main img, main b').length") == 0


def test_collections_panel_shows_names_counts_and_settings(
    open_server: ServerProcess, browser: Browser
) -> None:
    assert browser.open(open_server.url + "/dashboard") == "ready"
    assert _rows(browser) == {name: str(n) for name, n in COUNTS.items()}
    table = browser.text("collections-table")
    assert "8d cosine hnsw" in table and "4d l2 flat" in table
    shards = browser.js(
        "return document.querySelector('#collections-table tr[data-collection=notes]')"
        ".children[4].textContent"
    )
    assert shards == "2"
    # A payload index named like an HTML tag shows as those characters and makes no element.
    assert browser.js("return document.querySelector('.indexes').textContent") == f"{HOSTILE} (keyword)"
    _no_injected_markup(browser)
    # The evaluation section, from the real endpoint: nothing recorded yet.
    assert browser.visible("evaluation-empty")
    assert browser.text("evaluation-empty") == "No evaluation runs yet."
    assert not browser.visible("evaluation-body")
    assert not browser.visible("notice")
    assert browser.errors() == []


def test_evaluation_runs_render_as_charts_and_tables(
    open_server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    assert browser.open(open_server.url + "/dashboard") == "ready"
    browser.js("window.vfDashboard.renderEvaluation({goldsets: [], runs: arguments[0]})", _runs())
    # One chart per gold set (sorted by name), three traces per segment: band edges and the mean.
    charts = browser.js(
        "return [...document.querySelectorAll('#evaluation-charts .chart-card')]"
        ".map(card => [card.dataset.goldset, card.querySelector('.js-plotly-plot').data.length])"
    )
    assert charts == [[HOSTILE_GOLDSET, 2 * 3], ["scifact", 3 * 3]]
    legend = browser.js(
        "return [...document.querySelectorAll('.chart-card[data-goldset=scifact] .legendtext')]"
        ".map(e => e.textContent)"
    )
    assert legend == ["all", "len:long", "len:short"]
    means = browser.js(
        "const d = document.querySelector('.chart-card[data-goldset=scifact] .js-plotly-plot').data;"
        "return d.filter(t => t.mode === 'lines+markers').map(t => [t.name, t.y.length, t.y[4]])"
    )
    assert [m[:2] for m in means] == [["all", 5], ["len:long", 5], ["len:short", 5]]
    assert means[0][2] == pytest.approx(0.68)
    assert not browser.visible("evaluation-empty")
    # The latest run per gold set and segment, with mean and interval of each metric.
    latest = browser.js(
        "return [...document.querySelectorAll('#latest-table tbody tr')]"
        ".map(tr => [tr.dataset.goldset, tr.dataset.segment, tr.children[5].textContent])"
    )
    assert latest == [
        [HOSTILE_GOLDSET, "all", "0.640 [0.600, 0.680]"],
        [HOSTILE_GOLDSET, HOSTILE_SEGMENT, "0.590 [0.550, 0.630]"],
        ["scifact", "all", "0.680 [0.640, 0.720]"],
        ["scifact", "len:long", "0.580 [0.540, 0.620]"],
        ["scifact", "len:short", "0.630 [0.590, 0.670]"],
    ]
    # Run against run asks the server's paired test; these literal runs are not in its history.
    browser.wait_for("document.getElementById('compare-note').textContent.startsWith('No comparison')")
    assert "no evaluation run 'scif-3'" in browser.text("compare-note")
    # Gold set and segment names shaped like HTML show as typed, in the tables and the legend.
    assert HOSTILE_SEGMENT in browser.text("latest-table")
    assert HOSTILE_GOLDSET in browser.text("evaluation-charts")
    other_legend = browser.js("return [...document.querySelectorAll('.legendtext')].map(e => e.textContent)")
    assert HOSTILE_SEGMENT in other_legend
    _no_injected_markup(browser)
    # Another metric redraws the charts.
    browser.js(
        "const s = document.getElementById('metric-select'); s.value = 'recall@100';"
        "s.dispatchEvent(new Event('change'))"
    )
    y = browser.js(
        "return document.querySelector('.chart-card[data-goldset=scifact] .js-plotly-plot').data[2].y[0]"
    )
    assert y == pytest.approx(0.8)
    assert browser.errors(allow=("/evaluation/compare",)) == []  # the 404 of the literal runs' comparison
    browser.js(
        "const s = document.getElementById('metric-select'); s.value = 'ndcg@10';"
        "s.dispatchEvent(new Event('change'))"
    )
    browser.js(
        "window.vfDashboard.renderEvaluation({goldsets: [], runs: arguments[0]})",
        _runs("nfcorpus", "lang:de"),
    )
    assert browser.errors(allow=("/evaluation/compare",)) == []


def test_without_a_key_the_page_says_one_is_needed_and_shows_no_data(
    keyed_server: tuple[ServerProcess, dict[str, str]], browser: Browser
) -> None:
    server, _ = keyed_server
    shell = httpx.get(server.url + "/dashboard")
    assert shell.status_code == 200  # the page is public, and holds no data
    assert "docs" not in shell.text and "notes" not in shell.text
    assert browser.open(server.url + "/dashboard") == "key-needed"
    assert browser.visible("notice")
    assert "A key is needed" in browser.text("notice")
    assert not browser.visible("collections") and not browser.visible("evaluation")
    assert not browser.visible("online")
    assert _rows(browser) == {}
    assert "docs" not in browser.driver.find_element("tag name", "body").text
    # The only console errors are the refused requests.
    assert browser.errors(allow=("401 (Unauthorized)",)) == []
    # A wrong key typed in the form is refused as such.
    browser.driver.find_element("id", "key-input").send_keys("vf_00000000_wrong")
    browser.driver.find_element("css selector", "#key-form button[type=submit]").click()
    assert browser.wait_state() == "key-needed"
    assert "not accepted" in browser.text("notice")
    assert _rows(browser) == {}
    browser.js("sessionStorage.clear()")


def test_a_read_only_key_in_the_address_shows_the_data_and_leaves_the_address(
    keyed_server: tuple[ServerProcess, dict[str, str]], browser: Browser
) -> None:
    server, keys = keyed_server
    assert browser.open(f"{server.url}/dashboard?key={keys['read-only']}") == "ready"
    assert _rows(browser) == {name: str(n) for name, n in COUNTS.items()}
    assert browser.js("return window.location.href") == server.url + "/dashboard"
    assert browser.js("return document.referrer") == ""
    # The key stays for the tab's session: a reload needs no key in the address.
    assert browser.open(server.url + "/dashboard") == "ready"
    assert browser.visible("key-forget")
    assert browser.errors() == []
    # Forgetting it shows the notice again.
    browser.driver.find_element("id", "key-forget").click()
    assert browser.wait_state(not_state="ready") == "key-needed"
    assert _rows(browser) == {}
    # The fragment form never reaches the server (or a proxy's log); on an open page it changes
    # only the fragment, which the page notices.
    browser.driver.get(f"{server.url}/dashboard#key={keys['notes-only']}")
    assert browser.wait_state(not_state="key-needed") == "ready"
    assert _rows(browser) == {"notes": "7"}  # a key limited to collections sees only its own
    assert browser.js("return window.location.href") == server.url + "/dashboard"
    browser.js("sessionStorage.clear()")


def test_a_key_typed_in_the_form_shows_the_data(
    keyed_server: tuple[ServerProcess, dict[str, str]], browser: Browser
) -> None:
    server, keys = keyed_server
    assert browser.open(server.url + "/dashboard") == "key-needed"
    browser.driver.find_element("id", "key-input").send_keys(keys["admin"])
    browser.driver.find_element("css selector", "#key-form button[type=submit]").click()
    assert browser.wait_state(not_state="key-needed") == "ready"
    assert _rows(browser) == {name: str(n) for name, n in COUNTS.items()}
    assert browser.js("return document.getElementById('key-input').value") == ""
    assert browser.errors(allow=("401 (Unauthorized)",)) == []
    browser.js("sessionStorage.clear()")


def test_the_json_routes_need_a_key_that_may_read(keyed_server: tuple[ServerProcess, dict[str, str]]) -> None:
    server, keys = keyed_server
    for path in ("/dashboard/api/collections", "/dashboard/api/evaluation", "/dashboard/api/online"):
        assert httpx.get(server.url + path).status_code == 401
        answer = httpx.get(server.url + path, headers={"Authorization": f"Bearer {keys['read-only']}"})
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
    evaluation = httpx.get(server.url + "/dashboard/api/evaluation", headers={"api-key": keys["read-only"]})
    assert evaluation.json() == {"goldsets": [], "runs": []}
    scoped = httpx.get(server.url + "/dashboard/api/collections", headers={"api-key": keys["notes-only"]})
    [notes] = scoped.json()["collections"]
    assert notes["name"] == "notes" and notes["points"] == 7 and notes["shards"] == 2


def test_assets_are_served_from_the_package_with_caching_headers(open_server: ServerProcess) -> None:
    page = httpx.get(open_server.url + "/dashboard")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp
    assert page.headers["cache-control"] == "no-cache" and page.headers["referrer-policy"] == "no-referrer"
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    plotly_url = next(s for s in scripts if "plotly-" in s)
    plotly = httpx.get(open_server.url + plotly_url)
    assert plotly.status_code == 200 and plotly.headers["content-type"].startswith("text/javascript")
    assert "immutable" in plotly.headers["cache-control"]
    assert plotly.headers["content-encoding"] == "gzip"  # httpx asks for gzip and unpacks it
    assert plotly.content.startswith(b"/**\n* plotly.js v")
    again = httpx.get(open_server.url + plotly_url, headers={"If-None-Match": plotly.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    own = httpx.get(open_server.url + "/dashboard/assets/dashboard.js")
    assert own.status_code == 200 and own.headers["cache-control"] == "no-cache" and "etag" in own.headers
    for name in ("index.html", "../app.py", "plotly-0.0.0.min.js", "nothing.js"):
        assert httpx.get(open_server.url + "/dashboard/assets/" + name).status_code == 404


def test_the_package_data_ships_every_dashboard_file() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = REPO / "vectorforge"
    files = [p.relative_to(package).as_posix() for p in (package / "server" / "dashboard").iterdir()]
    assert files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns["vectorforge"]), name


def test_the_planning_panel_plans_the_workload_typed_in_it(
    keyed_server: tuple[ServerProcess, dict[str, str]], browser: Browser
) -> None:
    import yaml

    from vectorforge.planning import load_catalog, load_profile, parse_workload, plan

    server, keys = keyed_server
    assert browser.open(f"{server.url}/dashboard?key={keys['read-only']}") == "ready"
    text = browser.js("return document.getElementById('plan-workload').value")
    workload = parse_workload(yaml.safe_load(text))
    expected = plan(workload, load_catalog(workload.catalog), load_profile())  # the oracle: in-process
    browser.driver.find_element("css selector", "#plan-form button").click()
    browser.wait_for("document.body.dataset.plan === 'ready'")
    shown = dict(
        browser.js(
            "return [...document.querySelectorAll('#plan-table tr')]"
            ".map(tr => [tr.children[0].textContent, tr.children[1].textContent])"
        )
    )
    assert shown["nodes"] == f"{expected.nodes} \u00d7 {expected.instance}"
    assert shown["monthly cost"] == f"${round(expected.monthly['total']):,}"
    assert (
        browser.js("return document.querySelectorAll('#plan-chart .bars path').length") >= 2
    )  # the what-ifs
    # A bad field: the server's message, naming it, and no stale plan beside it.
    browser.js(
        "document.getElementById('plan-workload').value = arguments[0]", text.replace("100000", "0", 1)
    )
    browser.driver.find_element("css selector", "#plan-form button").click()
    browser.wait_for("document.body.dataset.plan === 'error'")
    assert "corpus.points" in browser.text("plan-error") and not browser.visible("plan-result")
    assert browser.errors(allow=("the server responded with a status of 422",)) == []
    browser.js("sessionStorage.clear()")
