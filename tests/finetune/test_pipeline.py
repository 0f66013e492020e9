"""From judged queries to a registered model, for real: a gold set kept for training, negatives
mined through a real MiniLM collection, sentence-transformers' Trainer, the forgetting guard over
WiSE-FT mixes judged on a domain and a general-domain set, the registry, and one report."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import vectorforge as vf
from tests.cli.conftest import BIN, cli_env
from tests.evaluation.conftest import SciFactSmall
from vectorforge.datasets import load_beir
from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.goldsets import GoldSet, from_beir
from vectorforge.finetune import (
    Candidate,
    GuardSet,
    TrainConfig,
    TrainingExample,
    choose,
    corpus_from_collection,
    examples_from_goldset,
    finetune,
)
from vectorforge.finetune.report import FinetuneReport, loss_curve
from vectorforge.models import ModelRegistry, weights_hash


def _split(gold: GoldSet) -> tuple[GoldSet, GoldSet]:
    qids = sorted(gold.qrels)
    train_ids, dev_ids = qids[::2], qids[1::2]

    def part(name: str, ids: list[str]) -> GoldSet:
        return GoldSet(name, {q: gold.queries[q] for q in ids}, {q: dict(gold.qrels[q]) for q in ids})

    return part("sci-train", train_ids), part("sci-dev", dev_ids)


def _dbpedia_small(shared: Path, n_queries: int = 15, n_docs: int = 120) -> GuardSet:
    folder = shared / "data" / "dbpedia"
    gold = from_beir(folder, name="dbpedia")
    ds = load_beir(folder, split=None)
    qids = sorted(gold.qrels)[:n_queries]
    judged = sorted({d for q in qids for d in gold.qrels[q] if d in ds.corpus})
    others = sorted(set(ds.corpus) - set(judged))
    random.Random(1).shuffle(others)
    docs = judged + others[: max(0, n_docs - len(judged))]
    small = GoldSet(
        "dbpedia",
        {q: gold.queries[q] for q in qids},
        {q: {d: g for d, g in gold.qrels[q].items() if d in set(docs)} for q in qids},
    )
    return GuardSet("dbpedia", {d: ds.doc_text(d) for d in docs}, small)


def test_goldset_examples_never_share_a_query_with_the_reported_set(scifact_small: SciFactSmall) -> None:
    train_gold, dev_gold = _split(scifact_small.goldset)
    corpus = {d: f"text of {d}" for q in scifact_small.goldset.qrels.values() for d in q}
    examples = examples_from_goldset(train_gold, corpus, reported=[dev_gold])
    assert {e.query_id for e in examples} == set(train_gold.qrels)
    with pytest.raises(InvalidParameter, match="shares 40 queries with 'sci'"):
        examples_from_goldset(train_gold, corpus, reported=[scifact_small.goldset])
    renamed = GoldSet(
        "copy",
        {f"x{q}": t for q, t in dev_gold.queries.items()},
        {f"x{q}": j for q, j in dev_gold.qrels.items()},
    )
    with pytest.raises(InvalidParameter, match="shares 40 queries with 'sci-dev'"):  # same texts, new ids
        examples_from_goldset(renamed, corpus, reported=[dev_gold])


def test_the_guard_chooses_the_best_mix_that_forgets_nothing() -> None:
    def cand(name: str, alpha: float | None, dom: float, gen: float, p: float = 0.5) -> Candidate:
        c = Candidate(name, alpha, Path(name), {"dom": {"ndcg@10": dom}, "gen": {"ndcg@10": gen}})
        c.vs_base = {"gen": {"diff": gen - 0.5, "p_value": p}}
        return c

    base = cand("base", None, 0.60, 0.50)
    mixes = [
        cand("a0.5", 0.5, 0.66, 0.499),
        cand("a1", 1.0, 0.70, 0.48),
        cand("a0.7", 0.7, 0.68, 0.495, 0.01),
    ]
    chosen, reason = choose([base, *mixes], "dom", ["gen"])
    assert chosen.name == "a0.5" and "1 of 3 mixes" in reason
    assert not mixes[1].passes and "2.00 points below" in mixes[1].why  # drops 2 points
    assert not mixes[2].passes and "significantly worse" in mixes[2].why  # within 1 point, but p < 0.05
    worse = [base, cand("a0.3", 0.3, 0.55, 0.5)]
    assert choose(worse, "dom", ["gen"])[0] is base  # passes, but no better on the domain
    assert choose([base, mixes[1]], "dom", ["gen"])[1] == "no mix passes the guard: the base stays"


def test_finetune_mines_trains_guards_and_registers(
    tmp_path: Path, scifact_small: SciFactSmall, shared: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(scifact_small.data, data)
    train_gold, dev_gold = _split(scifact_small.goldset)
    with vf.connect(data) as db:
        col = db.get_collection("sci")
        corpus = corpus_from_collection(col)
        examples = examples_from_goldset(train_gold, corpus, reported=[dev_gold])
        result = finetune(
            db,
            "sci-model",
            examples,
            work=tmp_path / "work",
            collection=col,
            corpus=corpus,
            config=TrainConfig(epochs=1, batch_size=16, max_seq_length=64),
            domain=GuardSet("sci-dev", corpus, dev_gold),
            general=[_dbpedia_small(shared)],
            alphas=(1.0,),  # one mix besides the base: each costs a re-embedding (test_wise_ft covers mixing)
            source={"source": "gold set sci-train"},
            progress=False,
        )
    report = result.report.to_json()
    assert report["mining"]["with_negatives"] > 0 and report["training"]["steps"] >= 2
    guard = report["guard"]
    assert [c["name"] for c in guard["candidates"]] == ["base", "alpha-1"]
    assert guard["candidates"][0]["scores"]["sci-dev"]["ndcg@10"] > 0.3  # MiniLM finds SciFact
    card = result.card
    if guard["chosen"] == "base":  # the guard may keep the base: then nothing is registered
        assert card is None and ModelRegistry(data / "models").list() == []
        return
    assert card is not None and card.ref == "sci-model@1" and card.data_hash == report["data"]["data_hash"]
    chosen = next(c for c in guard["candidates"] if c["name"] == guard["chosen"])
    assert card.metrics["guard"] == chosen["scores"] and card.loss == "MultipleNegativesRankingLoss"
    folder = ModelRegistry(data / "models").version_folder(card)
    md = (folder / "report.md").read_text()
    assert "## The forgetting guard" in md and f"**Chosen: {guard['chosen']}**" in md
    assert "| up to step | mean loss |" in md and "sci-model@1" in md
    assert "plotly" in (folder / "report.html").read_text()
    assert weights_hash(folder / "model") == card.weights


def test_loss_curve_and_report_markdown() -> None:
    losses = [(s, 3.0 - s / 10) for s in range(1, 25)]
    curve = loss_curve(losses, points=6)
    assert [s for s, _ in curve] == [4, 8, 12, 16, 20, 24] and curve[0][1] == pytest.approx(2.75)
    md = FinetuneReport(
        "m@1",
        "base",
        {"source": "ict", "examples": 24, "weaker": True},
        {"steps": 24, "seconds": 3.0, "losses": losses, "config": {"epochs": 1}},
    ).to_markdown()
    assert "the weaker path" in md and "(2.850 -> 0.650)" in md and "| 24 | 0.6500 |" in md


def _tiny_jsonl(path: Path, n: int) -> Path:
    rows = [
        TrainingExample(
            f"what is topic {i}", f"topic {i} is about subject {i % 5}", negatives=(f"unrelated {i}",)
        )
        for i in range(n)
    ]
    path.write_text(
        "".join(
            json.dumps({"query": e.query, "positive": e.positive, "negatives": list(e.negatives)}) + "\n"
            for e in rows
        )
    )
    return path


def _finetune_cmd(data: Path, jsonl: Path, *extra: str) -> list[str]:
    return [
        str(BIN),
        "finetune",
        "--train",
        "jsonl",
        "--jsonl",
        str(jsonl),
        "--out",
        "tiny",
        "--data",
        str(data),
        "--batch-size",
        "8",
        "--negatives",
        "0",
        *extra,
    ]


def test_the_finetune_command_registers_the_model(tmp_path: Path, shared: Path) -> None:
    jsonl = _tiny_jsonl(tmp_path / "train.jsonl", 16)
    done = subprocess.run(
        _finetune_cmd(tmp_path / "data", jsonl), env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "model tiny@1" in done.stdout
    card = ModelRegistry(tmp_path / "data" / "models").get("tiny")
    assert card.training_seconds and card.params["batch_size"] == 8
    report = json.loads((tmp_path / "data" / "finetune" / "tiny" / "report.json").read_text())
    assert report["model"] == "tiny@1" and report["training"]["steps"] == 2
    bad = subprocess.run(
        [
            str(BIN),
            "finetune",
            "--train",
            "qrels",
            "--beir",
            str(shared / "data" / "scifact"),
            "--split",
            "test",
            "--out",
            "x",
            "--negatives",
            "0",
            "--data",
            str(tmp_path / "data"),
        ],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "the one results are reported on" in bad.stderr
    missing = subprocess.run(
        [str(BIN), "finetune", "--train", "goldset", "--out", "x", "--data", str(tmp_path / "data")],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "--train goldset needs --goldset" in missing.stderr
    nowhere = tmp_path / "never-made"
    no_file = subprocess.run(
        _finetune_cmd(nowhere, tmp_path / "absent.jsonl"), env=cli_env(), capture_output=True, text=True
    )
    assert no_file.returncode == 2 and "no such file" in no_file.stderr
    assert not nowhere.exists()  # a bad input makes no data folder


def test_ctrl_c_keeps_a_checkpoint_and_resume_finishes_the_same_model(tmp_path: Path) -> None:
    jsonl = _tiny_jsonl(tmp_path / "train.jsonl", 48)  # 6 steps an epoch, 2 epochs
    steps = ["--epochs", "2"]
    whole = subprocess.run(
        _finetune_cmd(tmp_path / "whole", jsonl, *steps),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr
    data = tmp_path / "data"
    proc = subprocess.Popen(
        _finetune_cmd(data, jsonl, *steps),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen, deadline = "", time.monotonic() + 240
    while not re.search(r"\b[2-4]/12\b", seen) and time.monotonic() < deadline and proc.poll() is None:
        seen += proc.stderr.read(1)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + rest
    checkpoints = list((data / "finetune" / "tiny" / "checkpoints").glob("checkpoint-*"))
    assert checkpoints and (checkpoints[0] / "optimizer.pt").is_file()  # the Trainer's full checkpoint
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 2 <= stopped_at < 12 and ModelRegistry(data / "models").list() == []
    resumed = subprocess.run(
        _finetune_cmd(data, jsonl, *steps, "--resume"),
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((data / "finetune" / "tiny" / "report.json").read_text())
    assert report["training"]["steps"] == 12
    assert min(s for s, _ in report["training"]["losses"]) > stopped_at  # it went on, not again
    same = ModelRegistry(data / "models").get("tiny").weights
    assert same == ModelRegistry(tmp_path / "whole" / "models").get("tiny").weights
