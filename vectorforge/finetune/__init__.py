"""Embedding fine-tuning: training examples (BEIR qrels, JSONL), positive-aware hard negatives mined
through a vectorforge collection, contrastive training on sentence-transformers' Trainer, WiSE-FT
weight interpolation, and embedders for the tuned models. (Issue 12: the model registry, aliases,
promotion and LLM-generated queries come next.)"""

from __future__ import annotations

from vectorforge.finetune.examples import (
    TrainingExample,
    examples_from_beir,
    examples_from_jsonl,
    examples_from_qrels,
)
from vectorforge.finetune.mining import MiningReport, mine_hard_negatives
from vectorforge.finetune.models import register_model, weights_version
from vectorforge.finetune.train import TrainConfig, TrainResult, train
from vectorforge.finetune.wiseft import interpolate

__all__ = [
    "MiningReport",
    "TrainConfig",
    "TrainResult",
    "TrainingExample",
    "examples_from_beir",
    "examples_from_jsonl",
    "examples_from_qrels",
    "interpolate",
    "mine_hard_negatives",
    "register_model",
    "train",
    "weights_version",
]
