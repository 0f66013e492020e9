"""Training a ColBERT encoder (multivector/colbert.py) with the fine-tuning module's pieces: the same
examples (`examples.py`), hard negatives mined through a collection (`mining.py`), the same Trainer
set-up, seeds, checkpoints and Ctrl-C handling (`train.fit`), and a registered version with its card
(`models.ModelRegistry`).

The loss is ColBERT's (PyLate's Contrastive): for each query, cross-entropy over the MaxSim scores of
its positive, its mined hard negatives and every other document of the batch, at temperature 1
(MaxSim is a sum over 32 query tokens: its range is wide already; `TrainConfig.scale` = 1/temperature).
The projection starts from PCA of MiniLM's token embeddings (`ColBERTEncoder.from_base`) and may
learn at a higher rate than the transformer (`projection_lr`).

    result = train_colbert(examples, "work/", pca_texts=corpus_texts)
    result.card.ref        # "colbert-minilm@1" in the cache folder's registry
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample
from vectorforge.finetune.train import (
    TrainConfig,
    examples_dataset,
    examples_hash,
    fit,
    trainer_arguments,
)
from vectorforge.models import ModelCard, ModelRegistry
from vectorforge.multivector.colbert import COLBERT_MINILM, ColBERTEncoder, colbert_registry

__all__ = ["COLBERT_CONFIG", "ColBERTTrainResult", "train_colbert"]

LOSS = "MultiVectorMultipleNegativesRankingLoss (MaxSim, in-batch + hard negatives)"

COLBERT_CONFIG = TrainConfig(
    epochs=1.0,
    batch_size=32,
    learning_rate=5e-5,
    warmup_ratio=0.1,
    scale=1.0,  # PyLate's temperature: 1
    max_seq_length=180,  # the document length
    save_steps=10,
)
"""Sized for two CPU cores: SciFact train (919 pairs, a negative each) is 29 steps an epoch."""


@dataclass
class ColBERTTrainResult:
    model_path: Path  # the PyLate-layout folder written (before registration)
    seconds: float
    steps: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False
    card: ModelCard | None = None  # the registered version (None: interrupted or register=False)
    registered: Path | None = None  # that version's model/ folder

    @property
    def encoder_folder(self) -> Path:
        """Where the trained checkpoint is: the registered version's model/ or the work folder's."""
        return self.registered or self.model_path

    def to_json(self) -> dict[str, Any]:
        return {
            "model_path": str(self.model_path),
            "registered": str(self.registered) if self.registered else None,
            "card": self.card.model_dump(mode="json") if self.card else None,
            "seconds": self.seconds,
            "steps": self.steps,
            "losses": self.losses,
            "config": self.config,
            "interrupted": self.interrupted,
        }


def train_colbert(
    examples: Sequence[TrainingExample],
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    encoder: ColBERTEncoder | None = None,
    pca_texts: Sequence[str] = (),
    projection_lr: float | None = 1e-3,
    name: str = COLBERT_MINILM,
    registry: ModelRegistry | None = None,
    register: bool = True,
    record: Mapping[str, Any] | None = None,
    resume: bool = False,
) -> ColBERTTrainResult:
    """Train `encoder` (default: a new one over MiniLM, its projection by PCA of `pca_texts`) on
    `examples` (queries, positives and their mined negatives); save it in the PyLate layout to
    `out_dir/model` and register it as the next version of `name` (in `registry`; default the cache
    folder's, where "colbert-minilm" looks). Checkpoints go to `out_dir/checkpoints`; Ctrl-C saves
    one after the current step and returns `interrupted=True`; `resume=True` continues from it."""
    from sentence_transformers.multi_vector_encoder import (
        MultiVectorEncoderTrainer,
        MultiVectorEncoderTrainingArguments,
    )
    from sentence_transformers.multi_vector_encoder.losses import MultiVectorMultipleNegativesRankingLoss

    cfg = config or COLBERT_CONFIG
    cfg.check()
    if cfg.matryoshka_dims or cfg.cached:
        raise InvalidParameter("ColBERT training takes neither matryoshka_dims nor cached=True")
    out = Path(out_dir)
    if encoder is None:
        if not pca_texts:
            raise InvalidParameter(
                "a new ColBERT needs pca_texts (documents) for its projection, or encoder="
            )
        encoder = ColBERTEncoder.from_base(pca_texts=pca_texts, seed=cfg.seed, cache=False)
    dataset = examples_dataset(examples, cfg.batch_size)
    model = encoder.model
    settings = encoder.settings
    prefixes = {"anchor": settings.query_prefix} | {
        column: settings.document_prefix for column in dataset.column_names if column != "anchor"
    }
    arguments = trainer_arguments(out, cfg) | {
        "prompts": prefixes,  # the collator prepends them by column: [Q] on queries, [D] on documents
        "max_length": {"query": settings.query_length, "document": min(cfg.max_seq_length, 512)},
    }
    if projection_lr is not None:
        arguments["learning_rate_mapping"] = {
            r"(^|\.)1\.linear\.weight$": projection_lr
        }  # module 1: the Dense
    args = MultiVectorEncoderTrainingArguments(**arguments)
    loss = MultiVectorMultipleNegativesRankingLoss(model, scale=cfg.scale)
    fitted = fit(MultiVectorEncoderTrainer, model, args, dataset, loss, out, resume=resume)
    params = {**asdict(cfg), "projection_lr": projection_lr, "steps": fitted.steps, **asdict(settings)}
    result = ColBERTTrainResult(
        out / "model", fitted.seconds, fitted.steps, fitted.losses, params, fitted.interrupted
    )
    if fitted.interrupted:
        return result
    trained = ColBERTEncoder(encoder.name, loaded=encoder._load(), precision=encoder.precision, cache=False)
    trained.save(out / "model")
    if register:
        registry = registry or colbert_registry()
        result.card = registry.register(
            name,
            out / "model",
            record={
                "base": str(encoder.info().get("folder") or "all-MiniLM-L6-v2 (bundled)"),
                "data_hash": examples_hash(examples),
                "loss": LOSS,
                "params": params,
                "metrics": dict((record or {}).get("metrics") or {}),
                "training_seconds": fitted.seconds,
                "description": str(
                    (record or {}).get("description") or f"ColBERT on MiniLM, {len(examples)} examples"
                ),
            },
        )
        result.registered = registry.model_path(result.card)
    return result
