"""Contrastive fine-tuning on sentence-transformers' Trainer API (no hand-written loop).

MultipleNegativesRankingLoss: each query against its positive, its mined hard negatives and every
other document of the batch; NO_DUPLICATES batches keep a text from being its own in-batch negative.
`cached=True` takes CachedMultipleNegativesRankingLoss (GradCache): a large effective batch at the
memory of `mini_batch_size`, which is what makes big batches possible on a CPU. Seeds are fixed,
checkpoints are written every `save_steps`, `resume=True` continues from the last one, and Ctrl-C
stops at the end of the current step with a full checkpoint (weights, optimizer, scheduler and RNG
states: the Trainer's own), so a resumed run continues as if it had not stopped; a second Ctrl-C
stops at once. `matryoshka_dims` wraps the loss in MatryoshkaLoss, so that the first 256, 128, ...
dimensions are embeddings of their own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample

__all__ = [
    "Fitted",
    "TrainConfig",
    "TrainResult",
    "examples_dataset",
    "examples_hash",
    "fit",
    "train",
    "trainer_arguments",
]

log = logging.getLogger("vectorforge.finetune")


@dataclass(frozen=True)
class TrainConfig:
    """CPU-sized defaults: SciFact train (919 pairs) takes minutes per epoch on 2 cores."""

    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 12
    max_seq_length: int = 256
    cached: bool = False  # CachedMultipleNegativesRankingLoss
    mini_batch_size: int = 16
    scale: float = 20.0  # MNRL's temperature: similarity x scale
    save_steps: int = 50
    bf16: bool = False  # autocast the training step (CPU bfloat16): faster, slightly noisier
    matryoshka_dims: tuple[int, ...] = ()  # e.g. (384, 256, 128, 64): MatryoshkaLoss over these

    def check(self) -> None:
        if self.epochs <= 0 or self.batch_size < 2 or self.learning_rate <= 0:
            raise InvalidParameter("training needs epochs > 0, batch_size >= 2 and learning_rate > 0")
        dims = self.matryoshka_dims
        if dims and (any(d < 1 for d in dims) or list(dims) != sorted(set(dims), reverse=True)):
            raise InvalidParameter(f"matryoshka_dims must be distinct and decreasing, not {dims}")

    @property
    def loss_name(self) -> str:
        name = "CachedMultipleNegativesRankingLoss" if self.cached else "MultipleNegativesRankingLoss"
        return f"MatryoshkaLoss({name})" if self.matryoshka_dims else name


@dataclass
class TrainResult:
    model_path: Path
    seconds: float
    steps: int
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    config: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


def train(
    base_model: str | Path,
    examples: Sequence[TrainingExample],
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
) -> TrainResult:
    """Fine-tune `base_model` (a sentence-transformers folder) on `examples`; the model is saved to
    `out_dir/model`, checkpoints to `out_dir/checkpoints`."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer import losses

    cfg = config or TrainConfig()
    cfg.check()
    out = Path(out_dir)
    dataset = examples_dataset(examples, cfg.batch_size)
    model = SentenceTransformer(str(base_model), device="cpu")
    model.max_seq_length = cfg.max_seq_length
    loss = (
        losses.CachedMultipleNegativesRankingLoss(model, scale=cfg.scale, mini_batch_size=cfg.mini_batch_size)
        if cfg.cached
        else losses.MultipleNegativesRankingLoss(model, scale=cfg.scale)
    )
    if cfg.matryoshka_dims:
        dim = model.get_embedding_dimension()
        if cfg.matryoshka_dims[0] > dim:
            raise InvalidParameter(
                f"matryoshka_dims {cfg.matryoshka_dims} exceed the model's {dim} dimensions"
            )
        loss = losses.MatryoshkaLoss(model, loss, list(cfg.matryoshka_dims))
    args = SentenceTransformerTrainingArguments(**trainer_arguments(out, cfg))
    fitted = fit(SentenceTransformerTrainer, model, args, dataset, loss, out, resume=resume)
    if not fitted.interrupted:
        model.save(str(out / "model"))
    return TrainResult(
        out / "model", fitted.seconds, fitted.steps, fitted.losses, asdict(cfg), fitted.interrupted
    )


