"""Continuous evaluation: evaluate, compare with the baseline, record, alert. What `vectorforge eval
run`, `eval watch` and the server's schedule all do, once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

from pydantic import BaseModel, ConfigDict, Field

from vectorforge.api import CollectionAPI
from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.alerts import alert_payload, notify
from vectorforge.evaluation.evaluator import DEFAULT_METRICS, evaluate_collection
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun, History
from vectorforge.evaluation.metrics import canonical_metrics
from vectorforge.evaluation.regression import Change, compare_runs
from vectorforge.evaluation.runs import SearchConfig
from vectorforge.evaluation.workspace import Workspace

__all__ = ["EvaluationSpec", "Outcome", "RecordOptions", "evaluate_and_record", "pick_baseline"]


class RecordOptions(TypedDict, total=False):
    """`evaluate_and_record`'s options by keyword (the CLI and the server's schedule pass them on)."""

    metrics: Sequence[str]
    baseline: str
    min_effect: float
    alpha: float
    label: str
    webhook: str | None
    record: bool
    progress: bool
    keep_days: float | None
    keep_last: int | None


@dataclass(frozen=True)
class Outcome:
    run: EvalRun
    baseline: EvalRun | None
    changes: list[Change]

    @property
    def regressed(self) -> bool:
        return any(c.regression for c in self.changes)


def pick_baseline(history: History, goldset: GoldSet, collection: str, baseline: str) -> EvalRun | None:
    """ "pinned" (the pinned run, else the previous one), "previous", "none", or a run id; always a
    run of this gold set version on this collection, because scores under other judgments do not
    pair (a new version starts without a baseline)."""
    version = goldset.version
    if baseline == "none":
        return None
    if baseline == "previous":
        return history.latest(goldset.name, collection, version=version)
    if baseline == "pinned":
        pinned = history.latest(goldset.name, collection, pinned=True, version=version)
        return pinned or history.latest(goldset.name, collection, version=version)
    run = history.get(baseline)
    if (run.goldset, run.goldset_version, run.collection) != (goldset.name, version, collection):
        raise InvalidParameter(
            f"baseline {baseline!r} is a run of {run.goldset}@{run.goldset_version} on {run.collection!r}; "
            f"a baseline must be a run of {goldset.name}@{version} on {collection!r}"
        )
    return run


def evaluate_and_record(
    collection: CollectionAPI,
    goldset: GoldSet,
    history: History,
    config: SearchConfig | None = None,
    **options: Unpack[RecordOptions],
) -> Outcome:
    """Evaluate `collection` on `goldset`, compare with `baseline` (see `pick_baseline`; default
    "pinned"), record the run with its regressions (unless `record=False`), apply the retention
    setting (`keep_days`, `keep_last`: see `History.prune`), and alert the log and `webhook` when
    there are regressions. A regression: see `vectorforge.evaluation.regression`."""
    metrics = options.get("metrics", DEFAULT_METRICS)
    min_effect, alpha = options.get("min_effect", 0.02), options.get("alpha", 0.05)
    label, progress = options.get("label", ""), options.get("progress", False)
    baseline = options.get("baseline", "pinned")
    metrics = canonical_metrics(metrics)  # "ndcg@010" is "ndcg@10": one name in scores and reports
    base = pick_baseline(history, goldset, collection.name, baseline)
    run = evaluate_collection(collection, goldset, metrics, config, label=label, progress=progress)
    changes = compare_runs(base, run, goldset, metrics, min_effect=min_effect, alpha=alpha) if base else []
    run = replace(run, regressions=[c.to_json() for c in changes if c.regression])
    if options.get("record", True):
        history.record(run)
        keep_days, keep_last = options.get("keep_days"), options.get("keep_last")
        if keep_days is not None or keep_last is not None:  # the retention setting, applied as runs come
            history.prune(
                keep_days=keep_days, keep_last=keep_last, goldset=run.goldset, collection=run.collection
            )
    if base is not None and run.regressions:
        notify(alert_payload(run, base, changes), options.get("webhook"))
    return Outcome(run, base, changes)


class EvaluationSpec(BaseModel):
    """What to evaluate and how to judge it, as data: a schedule entry and `POST /evaluation/runs`
    extend it. An unknown field is refused by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collection: str
    goldset: str = Field(description="NAME or NAME@VERSION")
    search: SearchConfig = Field(default_factory=SearchConfig)
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    baseline: str = "pinned"
    min_effect: float = Field(default=0.02, ge=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    label: str = ""
    webhook: str | None = None
    keep_days: float | None = Field(default=None, ge=0, description="retention: delete older runs")
    keep_last: int | None = Field(default=None, ge=1, description="retention: runs kept per gold set")

    def run(self, collection: CollectionAPI, workspace: Workspace, *, record: bool = True) -> Outcome:
        return evaluate_and_record(
            collection,
            workspace.goldset(self.goldset),
            workspace.history,
            config=self.search,
            metrics=self.metrics,
            baseline=self.baseline,
            min_effect=self.min_effect,
            alpha=self.alpha,
            label=self.label,
            webhook=self.webhook,
            record=record,
            keep_days=self.keep_days,
            keep_last=self.keep_last,
        )
