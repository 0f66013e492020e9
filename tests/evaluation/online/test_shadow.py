"""Shadow traffic: the comparison of two rankings (rank-biased overlap against its definition), the
store, the mirror's bounded queue under a stalled or failing candidate, and mirroring through a real
server process on the SciFact collection."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.evaluation.conftest import HIDE_HALF, SciFactSmall
from tests.serverproc import start_server
from vectorforge.errors import ConflictError, InvalidParameter, ShadowNotFound
from vectorforge.evaluation.online.experiments import Arm
from vectorforge.evaluation.online.shadow import (
    Shadow,
    ShadowJob,
    ShadowMirror,
    ShadowStore,
    compare_rankings,
    rank_biased_overlap,
)


def rbo_by_definition(a: list[int], b: list[int], p: float) -> float:
    """Webber et al.'s eq. 32 read literally, with set intersections at every depth."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, n = len(short), len(long_)

    def x(d: int) -> int:
        return len(set(short[: min(d, s)]) & set(long_[:d]))

    head = sum(x(d) / d * p**d for d in range(1, n + 1))
    tail = sum(x(s) * (d - s) / (s * d) * p**d for d in range(s + 1, n + 1))
    return (1 - p) / p * (head + tail) + ((x(n) - x(s)) / n + x(s) / s) * p**n


rankings = st.lists(st.integers(0, 30), min_size=1, max_size=25, unique=True)


@settings(max_examples=300, deadline=None)
@given(rankings, rankings, st.floats(0.05, 0.95))
def test_rbo_matches_its_definition_and_is_a_similarity(a: list[int], b: list[int], p: float) -> None:
    value = rank_biased_overlap(a, b, p)
    assert value == pytest.approx(min(1.0, rbo_by_definition(a, b, p)), abs=1e-9)
    assert value == pytest.approx(rank_biased_overlap(b, a, p), abs=1e-12)
    assert 0 <= value <= 1
    assert rank_biased_overlap(a, a, p) == pytest.approx(1.0)
    disjoint = [i + 100 for i in b]
    assert rank_biased_overlap(a, disjoint, p) == 0.0


def test_rbo_weights_the_top_and_handles_empty_rankings() -> None:
    top_swapped = rank_biased_overlap([1, 2, 3, 4, 5, 6], [2, 1, 3, 4, 5, 6])
    bottom_swapped = rank_biased_overlap([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5])
    assert top_swapped < bottom_swapped < 1.0  # a disagreement at the top costs more
    assert rank_biased_overlap([], []) == 1.0 and rank_biased_overlap([1], []) == 0.0
    with pytest.raises(InvalidParameter, match="p must be between 0 and 1"):
        rank_biased_overlap([1], [1], p=1.0)


def test_compare_rankings_measures_overlap_top1_and_deltas() -> None:
    primary = [("a", 0.9), ("b", 0.8), ("c", 0.7)]
    c = compare_rankings(
        primary, [("a", 0.95), ("c", 0.6), ("d", 0.5)], k=3, primary_ms=2.0, candidate_ms=5.0
    )
    assert c.jaccard == pytest.approx(2 / 4) and c.top1
    assert c.score_delta == pytest.approx(0.05) and c.latency_delta_ms == pytest.approx(3.0)
    assert not compare_rankings(primary, [("b", 0.9)], k=3).top1
    none = compare_rankings(primary, [], k=3)
    assert none.rbo == 0.0 and none.jaccard == 0.0 and none.score_delta is None
    assert compare_rankings(primary, primary[:1], k=1).rbo == 1.0  # only the top k counts


def _shadow(**kw: object) -> Shadow:
    return Shadow.model_validate({"name": "s", "collection": "sci", "candidate": {"collection": "sci"}, **kw})


def test_the_store_keeps_shadows_comparisons_per_segment_and_the_review_queue(tmp_path: Path) -> None:
    store = ShadowStore(tmp_path / "events.sqlite")
    with pytest.raises(ValidationError):
        _shadow(share=1.5)
    with pytest.raises(ValidationError):
        _shadow(nonsense=1)
    store.create(_shadow(review_below=0.5))
    with pytest.raises(ConflictError):
        store.create(_shadow())
    rows = [
        (time.time(), f"q{i}", f"h{i}", None, seg, rbo, rbo, int(rbo > 0.5), 0.1, 1.0, 3.0, '["a"]', '["b"]')
        for i, (seg, rbo) in enumerate([("x", 1.0), ("x", 0.2), ("y", 0.8), (None, 0.4)])
    ]
    store.add("s", rows, dropped=3, failed=1)
    store.add("gone", rows)  # a shadow deleted meanwhile takes nothing
    summary = store.summary("s")
    assert summary["queries"] == 4 and summary["rbo"] == pytest.approx(0.6)
    assert summary["dropped"] == 3 and summary["failed"] == 1 and summary["low_overlap"] == 2
    assert summary["latency_delta_ms"] == pytest.approx(2.0)
    assert set(summary["segments"]) == {"x", "y", "(none)"}
    assert summary["segments"]["x"]["rbo"] == pytest.approx(0.6) and summary["segments"]["x"]["queries"] == 2
    review = store.review("s")
    assert [r["query_id"] for r in review] == ["q1", "q3"]  # lowest overlap first
    assert review[0]["primary"] == ["a"] and review[0]["candidate"] == ["b"]
    store.create(_shadow(review_below=0.9), replace=True)  # the threshold moves, the rows stay
    assert store.summary("s")["low_overlap"] == 3
    assert store.prune(time.time() + 1) == 4
    store.delete("s")
    with pytest.raises(ShadowNotFound, match="no shadow 's'"):
        store.summary("s")