def examples_dataset(examples: Sequence[TrainingExample], batch_size: int) -> Any:
    """The examples as a `datasets.Dataset`: anchor, positive, negative_1..n (the same number of
    negatives in every row: the fewest any example has)."""
    from datasets import Dataset

    if len(examples) < batch_size:
        raise InvalidParameter(f"{len(examples)} examples are fewer than one batch of {batch_size}")
    n_neg = min(len(ex.negatives) for ex in examples)
    columns: dict[str, list[str]] = {
        "anchor": [ex.query for ex in examples],
        "positive": [ex.positive for ex in examples],
    }
    for i in range(n_neg):  # the same number of negatives in every row: the columns are fixed
        columns[f"negative_{i + 1}"] = [ex.negatives[i] for ex in examples]
    return Dataset.from_dict(columns)


def trainer_arguments(out: Path, cfg: TrainConfig) -> dict[str, Any]:
    """The Trainer's arguments for `cfg` (any sentence-transformers model kind): CPU, seeded,
    NO_DUPLICATES batches, a checkpoint every `save_steps`, a loss logged every step."""
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    return {
        "output_dir": str(out / "checkpoints"),
        "num_train_epochs": cfg.epochs,
        "per_device_train_batch_size": cfg.batch_size,
        "learning_rate": cfg.learning_rate,
        "warmup_steps": cfg.warmup_ratio,  # a float below 1 is a share of the steps (transformers 5)
        "weight_decay": cfg.weight_decay,
        "seed": cfg.seed,
        "data_seed": cfg.seed,
        "batch_sampler": BatchSamplers.NO_DUPLICATES,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "logging_steps": 1,
        "disable_tqdm": False,  # a progress bar on stderr, not a dict a step on stdout
        "report_to": "none",
        "use_cpu": True,
        "bf16": cfg.bf16,
        "dataloader_num_workers": 0,
    }


@dataclass
class Fitted:
    seconds: float
    steps: int
    losses: list[tuple[int, float]]
    interrupted: bool


def fit(
    trainer_class: Any, model: Any, args: Any, dataset: Any, loss: Any, out: Path, *, resume: bool = False
) -> Fitted:
    """Run a sentence-transformers Trainer (`trainer_class`: dense or multi-vector) with the loss
    recorded each step, resumed from the last checkpoint under `out` if `resume`, and Ctrl-C
    saving a checkpoint after the current step (a second one stops at once)."""
    from transformers import TrainerCallback

    history: list[tuple[int, float]] = []
    stop = threading.Event()  # set by Ctrl-C: save and stop at the end of the step

    class Record(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            logs = kwargs.get("logs")
            if logs and "loss" in logs:
                history.append((int(state.global_step), float(logs["loss"])))

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if stop.is_set():
                control.should_save = True
                control.should_training_stop = True
            return control

    trainer = trainer_class(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[Record()])
    last = _last_checkpoint(out / "checkpoints") if resume else None
    start = time.perf_counter()
    with _stop_on_interrupt(stop):
        trainer.train(resume_from_checkpoint=str(last) if last else None)
    # a Ctrl-C after the last step stopped nothing: the run is complete
    interrupted = stop.is_set() and trainer.state.global_step < trainer.state.max_steps
    if interrupted:
        log.warning(
            "interrupted at step %d: checkpoint saved; resume=True continues", trainer.state.global_step
        )
    return Fitted(time.perf_counter() - start, int(trainer.state.global_step), history, interrupted)


def examples_hash(examples: Sequence[TrainingExample]) -> str:
    """SHA-256 (12 hex) of the examples' texts, in order: what a model card records as its data."""
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.query, ex.positive, *ex.negatives]).encode())
    return digest.hexdigest()[:12]


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """While training: the first SIGINT sets `stop` (the Trainer saves a checkpoint and stops after
    the step), a second one interrupts at once. Off the main thread signals cannot be caught, and
    Ctrl-C behaves as usual."""

    def handle(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        log.warning("Ctrl-C: saving a checkpoint after this step (press again to stop at once)")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:  # None: a handler installed from C, which Python cannot put back; the default then
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def _last_checkpoint(folder: Path) -> Path | None:
    steps = [  # trainer_state.json is written last: a checkpoint without it was cut short
        (int(p.name.split("-")[1]), p)
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(steps)[1] if steps else None
