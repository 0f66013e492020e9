"""Continuous evaluation: evaluate, compare with the baseline, record, alert. What `vectorforge eval
run`, `eval watch` and the server's schedule all do, once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

from vectorforge.api import CollectionAPI
from vectorforge.evaluation.alerts import alert_payload, notify
from vectorforge.evaluation.evaluator import DEFAULT_METRICS, evaluate_collection
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun, History
from vectorforge.evaluation.regression import Change, compare_runs
from vectorforge.evaluation.runs import SearchConfig

__all__ = ["Outcome", "RecordOptions", "evaluate_and_record", "pick_baseline"]


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


@dataclass(frozen=True)
class Outcome:
    run: EvalRun
    baseline: EvalRun | None
    changes: list[Change]

    @property
    def regressed(self) -> bool:
        return any(c.regression for c in self.changes)


def pick_baseline(history: History, goldset: str, collection: str, baseline: str) -> EvalRun | None:
    """ "pinned" (the pinned run, else the previous one), "previous", or a run id."""
    if baseline == "previous":
        return history.latest(goldset, collection)
    if baseline == "pinned":
        return history.latest(goldset, collection, pinned=True) or history.latest(goldset, collection)
    if baseline == "none":
        return None
    return history.get(baseline)


def evaluate_and_record(
    collection: CollectionAPI,
    goldset: GoldSet,
    history: History,
    config: SearchConfig | None = None,
    **options: Unpack[RecordOptions],
) -> Outcome:
    """Evaluate `collection` on `goldset`, compare with `baseline` (see `pick_baseline`; default
    "pinned"), record the run with its regressions (unless `record=False`), and alert the log and
    `webhook` when there are any. A regression: see `vectorforge.evaluation.regression`."""
    metrics = options.get("metrics", DEFAULT_METRICS)
    min_effect, alpha = options.get("min_effect", 0.02), options.get("alpha", 0.05)
    label, progress = options.get("label", ""), options.get("progress", False)
    baseline = options.get("baseline", "pinned")
    base = pick_baseline(history, goldset.name, collection.name, baseline)
    run = evaluate_collection(collection, goldset, metrics, config, label=label, progress=progress)
    changes = compare_runs(base, run, goldset, metrics, min_effect=min_effect, alpha=alpha) if base else []
    run = replace(run, regressions=[c.to_json() for c in changes if c.regression])
    if options.get("record", True):
        history.record(run)
    if base is not None and run.regressions:
        notify(alert_payload(run, base, changes), options.get("webhook"))
    return Outcome(run, base, changes)
