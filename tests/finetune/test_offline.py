"""Training queries with no LLM: inverse-cloze sentences and titles, seeded, reported as the weaker
path; and `vectorforge synthesize --offline` as a real process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import BIN, cli_env
from tests.finetune.conftest import RecordedSciFact
from vectorforge.datasets import load_beir
from vectorforge.errors import InvalidParameter
from vectorforge.finetune import examples_from_jsonl, inverse_cloze, offline_queries, titles_as_queries

PASSAGE = (
    "Vitamin D is made in the skin. Its deficiency is common in winter at high latitudes. "
    "Low levels have been linked with depression in several cohorts. Trials of supplements disagree."
)


def test_inverse_cloze_takes_a_sentence_out_of_its_passage() -> None:
    corpus = {"d1": PASSAGE, "short": "One sentence only, too short to split."}
    (ex,), report = inverse_cloze(corpus, seed=0)
    assert ex.query in PASSAGE and ex.query not in ex.positive and ex.query.endswith(".")
    assert len(ex.query.split()) >= 5 and ex.positive_id == "d1" and ex.judged == {"d1"}
    assert len(ex.positive) + len(ex.query) + 1 == len(PASSAGE)
    assert (report.examples, report.skipped, report.method) == (1, 1, "ict")
    assert "weaker" in report.note and report.to_json()["note"] == report.note
    assert inverse_cloze(corpus, seed=0)[0] == [ex]  # seeded
    many = {f"d{i}": PASSAGE for i in range(20)}
    assert len({e.query for e in inverse_cloze(many, seed=1)[0]}) > 1  # drawn per passage


def test_titles_are_queries_against_the_text_without_them(shared: Path) -> None:
    ds = load_beir(shared / "data" / "scifact", split=None)
    ids = list(ds.corpus)[:50]
    passages = {d: ds.doc_text(d) for d in ids}
    titles = {d: ds.corpus[d]["title"] for d in ids}
    examples, report = titles_as_queries({**titles, ids[0]: ""}, passages)
    assert report.examples == len(examples) == 49 and report.skipped == 1
    for ex in examples:
        assert ex.query == " ".join(titles[ex.positive_id].split())
        assert ex.positive == ds.corpus[ex.positive_id]["text"].strip() and ex.query not in ex.positive[:20]


def test_offline_queries_combine_methods_and_refuse_what_cannot_work(shared: Path) -> None:
    corpus = {"d1": PASSAGE, "d2": PASSAGE.replace("Vitamin D", "Vitamin K")}
    titles = {"d1": "Vitamin D and depression in cohorts", "d2": "Vitamin K in winter and mood"}
    both, report = offline_queries(corpus, titles, method="ictitle")
    assert report.examples == len(both) == 4 and {e.query_id.split(":")[0] for e in both} == {"ict", "title"}
    assert "weaker" in report.note and report.method == "ictitle"
    with pytest.raises(InvalidParameter, match="needs titles, and the corpus has none: use 'ict'"):
        offline_queries(corpus, {}, method="titles")
    with pytest.raises(InvalidParameter, match="is not one of ictitle, ict, titles"):
        offline_queries(corpus, titles, method="cloze")


def test_the_command_offline_writes_jsonl_and_says_it_is_weaker(
    recorded_scifact: RecordedSciFact, tmp_path: Path
) -> None:
    out = tmp_path / "offline.jsonl"
    command = [str(BIN), "synthesize", "-d", str(recorded_scifact.data), "-c", "rec", "--out", str(out)]
    done = subprocess.run([*command, "--offline", "ictitle"], env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "weaker" in done.stderr and "offline ictitle (the weaker path)" in done.stdout
    report = json.loads((tmp_path / "offline.jsonl.report.json").read_text())
    assert report["offline"]["examples"] == report["filter"]["examples"] > len(recorded_scifact.recorded)
    examples = examples_from_jsonl(out)
    assert len(examples) == report["filter"]["kept"] > 0
    bad = subprocess.run([*command, "--offline", "cloze"], env=cli_env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "is not one of ictitle, ict, titles" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
