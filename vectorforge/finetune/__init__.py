"""Embedding fine-tuning: training examples (BEIR qrels, JSONL), positive-aware hard negatives mined
through a vectorforge collection, contrastive training on sentence-transformers' Trainer, WiSE-FT
weight interpolation, and embedders for the tuned models. (Issue 12: the model registry, aliases,
promotion come next.) With no labels: queries from an LLM (`generate_queries`) kept by a round-trip
filter (`consistency_filter`), or offline pseudo-queries (`offline_queries`, the weaker path)."""

from __future__ import annotations

from vectorforge.finetune.consistency import FilterReport, consistency_filter
from vectorforge.finetune.examples import (
    TrainingExample,
    examples_from_beir,
    examples_from_jsonl,
    examples_from_qrels,
)
from vectorforge.finetune.mining import MiningReport, mine_hard_negatives
from vectorforge.finetune.models import register_model, weights_version
from vectorforge.finetune.offline import OfflineReport, inverse_cloze, offline_queries, titles_as_queries
from vectorforge.finetune.synthetic import GenerationReport, LLMConfig, generate_queries
from vectorforge.finetune.train import TrainConfig, TrainResult, train
from vectorforge.finetune.wiseft import interpolate

__all__ = [
    "FilterReport",
    "GenerationReport",
    "LLMConfig",
    "MiningReport",
    "OfflineReport",
    "TrainConfig",
    "TrainResult",
    "TrainingExample",
    "consistency_filter",
    "examples_from_beir",
    "examples_from_jsonl",
    "examples_from_qrels",
    "generate_queries",
    "interpolate",
    "inverse_cloze",
    "mine_hard_negatives",
    "offline_queries",
    "register_model",
    "titles_as_queries",
    "train",
    "weights_version",
]
