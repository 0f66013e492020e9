"""`POST /plan` on a real server process: the same plan as `vectorforge plan`, from JSON or YAML,
with the server's own calibration profile when its data folder holds one; a workload that names a
file on the server, or a bad field, is refused by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from tests.serverproc import ServerProcess, start_server
from vectorforge.planning import load_catalog, load_profile, load_workload, plan_report
from vectorforge.server.routes_planning import SERVER_PROFILE

CASES = Path(__file__).resolve().parents[2] / "docs" / "case-studies"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("plan") / "data")
    try:
        yield proc
    finally:
        proc.stop()


def test_a_json_workload_gets_the_plan_the_cli_makes(server: ServerProcess) -> None:
    file = CASES / "support-bot.yaml"
    workload = load_workload(file)
    _, expected = plan_report(workload, load_catalog(workload.catalog), load_profile(), "json")
    answer = httpx.post(server.url + "/plan", json=yaml.safe_load(file.read_text()), timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json() == json.loads(expected)
    assert answer.json()["plan"]["nodes"] == 1


def test_a_yaml_workload_in_markdown_and_html(server: ServerProcess) -> None:
    text = (CASES / "legal-research.yaml").read_text()
    yaml_type = {"Content-Type": "application/yaml"}
    md = httpx.post(
        server.url + "/plan", params={"format": "md"}, content=text, headers=yaml_type, timeout=60
    )
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert md.text.startswith("# Capacity plan: legal-research") and "## What-ifs" in md.text
    html = httpx.post(server.url + "/plan?format=html", content=text, headers=yaml_type, timeout=60)
    assert html.status_code == 200 and "<html>" in html.text


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"corpus": {"points": 0}}, "corpus.points"),
        ({"catalog": "/etc/passwd"}, "catalog"),  # a path: never read
        ({"catalog": "../../data/catalog"}, "catalog"),
        ({"profile": "profile.json"}, "profile"),
        ({"vectors": [{"kind": "dense", "quantization": "sq9"}]}, "sq9"),
    ],
)
def test_bad_workloads_are_refused_by_name(
    server: ServerProcess, change: dict[str, object], named: str
) -> None:
    body = {**yaml.safe_load((CASES / "support-bot.yaml").read_text()), **change}
    answer = httpx.post(server.url + "/plan", json=body, timeout=60)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "InvalidParameter" and named in answer.json()["message"]


def test_bad_requests_are_refused_by_name(server: ServerProcess) -> None:
    body = (CASES / "support-bot.yaml").read_text()
    cases = [
        ({"format": "pdf"}, {"Content-Type": "application/yaml"}, body, "pdf"),
        ({}, {"Content-Type": "application/yaml"}, "name: [unclosed", "YAML"),
        ({}, {"Content-Type": "application/json"}, "{not json", "JSON"),
        ({}, {"Content-Type": "image/png"}, body, "image/png"),
        ({}, {"Content-Type": "application/yaml"}, "- a list", "mapping"),
    ]
    for params, headers, content, named in cases:
        answer = httpx.post(server.url + "/plan", params=params, headers=headers, content=content, timeout=60)
        assert answer.status_code == 422 and named in answer.json()["message"], (named, answer.text)


def test_the_servers_own_profile_is_used_when_its_data_folder_holds_one(server: ServerProcess) -> None:
    own = replace(load_profile(), name="the server's machine")
    own.save(server.data / SERVER_PROFILE)
    try:
        answer = httpx.post(
            server.url + "/plan", json=yaml.safe_load((CASES / "support-bot.yaml").read_text())
        )
        assert (
            answer.status_code == 200 and answer.json()["plan"]["profile"]["name"] == "the server's machine"
        )
    finally:
        (server.data / SERVER_PROFILE).unlink()


def test_a_broken_server_profile_is_the_servers_fault(server: ServerProcess) -> None:
    (server.data / SERVER_PROFILE).parent.mkdir(parents=True, exist_ok=True)
    (server.data / SERVER_PROFILE).write_text("{not a profile")
    try:
        answer = httpx.post(
            server.url + "/plan", json=yaml.safe_load((CASES / "support-bot.yaml").read_text())
        )
        assert answer.status_code == 500 and "calibration profile" in answer.json()["message"]
        assert str(server.data) not in answer.text  # no server path in the answer
    finally:
        (server.data / SERVER_PROFILE).unlink()
