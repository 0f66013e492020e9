"""Online evaluation through a real server process on a real SciFact collection (MiniLM): the
server's own search log, events in, online metrics out, and an A/B experiment's life."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.evaluation.conftest import HIDE_HALF, Receiver, SciFactSmall
from tests.serverproc import start_server
from vectorforge.evaluation.goldsets import GoldSet, from_beir
from vectorforge.evaluation.online.events import EventStore
from vectorforge.evaluation.workspace import Workspace


def texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def data(scifact_small: SciFactSmall, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(scifact_small.data, folder)
    return folder


def test_logged_searches_clicks_and_metrics_over_http(data: Path, scifact_small: SciFactSmall) -> None:
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            query = {"text": "vitamin D and depression", "k": 5}
            assert "query_id" not in http.post("/collections/sci/points/query", json=query).json()  # off
            bad = http.put("/online/logging/sci", json={"sample_rate": 1.5})
            assert bad.status_code == 422
            assert http.put("/online/logging/nope", json={"sample_rate": 1}).status_code == 404
            on = http.put("/online/logging/sci", json={"sample_rate": 1.0})
            assert on.json() == {"sample_rate": 1.0, "keep_text": False}
            qids = []
            for i, text in enumerate(list(scifact_small.goldset.queries.values())[:10]):
                answer = http.post(
                    "/collections/sci/points/query",
                    json={"text": text, "k": 5},
                    headers={"X-User-Id": f"u{i}"},
                ).json()
                qids.append(answer["query_id"])
                if i % 2 == 0:  # half the users click the first result and read it
                    first = answer["hits"][0]["id"]
                    events = [
                        {"type": "click", "query_id": answer["query_id"], "id": first, "rank": 1},
                        {"type": "dwell", "query_id": answer["query_id"], "id": first, "dwell_s": 40},
                    ]
                    assert http.post("/events", json=events).json()["feedback"] == 2
            broken = [{"type": "click", "query_id": qids[1], "id": "x", "rank": 1}, {"type": "click"}]
            refused = http.post("/events", json=broken)
            assert refused.status_code == 422 and "event 1" in refused.json()["message"]
            metrics = http.get("/online/metrics", params={"collection": "sci", "k": 5}).json()["metrics"][
                "all"
            ]
            assert metrics["searches"] == 10
            assert metrics["ctr@5"] == pytest.approx(0.5)  # the refused batch added nothing
            assert metrics["success@5"] == pytest.approx(0.5) and metrics["mrr"] == pytest.approx(0.5)
            assert metrics["latency_p50_ms"] > 0
            scraped = http.get("/metrics").text
            assert 'vectorforge_online_metric{collection="sci",metric="ctr@10"} 0.5' in scraped
            series = http.get("/online/series", params={"step_s": 3600}).json()["windows"]
            assert sum(w["searches"] for w in series) == 10
    finally:
        server.stop()
    rows = EventStore(data / "evaluation" / "events.sqlite").searches(collection="sci")
    assert len(rows) == 10 and all(r["query_text"] is None and r["query_hash"] for r in rows)  # PII rule
    assert {r["user_id"] for r in rows} == {f"u{i}" for i in range(10)}


def test_an_ab_experiment_assigns_logs_and_reports_each_arm(data: Path, scifact_small: SciFactSmall) -> None:
    spec: dict[str, Any] = {
        "name": "hide-half",
        "arms": {"control": {"collection": "sci"}, "treatment": {"collection": "sci", "filter": HIDE_HALF}},
        "k": 10,
    }
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert (
                http.post("/experiments", json={**spec, "arms": {"a": {"collection": "sci"}}}).status_code
                == 422
            )
            missing = http.post(
                "/experiments",
                json={**spec, "arms": {"a": {"collection": "nope"}, "b": {"collection": "sci"}}},
            )
            assert missing.status_code == 404
            assert http.post("/experiments", json=spec).json()["status"] == "draft"
            assert http.post("/experiments", json=spec).status_code == 409
            draft = http.post("/experiments/hide-half/query", json={"text": "x", "user_id": "u1"}).json()
            assert draft["arm"] == "control" and "query_id" not in draft  # a draft is not logged
            assert http.post("/experiments/hide-half/start").json()["status"] == "running"
            assert http.post("/experiments/hide-half/start").status_code == 422  # already running
            arms: dict[str, str] = {}
            gold = scifact_small.goldset
            for i, (qid, text) in enumerate(gold.queries.items()):
                user = f"user{i % 40}"
                answer = http.post(
                    "/experiments/hide-half/query", json={"text": text, "user_id": user}
                ).json()
                assert arms.setdefault(user, answer["arm"]) == answer["arm"]  # sticky per user
                relevant = [rank for rank, h in enumerate(answer["hits"], 1) if h["id"] in gold.qrels[qid]]
                if relevant:  # a user clicks the first relevant result
                    event = {
                        "type": "click",
                        "query_id": answer["query_id"],
                        "id": "doc",
                        "rank": relevant[0],
                    }
                    http.post("/events", json=[event])
            assert 10 <= sum(a == "treatment" for a in arms.values()) <= 30
            results = http.get("/experiments/hide-half/results").json()
            control, treatment = results["arms"]["control"], results["arms"]["treatment"]
            assert control["searches"] + treatment["searches"] == len(gold.queries)
            assert control["ctr@10"] > treatment["ctr@10"]  # half the corpus hidden: fewer relevant hits
            assert http.post("/experiments/hide-half/stop").json()["status"] == "stopped"
            log = http.get("/experiments/hide-half").json()["log"]
            assert [entry["action"] for entry in log] == ["create", "start", "stop"]
            assert http.get("/experiments/none").status_code == 404
    finally:
        server.stop()
    assert Workspace(data).events.counts()["searches"] == len(scifact_small.goldset.queries)


def test_drift_is_watched_checked_on_schedule_and_alarms_to_the_webhook(
    data: Path, scifact_small: SciFactSmall, shared: Path, webhook: Receiver
) -> None:
    """Reference: a gold set of 200 SciFact claims drawn at random (consecutive claim ids share a
    source paper: a window of them differs from any other, see docs/online.md). 40 other claims
    drawn at random do not alarm; 40 dbpedia entity queries do, on schedule, to the webhook and in
    Prometheus."""
    full = from_beir(shared / "data" / "scifact", name="ref")
    drawn = random.Random(0).sample(sorted(full.qrels), 240)
    reference = GoldSet(
        "ref", {q: full.queries[q] for q in drawn[:200]}, {q: dict(full.qrels[q]) for q in drawn[:200]}
    )
    Workspace(data).goldsets.save(reference)
    claims = [full.queries[q] for q in drawn[200:]]
    entities = texts(shared / "data/dbpedia/queries.jsonl")
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            http.put("/online/logging/sci", json={"sample_rate": 1.0})
            bad = http.put("/online/drift/sci", json={"window": 5})
            assert bad.status_code == 422  # windows below 20 rows say nothing
            watch = {"window": 40, "every": "1h", "reference_goldset": "ref", "webhook": webhook.url}
            state = http.put("/online/drift/sci", json=watch).json()
            assert state["reference"]["queries"] == 200
            assert state["reference"]["source"].startswith("goldset ref@")
            for text in claims[:39]:
                http.post("/collections/sci/points/query", json={"text": text, "k": 5})
            waiting = http.post("/online/drift/sci/check").json()
            assert waiting["status"] == "waiting" and waiting["have"] == 39
            http.post("/collections/sci/points/query", json={"text": claims[39], "k": 5})
            same = http.post("/online/drift/sci/check").json()
            assert same["status"] == "checked" and not same["alarm"], same
            for text in entities[:40]:
                http.post("/collections/sci/points/query", json={"text": text, "k": 5})
            watch = {"window": 40, "every": "1s", "webhook": webhook.url}  # no gold set: the reference stays
            http.put("/online/drift/sci", json=watch)  # and the schedule checks it now
            deadline = time.monotonic() + 60
            while not webhook.bodies and time.monotonic() < deadline:
                time.sleep(0.5)
            (alert,) = webhook.bodies[:1]
            assert alert["event"] == "vectorforge.online.drift" and alert["collection"] == "sci"
            auc = next(t for t in alert["embeddings"]["tests"] if t["name"] == "classifier_auc")
            assert auc["alarm"] and auc["statistic"] > 0.8
            checks = http.get("/online/drift/sci").json()["checks"]
            assert [c["alarm"] for c in checks[:2]] == [False, True]
            scraped = http.get("/metrics").text
            assert 'vectorforge_drift_alarm{collection="sci"} 1.0' in scraped
            assert 'vectorforge_drift_statistic{collection="sci",test="classifier_auc"}' in scraped
    finally:
        server.stop()


def test_clicked_unjudged_results_are_queued_and_judged_into_a_new_gold_set_version(
    data: Path, scifact_small: SciFactSmall
) -> None:
    gold = scifact_small.goldset
    Workspace(data).goldsets.save(gold)
    qid = next(iter(gold.qrels))
    judged = next(iter(gold.qrels[qid]))
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            http.put("/online/logging/sci", json={"sample_rate": 1.0, "keep_text": True})
            known = http.post(
                "/collections/sci/points/query", json={"text": gold.queries[qid], "k": 10}
            ).json()
            fresh = http.post(
                "/collections/sci/points/query", json={"text": "statins and dementia", "k": 10}
            ).json()
            unjudged = next(h["id"] for h in known["hits"] if h["id"] not in gold.qrels[qid])
            events = [
                {"type": "click", "query_id": known["query_id"], "id": judged, "rank": 1},  # judged already
                {"type": "click", "query_id": known["query_id"], "id": unjudged, "rank": 2},
                {"type": "click", "query_id": fresh["query_id"], "id": fresh["hits"][0]["id"], "rank": 1},
            ]
            http.post("/events", json=events)
            queue = http.get("/online/judging", params={"goldset": "sci"}).json()
            pairs = {(p["qid"], p["query"], p["id"]) for p in queue["pairs"]}
            assert pairs == {
                (qid, gold.queries[qid], unjudged),
                (None, "statins and dementia", fresh["hits"][0]["id"]),
            }
            bad = http.post(
                "/online/judging/sci", json={"judgments": [{"qid": "nope", "id": "1", "grade": 1}]}
            )
            assert bad.status_code == 422
            judgments = [
                {"qid": qid, "id": unjudged, "grade": 0},
                {"query": "statins and dementia", "id": fresh["hits"][0]["id"], "grade": 2},
            ]
            added = http.post("/online/judging/sci", json={"judgments": judgments}).json()
            assert added["new"] and added["from"] == gold.version != added["version"]
            assert http.get("/online/judging", params={"goldset": "sci"}).json()["pairs"] == []
    finally:
        server.stop()
    versions = Workspace(data).goldsets.versions("sci")
    assert [v["version"] for v in versions] == [gold.version, added["version"]]  # the refused one added none
    new = Workspace(data).goldset("sci")
    assert new.qrels[qid][unjudged] == 0 and len(new.queries) == len(gold.queries) + 1
    (online,) = [q for q in new.queries if q.startswith("online-")]
    assert new.queries[online] == "statins and dementia" and new.segments[online] == {"source": "online"}


def test_corpus_drift_watches_the_documents_the_server_writes(data: Path, shared: Path) -> None:
    """The first 20 SciFact abstracts written are the documents' reference; 20 more do not alarm,
    20 dbpedia abstracts do; queries are not needed for it."""

    def abstracts(folder: str, start: int, n: int) -> list[str]:
        rows = [
            json.loads(line) for line in (shared / "data" / folder / "corpus.jsonl").read_text().splitlines()
        ]
        picked = random.Random(start).sample(rows, n)
        return [f"{r['title']} {r['text']}"[:600] for r in picked]

    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            http.put("/online/drift/sci", json={"window": 20, "documents": True})
            for start, folder in ((1, "scifact"), (2, "scifact"), (3, "dbpedia")):
                texts = abstracts(folder, start, 20)
                ids = [f"{folder}-{start}-{i}" for i in range(20)]
                assert (
                    http.post("/collections/sci/points/add", json={"texts": texts, "ids": ids}).status_code
                    == 200
                )
                answer = http.post("/online/drift/sci/check")
                assert answer.status_code == 200, answer.text
                check = answer.json()
                if start == 1:
                    assert check["documents"]["status"] == "reference frozen" and check["status"] == "waiting"
                elif start == 2:
                    assert check["documents"]["status"] == "checked" and not check["alarm"], check[
                        "documents"
                    ]
                else:
                    assert check["documents"]["alarm"] and check["alarm"], check
            state = http.get("/online/drift/sci").json()
            assert state["documents_reference"]["documents"] == 20 and state["reference"] is None
            scraped = http.get("/metrics").text
            assert 'vectorforge_drift_statistic{collection="sci",test="documents:classifier_auc"}' in scraped
    finally:
        server.stop()
