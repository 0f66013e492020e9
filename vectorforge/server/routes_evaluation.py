"""Evaluation over HTTP: gold sets, recorded runs, comparisons, and evaluating a collection now.
A key sees the runs of the collections it may read; running an evaluation needs write access."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import APIRouter, Query

from vectorforge.engine import Database
from vectorforge.errors import GoldSetNotFound, RunNotFound, UsageError
from vectorforge.evaluation.continuous import EvaluationSpec
from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.regression import compare_runs
from vectorforge.evaluation.report import report_json
from vectorforge.evaluation.schedule import ScheduledEvaluation, start_background
from vectorforge.evaluation.workspace import Workspace
from vectorforge.server.auth import Action, Principal
from vectorforge.server.deps import Who, collection

__all__ = ["EvaluateRequest", "evaluation_routes", "start_schedule", "visible_goldsets", "workspace_of"]


class EvaluateRequest(EvaluationSpec):
    """`POST /evaluation/runs`: evaluate a collection on a gold set now and record the run."""

    record: bool = True


def workspace_of(db: Database) -> Workspace:
    if db.path is None:
        raise UsageError("this server keeps its data in memory: evaluation needs a data folder")
    return Workspace(db.path)


def start_schedule(db: Database, jobs: list[ScheduledEvaluation]) -> BackgroundScheduler:
    """Run each scheduled evaluation in the background (the first one now); each run is recorded,
    and its regressions go to the log and the entry's webhook."""
    ws = workspace_of(db)

    def job(entry: ScheduledEvaluation) -> Callable[[], object]:
        return lambda: entry.run(db.get_collection(entry.collection), ws)

    return start_background([(entry.name, entry.seconds, job(entry)) for entry in jobs])


def visible_goldsets(ws: Workspace, who: Principal) -> list[str]:
    """The gold sets `who` may read: all for an unscoped key, else those with runs on its collections."""
    names = ws.goldsets.names()
    if who.collections is None:
        return names
    used = ws.history.goldset_names(who.collections)
    return [n for n in names if n in used]


def evaluation_routes(db: Database) -> APIRouter:
    routes = APIRouter(prefix="/evaluation", tags=["evaluation"])

    def visible(run: EvalRun, who: Principal) -> EvalRun:
        if not who.may_see(run.collection):  # the same answer as for a run that does not exist
            raise RunNotFound(f"no evaluation run {run.run_id!r}", run_id=run.run_id)
        return run

    @routes.get("/goldsets")
    def goldsets(who: Who) -> list[dict[str, Any]]:
        """Every gold set with its versions (oldest first; the last is the current one). A key
        limited to some collections sees the gold sets that have runs on them."""
        who.require(Action.READ)
        ws = workspace_of(db)
        return [{"name": name, "versions": ws.goldsets.versions(name)} for name in visible_goldsets(ws, who)]

    @routes.get("/goldsets/{name}")
    def goldset(name: str, who: Who, version: str | None = None) -> dict[str, Any]:
        """One version (default: the current one) with its queries, judgments and segments."""
        who.require(Action.READ)
        ws = workspace_of(db)
        if name not in visible_goldsets(ws, who):  # the same answer as for one that does not exist
            raise GoldSetNotFound(f"gold set {name!r} does not exist", name=name)
        return ws.goldsets.get(name, version).to_json()

    @routes.get("/runs")
    def runs(
        who: Who,
        goldset: str | None = None,
        collection_name: str | None = Query(None, alias="collection"),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> list[dict[str, Any]]:
        """Recorded runs, oldest first (the newest `limit`), without per-query scores."""
        who.require(Action.READ)
        found = workspace_of(db).history.runs(
            goldset, collection_name, limit=limit, collections=who.collections
        )
        return [r.to_json(per_query=False) for r in found]

    @routes.get("/runs/{run_id}")
    def run(run_id: str, who: Who) -> dict[str, Any]:
        """One run's report, per-query scores included."""
        who.require(Action.READ)
        return report_json(visible(workspace_of(db).history.get(run_id), who))

    @routes.get("/compare")
    def compare(
        baseline: str, candidate: str, who: Who, min_effect: float = 0.02, alpha: float = 0.05
    ) -> dict[str, Any]:
        """The candidate run against the baseline run: every segment and metric, paired."""
        who.require(Action.READ)
        ws = workspace_of(db)
        base = visible(ws.history.get(baseline), who)
        cand = visible(ws.history.get(candidate), who)
        gold = ws.goldset(f"{cand.goldset}@{cand.goldset_version}")
        changes = compare_runs(base, cand, gold, min_effect=min_effect, alpha=alpha)
        return report_json(cand, changes, base, per_query=False)

    @routes.post("/runs")
    def evaluate(body: EvaluateRequest, who: Who) -> dict[str, Any]:
        """Evaluate now (the server searches its own collection) and record the run; the answer
        is its report with the comparison against the baseline."""
        col = collection(db, body.collection, who, Action.WRITE)
        if body.webhook is not None or body.keep_days is not None or body.keep_last is not None:
            # The server would POST to any URL, or delete history: the admin's to choose.
            who.require(Action.MANAGE)
        outcome = body.run(col, workspace_of(db), record=body.record)
        return report_json(outcome.run, outcome.changes, outcome.baseline, per_query=False)

    return routes
