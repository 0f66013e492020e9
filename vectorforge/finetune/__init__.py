"""Embedding fine-tuning: training examples (BEIR qrels, JSONL, gold sets), positive-aware hard
negatives mined through a vectorforge collection, contrastive training on sentence-transformers'
Trainer, WiSE-FT weight interpolation, the forgetting guard, one report of a run, and `finetune()`:
from examples to a registered model (vectorforge.models). With no labels: queries from an LLM
(`generate_queries`) kept by a round-trip filter (`consistency_filter`), or offline pseudo-queries
(`offline_queries`, the weaker path)."""

from __future__ import annotations

from vectorforge.extras import missing_extra

with missing_extra("fine-tuning"):
    from vectorforge.finetune.colbert import COLBERT_CONFIG, ColBERTTrainResult, train_colbert
    from vectorforge.finetune.consistency import FilterReport, consistency_filter
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
    from vectorforge.finetune.offline import OfflineReport, inverse_cloze, offline_queries, titles_as_queries
    from vectorforge.finetune.pipeline import FinetuneResult, default_base, finetune
    from vectorforge.finetune.report import FinetuneReport
    from vectorforge.finetune.synthetic import GenerationReport, LLMConfig, generate_queries
    from vectorforge.finetune.train import TrainConfig, TrainResult, examples_hash, train
    from vectorforge.finetune.wiseft import interpolate

__all__ = [
    "COLBERT_CONFIG",
    "ColBERTTrainResult",
    "train_colbert",
    "ALPHAS",
    "Candidate",
    "FilterReport",
    "FinetuneReport",
    "FinetuneResult",
    "GenerationReport",
    "GuardReport",
    "GuardSet",
    "LLMConfig",
    "MiningReport",
    "OfflineReport",
    "TrainConfig",
    "TrainResult",
    "TrainingExample",
    "choose",
    "consistency_filter",
    "corpus_from_collection",
    "default_base",
    "examples_from_beir",
    "examples_from_goldset",
    "examples_from_jsonl",
    "examples_from_qrels",
    "examples_hash",
    "finetune",
    "forgetting_guard",
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
