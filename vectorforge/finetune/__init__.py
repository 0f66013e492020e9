"""Embedding fine-tuning: training examples (BEIR qrels, JSONL), positive-aware hard negatives mined
through a vectorforge collection, contrastive training on sentence-transformers' Trainer, WiSE-FT
weight interpolation, the forgetting guard, one report of a run, and `finetune()`: from examples to
a registered model (vectorforge.models)."""

from __future__ import annotations

from vectorforge.finetune.examples import (
    TrainingExample,
    corpus_from_collection,
    examples_from_beir,
    examples_from_goldset,
    examples_from_jsonl,
    examples_from_qrels,
)
from vectorforge.finetune.guard import ALPHAS, Candidate, GuardReport, GuardSet, choose, forgetting_guard
from vectorforge.finetune.mining import MiningReport, mine_hard_negatives
from vectorforge.finetune.models import register_model, weights_version
from vectorforge.finetune.pipeline import FinetuneResult, default_base, finetune
from vectorforge.finetune.report import FinetuneReport
from vectorforge.finetune.train import TrainConfig, TrainResult, examples_hash, train
from vectorforge.finetune.wiseft import interpolate

__all__ = [
    "ALPHAS",
    "Candidate",
    "FinetuneReport",
    "FinetuneResult",
    "GuardReport",
    "GuardSet",
    "MiningReport",
    "TrainConfig",
    "TrainResult",
    "TrainingExample",
    "choose",
    "corpus_from_collection",
    "default_base",
    "examples_from_beir",
    "examples_from_goldset",
    "examples_from_jsonl",
    "examples_from_qrels",
    "examples_hash",
    "finetune",
    "forgetting_guard",
    "interpolate",
    "mine_hard_negatives",
    "register_model",
    "train",
    "weights_version",
]
