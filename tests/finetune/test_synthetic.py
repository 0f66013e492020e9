"""Synthetic queries, the production client against a real local OpenAI-compatible server
(tests/finetune/llm_server.py, answers recorded from the prompts): retries, the cache, bounded
concurrency, the rate limit, tokens and cost, resuming; and the round-trip filter on a real MiniLM
collection with BM25."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

import vectorforge as vf
from tests.cli.conftest import BIN, cli_env
from tests.conftest import shared_path
from tests.finetune.conftest import LLMServer, RecordedSciFact
from vectorforge.errors import InvalidParameter
from vectorforge.finetune import (
    LLMConfig,
    TrainingExample,
    consistency_filter,
    examples_from_beir,
    examples_from_jsonl,
    generate_queries,
)
from vectorforge.finetune.synthetic import _draw, build_messages

RECORDED = json.loads((Path(__file__).parent / "data" / "llm_recorded.json").read_text())["answers"]
SHARED = shared_path()
BY_DOC = {row["doc"]: row["queries"] for row in RECORDED.values()}


@pytest.fixture(scope="module")
def few_shot(shared: Path) -> list[TrainingExample]:
    examples, _ = examples_from_beir(shared / "data" / "scifact", "train")
    return examples


def _config(llm: LLMServer, **settings: object) -> LLMConfig:
    return replace(LLMConfig(base_url=llm.base_url, model="recorded", requests_per_minute=60_000), **settings)


def _some(recorded_scifact: RecordedSciFact, n: int) -> dict[str, str]:
    return dict(list(recorded_scifact.recorded.items())[:n])


def test_queries_tokens_and_cost_add_up(
    llm: LLMServer, recorded_scifact: RecordedSciFact, few_shot: list[TrainingExample]
) -> None:
    corpus = _some(recorded_scifact, 6)
    config = _config(llm, input_price=0.5, output_price=2.0)
    examples, report = generate_queries(corpus, config, few_shot=few_shot, per_doc=2, progress=False)
    assert [(e.positive_id, e.query) for e in examples] == [(d, q) for d in corpus for q in BY_DOC[d][:2]]
    assert all(e.positive == corpus[e.positive_id] and e.judged == {e.positive_id} for e in examples)
    seen = llm.stats()
    assert report.requests == seen["requests"] == 6 and report.answered == 6 and report.failures == 0
    assert (report.prompt_tokens, report.completion_tokens) == (
        seen["prompt_tokens"],
        seen["completion_tokens"],
    )
    assert report.cost == pytest.approx((0.5 * report.prompt_tokens + 2.0 * report.completion_tokens) / 1e6)
    assert report.cost > 0 and report.queries == len(examples)


def test_prompts_are_few_shot_from_real_queries_never_about_the_passage(
    few_shot: list[TrainingExample],
) -> None:
    target = few_shot[0]
    shots = _draw(few_shot, 3, target.positive_id, target.positive, seed=0)
    assert len(shots) == 3 and all(s.positive_id != target.positive_id for s in shots)
    assert shots == _draw(few_shot, 3, target.positive_id, target.positive, seed=0)  # a stable cache key
    user = build_messages(target.positive, shots)[1]["content"]
    assert all(f"Relevant query: {s.query}" in user for s in shots)
    assert user.endswith("Relevant query:") and user.count("Document: ") == 4


@pytest.mark.parametrize("status", [429, 500])
def test_retries_recover_from_rate_limits_and_server_errors(
    llm: LLMServer, recorded_scifact: RecordedSciFact, status: int
) -> None:
    llm.faults(fail_next=3, fail_status=status)
    corpus = _some(recorded_scifact, 4)
    examples, report = generate_queries(corpus, _config(llm, concurrency=1), progress=False)
    assert len(examples) == 4 and report.failures == 0
    seen = llm.stats()
    assert report.retries == seen["retried"] == 3 and report.requests == seen["requests"] == 7


def test_timeouts_are_retried(llm: LLMServer, recorded_scifact: RecordedSciFact) -> None:
    llm.faults(slow_next=2, slow_seconds=1.0)
    config = _config(llm, concurrency=1, timeout=0.3)
    examples, report = generate_queries(_some(recorded_scifact, 3), config, progress=False)
    assert len(examples) == 3 and report.failures == 0 and report.retries == 2 and report.requests == 5


def test_a_request_that_keeps_failing_is_a_counted_failure_and_others_go_on(
    llm: LLMServer, recorded_scifact: RecordedSciFact
) -> None:
    llm.faults(fail_next=3, fail_status=503)
    corpus = _some(recorded_scifact, 3)
    examples, report = generate_queries(corpus, _config(llm, concurrency=1, max_retries=2), progress=False)
    assert report.failures == 1 and report.errors == {"InternalServerError": 1} and len(examples) == 2
    unrecorded = {"x": "A passage nobody recorded an answer for. It has two sentences."}
    _, report = generate_queries(unrecorded, _config(llm), progress=False)
    assert report.failures == 1 and report.errors == {"BadRequestError": 1} and report.retries == 0


def test_the_cache_makes_a_rerun_send_nothing(
    llm: LLMServer, recorded_scifact: RecordedSciFact, few_shot: list[TrainingExample], tmp_path: Path
) -> None:
    corpus = _some(recorded_scifact, 8)
    config = _config(llm, input_price=1.0)
    first, report = generate_queries(
        corpus, config, few_shot=few_shot, cache=tmp_path / "c.db", progress=False
    )
    assert report.requests == 8 and report.cost > 0
    llm.reset()
    again, report = generate_queries(
        corpus, config, few_shot=few_shot, cache=tmp_path / "c.db", progress=False
    )
    assert again == first
    assert llm.stats()["requests"] == 0 and report.requests == 0 and report.cached == 8 and report.cost == 0
    # another model or other sampling parameters are another question: asked again
    generate_queries(corpus, replace(config, temperature=0.1), few_shot=few_shot, cache=tmp_path / "c.db")
    assert llm.stats()["requests"] == 8


def test_concurrency_never_exceeds_its_bound(llm: LLMServer, recorded_scifact: RecordedSciFact) -> None:
    llm.faults(latency=0.15)
    _, report = generate_queries(_some(recorded_scifact, 12), _config(llm, concurrency=3), progress=False)
    assert report.answered == 12 and llm.stats()["max_in_flight"] == 3


def test_the_rate_limit_holds(llm: LLMServer, recorded_scifact: RecordedSciFact) -> None:
    llm.faults(fail_next=2, fail_status=429)  # retries wait for the limit too
    config = _config(llm, concurrency=8, requests_per_minute=600)  # one request each 0.1 s
    _, report = generate_queries(_some(recorded_scifact, 8), config, progress=False)
    times = sorted(llm.stats()["times"])
    assert report.requests == len(times) == 10 and report.answered == 8
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > 0.08 and times[-1] - times[0] >= 0.85


def test_an_interrupted_job_resumes_without_asking_again(
    llm: LLMServer, recorded_scifact: RecordedSciFact, few_shot: list[TrainingExample], tmp_path: Path
) -> None:
    corpus = _some(recorded_scifact, 10)
    config = _config(llm, concurrency=1)
    llm.faults(fail_after=4, fail_status=400)  # the endpoint goes away after 4 answers: a crash
    examples, report = generate_queries(
        corpus, config, few_shot=few_shot, cache=tmp_path / "c.db", progress=False
    )
    assert len(examples) == 4 and report.failures == 6
    asked_before = llm.stats()["asked"]
    llm.reset()
    examples, report = generate_queries(
        corpus, config, few_shot=few_shot, cache=tmp_path / "c.db", progress=False
    )
    asked_after = llm.stats()["asked"]
    assert report.cached == 4 and report.requests == 6 and len(examples) == 10
    assert not set(asked_before) & set(asked_after) and len(set(asked_before + asked_after)) == 10


def test_bad_config_is_a_clear_error(llm: LLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("VECTORFORGE_LLM_BASE_URL", "OPENAI_BASE_URL", "VECTORFORGE_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidParameter, match="no LLM endpoint: set VECTORFORGE_LLM_BASE_URL"):
        generate_queries({"d": "text"}, LLMConfig.from_env(model="m"))
    with pytest.raises(InvalidParameter, match="no LLM model: set VECTORFORGE_LLM_MODEL"):
        generate_queries({"d": "text"}, LLMConfig.from_env(base_url=llm.base_url))
    with pytest.raises(InvalidParameter, match="not an http"):
        generate_queries({"d": "text"}, LLMConfig("localhost:8000", "m"))
    with pytest.raises(InvalidParameter, match="concurrency >= 1"):
        generate_queries({"d": "text"}, LLMConfig(llm.base_url, "m", concurrency=0))
    monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
    monkeypatch.setenv("VECTORFORGE_LLM_MODEL", "from-env")
    assert (LLMConfig.from_env().base_url, LLMConfig.from_env().model) == (llm.base_url, "from-env")
    assert LLMConfig.from_env(model="given").model == "given"
    # a base URL without /v1: the endpoint answers 404, and the job stops at once saying why
    with pytest.raises(InvalidParameter, match="check the base URL"):
        generate_queries({"d": "text"}, LLMConfig(llm.root, "m"), progress=False)


def test_the_round_trip_filter_keeps_queries_that_find_their_passage(
    llm: LLMServer, recorded_scifact: RecordedSciFact, few_shot: list[TrainingExample]
) -> None:
    examples, _ = generate_queries(recorded_scifact.recorded, _config(llm), few_shot=few_shot, progress=False)
    assert len(examples) == len(recorded_scifact.recorded)
    vague = {
        e.positive_id
        for e in examples
        if e.query.startswith(("What are the results", "What is the", "Is there"))
    }
    with vf.connect(recorded_scifact.data) as db:
        col = db.get_collection("sci")
        kept, report = consistency_filter(col, examples, k=3)
        dense_kept, dense_report = consistency_filter(col, examples, k=3, using=None)
        for ex in examples:
            top = [str(h.id) for h in col.query(ex.query, 3)] + [
                str(h.id) for h in col.query(ex.query, 3, using="bm25")
            ]
            assert (ex in kept) == (ex.positive_id in top)
        with pytest.raises(InvalidParameter, match="k must be >= 1"):
            consistency_filter(col, examples, k=0)
    assert report.bm25 == "bm25" and dense_report.bm25 is None
    assert vague and not vague & {e.positive_id for e in kept}  # the vague queries are dropped
    assert report.kept == len(kept) and report.dropped == len(examples) - len(kept) >= len(vague)
    assert report.kept == report.kept_by_dense + report.kept_by_bm25_only
    assert dense_report.kept == report.kept_by_dense == len(dense_kept) <= report.kept
    assert report.to_json()["kept_share"] == pytest.approx(report.kept / len(examples))


def _synthesize(recorded_scifact: RecordedSciFact, llm: LLMServer, out: Path, *extra: str) -> list[str]:
    return [
        str(BIN),
        "synthesize",
        "-d",
        str(recorded_scifact.data),
        "-c",
        "rec",
        "--out",
        str(out),
        "--few-shot-beir",
        str(SHARED / "data" / "scifact"),
        "--base-url",
        llm.base_url,
        "--model",
        "recorded",
        *extra,
    ]


def test_the_command_writes_jsonl_that_finetune_reads(
    llm: LLMServer, recorded_scifact: RecordedSciFact, tmp_path: Path
) -> None:
    out = tmp_path / "queries.jsonl"
    command = _synthesize(recorded_scifact, llm, out, "--rpm", "60000", "--price-in", "1", "--price-out", "2")
    done = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "queries.jsonl.report.json").read_text())
    generation, kept = report["generation"], report["filter"]
    assert generation["requests"] == llm.stats()["requests"] == len(BY_DOC) and generation["cost"] > 0
    assert kept["examples"] == len(BY_DOC) and 0 < kept["dropped"] < 6 and kept["bm25"] == "bm25"
    examples = examples_from_jsonl(out)
    assert len(examples) == kept["kept"] and f"wrote {kept['kept']} training queries" in done.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(r["query"] in BY_DOC[r["positive_id"]] for r in rows)
    assert all(r["positive"] == recorded_scifact.recorded[r["positive_id"]] for r in rows)
    again = subprocess.run(command, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and llm.stats()["requests"] == len(BY_DOC)  # the re-run asked nothing
    assert [json.loads(line) for line in out.read_text().splitlines()] == rows


def test_ctrl_c_stops_the_command_and_a_rerun_continues(
    llm: LLMServer, recorded_scifact: RecordedSciFact, tmp_path: Path
) -> None:
    out = tmp_path / "queries.jsonl"
    slow = _synthesize(recorded_scifact, llm, out, "--rpm", "120", "--concurrency", "2")
    proc = subprocess.Popen(slow, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while llm.stats()["requests"] < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "re-run the same command" in stderr and "Traceback" not in stderr
    assert not out.exists()
    before = llm.stats()["asked"]
    llm.reset()
    done = subprocess.run(
        _synthesize(recorded_scifact, llm, out, "--rpm", "60000"),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    generation = json.loads((tmp_path / "queries.jsonl.report.json").read_text())["generation"]
    after = llm.stats()["asked"]
    assert f"{generation['cached']} of {len(BY_DOC)} passages are answered" in stderr
    assert (
        generation["cached"] >= 4
        and len(after) == generation["requests"] == len(BY_DOC) - generation["cached"]
    )
    # only an answer cut off in flight by Ctrl-C (at most --concurrency) is asked again
    assert len(set(before) & set(after)) <= 2 and set(before) | set(after) == set(RECORDED)


def test_the_command_without_an_endpoint_says_what_to_set(
    recorded_scifact: RecordedSciFact, tmp_path: Path
) -> None:
    env = {k: v for k, v in cli_env().items() if k not in ("VECTORFORGE_LLM_BASE_URL", "OPENAI_BASE_URL")}
    command = [
        str(BIN),
        "synthesize",
        "-d",
        str(recorded_scifact.data),
        "-c",
        "rec",
        "--out",
        str(tmp_path / "q"),
    ]
    done = subprocess.run([*command, "--model", "m"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no LLM endpoint: set VECTORFORGE_LLM_BASE_URL" in done.stderr and "--offline" in done.stderr
