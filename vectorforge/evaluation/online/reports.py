"""What the online routes and the dashboard show: an experiment's report (its state, each arm's
metrics, the statistics of the comparison) and an overview of online metrics, experiments and
drift for the collections a key may see."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vectorforge.evaluation.online.online_metrics import online_metrics, outcomes, time_series
from vectorforge.evaluation.workspace import Workspace

__all__ = ["experiment_report", "experiment_state", "online_overview"]


def experiment_state(state: dict[str, Any]) -> dict[str, Any]:
    """A stored experiment's state as JSON."""
    return {**state, "experiment": state["experiment"].model_dump(mode="json")}


def experiment_report(
    ws: Workspace, name: str, *, k: int | None = None, dwell_s: float = 30.0
) -> dict[str, Any]:
    """The experiment's state and each arm's online metrics so far."""
    state = ws.experiments.get(name)
    exp = state["experiment"]
    found = outcomes(ws.events, experiment=name, dwell_s=dwell_s)
    per_arm = online_metrics(found, by="arm", k=k or exp.k)
    return {**experiment_state(state), "arms": {arm: per_arm.get(f"arm:{arm}") for arm in exp.arms}}


def online_overview(
    ws: Workspace, may_see: Callable[[str], bool], *, hours: int = 24, now: float | None = None
) -> dict[str, Any]:
    """For the dashboard: hourly online metrics of the last `hours` per collection, every
    experiment on visible collections with its report, and each watched collection's drift checks."""
    now = time.time() if now is None else now
    start = now - hours * 3600
    found = outcomes(ws.events, start=start)
    by_collection: dict[str, list[Any]] = {}
    for o in found:
        if may_see(o.collection):
            by_collection.setdefault(o.collection, []).append(o)
    series = {
        name: time_series(members, step_s=3600, start=start)
        for name, members in sorted(by_collection.items())
    }
    experiments = [
        experiment_report(ws, s["experiment"].name)
        for s in ws.experiments.all()
        if all(may_see(arm.collection) for arm in s["experiment"].arms.values())
    ]
    drift = {}
    for name, watch in sorted(ws.drift.watches().items()):
        if may_see(name):
            ref = ws.drift.reference(name)
            drift[name] = {
                "watch": watch.model_dump(mode="json"),
                "reference": None if ref is None else {"source": ref.source, "queries": len(ref.vectors)},
                "checks": ws.drift.checks(name, limit=200),
            }
    return {"series": series, "experiments": experiments, "drift": drift}