def test_a_stalled_candidate_drops_queries_and_never_slows_the_offer(tmp_path: Path) -> None:
    store = ShadowStore(tmp_path / "events.sqlite")
    shadow = store.create(_shadow(queue=2))
    release = threading.Event()

    def stalled(job: ShadowJob) -> list[tuple[object, float]]:
        release.wait(30)
        if job.text == "fail":
            raise RuntimeError("the candidate is down")
        return [("a", 1.0)]

    mirror = ShadowMirror(lambda: store, stalled)
    job = ShadowJob(shadow=shadow, primary=[("a", 1.0)], primary_ms=1.0, text="q")
    began = time.perf_counter()
    taken = sum(mirror.offer([shadow], job) for _ in range(50))
    offering = time.perf_counter() - began
    assert taken <= 3 and offering < 5  # one being compared, two queued; the rest dropped at once
    mirror.offer([shadow.model_copy(update={"share": 0.0})], job)  # sampled out: not even queued
    release.set()
    mirror.flush()
    mirror.offer([shadow], ShadowJob(shadow=shadow, primary=[], primary_ms=1.0, text="fail"))
    mirror.flush()
    mirror.close()
    summary = store.summary("s")
    assert summary["queries"] == taken and summary["rbo"] == 1.0
    assert summary["dropped"] == 50 - taken and summary["failed"] == 1


def test_vector_searches_skip_a_shadow_that_takes_only_text(tmp_path: Path) -> None:
    store = ShadowStore(tmp_path / "events.sqlite")
    text_only = store.create(_shadow(vectors=False))
    mirror = ShadowMirror(lambda: store, lambda job: [])
    job = ShadowJob(shadow=text_only, primary=[], primary_ms=1.0, vector=[0.0, 1.0])
    assert mirror.offer([text_only], job) == 0
    mirror.close()


@pytest.fixture
def data(scifact_small: SciFactSmall, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(scifact_small.data, folder)
    return folder


def test_shadow_traffic_through_a_real_server(data: Path, scifact_small: SciFactSmall) -> None:
    server = start_server(data)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            same = {
                "name": "same",
                "collection": "sci",
                "candidate": {"collection": "sci"},
                "keep_text": True,
            }
            hiding = {
                "name": "hiding",
                "collection": "sci",
                "candidate": Arm(collection="sci", filter=HIDE_HALF).model_dump(),
                "review_below": 0.9,
                "keep_text": True,
            }
            assert http.post("/online/shadows", json={**same, "share": 2}).status_code == 422
            missing = http.post("/online/shadows", json={**same, "candidate": {"collection": "nope"}})
            assert missing.status_code == 404
            assert http.post("/online/shadows", json=same).status_code == 200
            assert http.post("/online/shadows", json=same).status_code == 409
            assert http.post("/online/shadows", json=hiding).status_code == 200
            texts = list(scifact_small.goldset.queries.values())[:12]
            for i, text in enumerate(texts):
                segment = "short" if i % 2 else "long"
                got = http.post(
                    "/collections/sci/points/query",
                    json={"text": text, "k": 10},
                    headers={"X-Segment": segment},
                ).json()
                assert "query_id" not in got  # shadows need no search log
                assert any(h["payload"]["half"] == 0 for h in got["hits"])  # the shadow's answer never leaks
            vector = http.post(
                "/collections/sci/points/scroll", json={"limit": 1, "with_vectors": True}
            ).json()
            by_vector = http.post(
                "/collections/sci/points/search", json={"vector": vector["records"][0]["vector"], "k": 10}
            )
            assert by_vector.status_code == 200, by_vector.text
            listed = {s["shadow"]["name"]: s["summary"] for s in http.get("/online/shadows").json()}
            assert listed["same"]["failed"] == 0, listed
            assert listed["same"]["queries"] == 13 and listed["same"]["rbo"] == pytest.approx(1.0)
            assert listed["same"]["top1_agreement"] == 1.0 and listed["same"]["low_overlap"] == 0
            hidden = http.get("/online/shadows/hiding").json()["summary"]
            assert hidden["queries"] == 13 and hidden["rbo"] < 0.7 and hidden["failed"] == 0
            assert set(hidden["segments"]) == {"long", "short", "(none)"}
            assert hidden["segments"]["long"]["queries"] == 6
            review = http.get("/online/shadows/hiding/review", params={"limit": 5}).json()
            assert len(review) == 5 and review[0]["rbo"] <= review[-1]["rbo"]
            assert review[0]["query"] in [*texts, None] and len(review[0]["candidate"]) == 10
            scraped = http.get("/metrics").text
            assert 'vectorforge_shadow_metric{metric="rbo",segment="all",shadow="same"} 1.0' in scraped
            overview = http.get("/dashboard/api/online").json()["shadow"]
            assert overview["hiding"]["review"] == hidden["low_overlap"] > 0
            assert http.delete("/online/shadows/hiding").json() == {"deleted": "hiding"}
            assert http.get("/online/shadows/hiding").status_code == 404
            time.sleep(1.1)  # the search log's cache of shadows
            http.post("/collections/sci/points/query", json={"text": texts[0], "k": 10})
            assert http.get("/online/shadows/same").json()["summary"]["queries"] == 14
    finally:
        server.stop()
