"""Online evaluation over HTTP: events in (`POST /events`), online metrics out (`/online/...`), the
server's own search log (opt-in per collection), and experiments (`/experiments/...`): A/B tests
and interleaving, whose queries the server answers, assigns and logs itself; and shadows
(`/online/shadows/...`): candidates a share of a collection's searches is mirrored to.

Events and experiments live in the data folder (`evaluation/events.sqlite`); a server that keeps
its data in memory answers these routes with a UsageError.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from vectorforge.engine import Database
from vectorforge.evaluation.online.drift_watch import (
    DOCUMENTS,
    QUERIES,
    DriftWatch,
    check_drift,
    goldset_reference,
)
from vectorforge.evaluation.online.events import SearchEvent, parse_events
from vectorforge.evaluation.online.experiments import Arm, Experiment, assign
from vectorforge.evaluation.online.interleaving import team_draft
from vectorforge.evaluation.online.judging import Judgment, judging_queue, with_judgments
from vectorforge.evaluation.online.online_metrics import online_metrics, outcomes, time_series
from vectorforge.evaluation.online.reports import INTERLEAVED, experiment_report, experiment_state
from vectorforge.evaluation.online.shadow import Shadow
from vectorforge.server.auth import Action, Principal
from vectorforge.server.deps import Who, collection
from vectorforge.server.routes_evaluation import workspace_of
from vectorforge.server.search_log import SearchLog
from vectorforge.wire import hit_to_dict

__all__ = ["JudgmentsBody", "LoggingBody", "QueryInExperiment", "online_routes"]


class LoggingBody(BaseModel):
    """`PUT /online/logging/{collection}`: log this share of its searches (0: off)."""

    model_config = ConfigDict(extra="forbid")
    sample_rate: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
    keep_text: StrictBool = False


class JudgmentsBody(BaseModel):
    """`POST /online/judging/{goldset}`: graded pairs to add as a new gold set version."""

    model_config = ConfigDict(extra="forbid")
    judgments: list[Judgment] = Field(min_length=1, max_length=100_000)
    description: Annotated[StrictStr, Field(max_length=2000)] = ""


class QueryInExperiment(BaseModel):
    """`POST /experiments/{name}/query`: a user's query, answered by the arm they are in."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[StrictStr, Field(min_length=1, max_length=10_000)]
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    session_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    segment: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None


def online_routes(db: Database, log: SearchLog) -> APIRouter:
    routes = APIRouter(tags=["online"])

    @routes.post("/events")
    def events(body: Annotated[list[Any], Body()], who: Who) -> dict[str, int]:
        """Store events (search, click, dwell, reformulation, success), all or none; a search
        sent again is a no-op. Acknowledged events are on disk."""
        who.require(Action.WRITE)
        parsed = parse_events(body)
        for event in parsed:
            if isinstance(event, SearchEvent):
                who.require(Action.WRITE, event.collection)
        return workspace_of(db).events.add(parsed)

    @routes.get("/online/metrics")
    def metrics(
        who: Who,
        collection_name: str | None = Query(None, alias="collection"),
        experiment: str | None = None,
        start: float | None = None,
        end: float | None = None,
        by: str | None = "segment",
        k: int = Query(10, ge=1, le=1000),
        dwell_s: float = Query(30.0, ge=0),
    ) -> dict[str, Any]:
        """Online metrics of the searches in [start, end), overall and per group."""
        who.require(Action.READ)
        log.flush()
        found = outcomes(
            workspace_of(db).events,
            collection=collection_name,
            experiment=experiment,
            start=start,
            end=end,
            dwell_s=dwell_s,
        )
        return {"metrics": online_metrics(found, by=by, k=k)}

    @routes.get("/online/series")
    def series(
        who: Who,
        step_s: float = Query(3600.0, gt=0),
        collection_name: str | None = Query(None, alias="collection"),
        start: float | None = None,
        end: float | None = None,
        k: int = Query(10, ge=1, le=1000),
        dwell_s: float = Query(30.0, ge=0),
    ) -> dict[str, Any]:
        """The online metrics of consecutive windows of `step_s` seconds."""
        who.require(Action.READ)
        log.flush()
        found = outcomes(
            workspace_of(db).events, collection=collection_name, start=start, end=end, dwell_s=dwell_s
        )
        return {"windows": time_series(found, step_s=step_s, k=k, start=start)}

    @routes.get("/online/logging/{name}")
    def get_logging(name: str, who: Who) -> dict[str, Any]:
        collection(db, name, who, Action.READ)
        return workspace_of(db).events.logging(name)

    @routes.put("/online/logging/{name}")
    def set_logging(name: str, body: LoggingBody, who: Who) -> dict[str, Any]:
        """Log `sample_rate` of this collection's searches (the query's hash only unless
        `keep_text`): the answer to a logged search carries its `query_id` for the clicks."""
        who.require(Action.MANAGE)
        collection(db, name, who, Action.READ)
        workspace_of(db).events.set_logging(name, float(body.sample_rate), body.keep_text)
        log.forget(name)
        return workspace_of(db).events.logging(name)

    @routes.get("/online/judging")
    def judging(
        goldset: str,
        who: Who,
        collection_name: str | None = Query(None, alias="collection"),
        limit: int = Query(100, ge=1, le=10_000),
        min_clicks: int = Query(1, ge=1),
    ) -> dict[str, Any]:
        """Clicked results the gold set has no judgment for, most clicked first: to judge."""
        who.require(Action.READ)
        if collection_name is not None:
            collection(db, collection_name, who, Action.READ)
        log.flush()
        ws = workspace_of(db)
        gold = ws.goldset(goldset)
        queue = judging_queue(ws.events, gold, collection=collection_name, limit=limit, min_clicks=min_clicks)
        return {"goldset": gold.name, "version": gold.version, "pairs": queue}

    @routes.post("/online/judging/{goldset}")
    def add_judgments(goldset: str, body: JudgmentsBody, who: Who) -> dict[str, Any]:
        """Add judged pairs to the gold set as a new version (the older versions stay)."""
        who.require(Action.WRITE)
        ws = workspace_of(db)
        gold = ws.goldset(goldset)
        new = with_judgments(gold, body.judgments, body.description)
        version, created = ws.goldsets.save(new)
        return {"goldset": new.name, "from": gold.version, "version": version, "new": created}

    @routes.put("/online/drift/{name}")
    def watch_drift(name: str, body: DriftWatch, who: Who) -> dict[str, Any]:
        """Watch this collection's queries for drift (its logged queries' embeddings are kept
        from now on). With `reference_goldset`, that gold set's queries become the reference;
        without, the reference in place stays (with none, the first full window is frozen)."""
        who.require(Action.MANAGE)
        col = collection(db, name, who, Action.READ)
        ws = workspace_of(db)
        reference = None
        if body.reference_goldset is not None:
            reference = goldset_reference(col, ws.goldset(body.reference_goldset))
        ws.drift.set_watch(name, body)
        if reference is not None:
            ws.drift.set_reference(name, reference)
        log.forget(name)
        return drift_state(name)

    @routes.delete("/online/drift/{name}")
    def unwatch_drift(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.MANAGE)
        collection(db, name, who, Action.READ)
        workspace_of(db).drift.unwatch(name)
        log.forget(name)
        return {"collection": name, "watched": False}

    @routes.get("/online/drift/{name}")
    def get_drift(name: str, who: Who, limit: int = Query(100, ge=1, le=10_000)) -> dict[str, Any]:
        """The watch, its reference and its recorded checks (oldest first)."""
        collection(db, name, who, Action.READ)
        return drift_state(name, limit)

    @routes.post("/online/drift/{name}/check")
    def check_now(name: str, who: Who) -> dict[str, Any]:
        """Compare the newest window of queries with the reference now (and record it)."""
        who.require(Action.WRITE)
        collection(db, name, who, Action.READ)
        log.flush()
        return check_drift(workspace_of(db).drift, name)

    def drift_state(name: str, limit: int = 100) -> dict[str, Any]:
        store = workspace_of(db).drift
        watch = store.watches().get(name)
        refs = {kind: store.reference(name, kind) for kind in (QUERIES, DOCUMENTS)}
        summary = {
            kind: None
            if ref is None
            else {"source": ref.source, kind: len(ref.vectors), "created_at": ref.created_at}
            for kind, ref in refs.items()
        }
        return {
            "collection": name,
            "watched": watch is not None,
            "watch": None if watch is None else watch.model_dump(mode="json"),
            "reference": summary[QUERIES],
            "documents_reference": summary[DOCUMENTS],
            "checks": store.checks(name, limit),
        }

    @routes.post("/online/shadows")
    def create_shadow(body: Shadow, who: Who, replace: bool = False) -> dict[str, Any]:
        """Mirror `share` of the searches on `collection` to `candidate` from now on (`replace`: a
        shadow of that name changes; its comparisons stay)."""
        who.require(Action.MANAGE)
        collection(db, body.collection, who, Action.READ)
        collection(db, body.candidate.collection, who, Action.READ)
        workspace_of(db).shadows.create(body, replace=replace)
        log.forget(body.collection)
        return shadow_state(body.name)

    @routes.get("/online/shadows")
    def list_shadows(who: Who) -> list[dict[str, Any]]:
        who.require(Action.READ)
        log.flush()
        return [shadow_state(s.name) for s in workspace_of(db).shadows.all() if who.may_see(s.collection)]

    @routes.get("/online/shadows/{name}")
    def get_shadow(
        name: str, who: Who, start: float | None = None, end: float | None = None
    ) -> dict[str, Any]:
        """The shadow and its comparisons so far (in [start, end) when given), per segment."""
        shadow = workspace_of(db).shadows.get(name)
        collection(db, shadow.collection, who, Action.READ)
        log.flush()
        return shadow_state(name, start=start, end=end)

    @routes.get("/online/shadows/{name}/review")
    def review_shadow(name: str, who: Who, limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
        """The mirrored queries whose overlap fell below `review_below`, lowest first."""
        store = workspace_of(db).shadows
        collection(db, store.get(name).collection, who, Action.READ)
        log.flush()
        return store.review(name, limit=limit)

    @routes.delete("/online/shadows/{name}")
    def delete_shadow(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.MANAGE)
        store = workspace_of(db).shadows
        shadow = store.get(name)
        store.delete(name)
        log.forget(shadow.collection)
        return {"deleted": name}

    def shadow_state(name: str, **window: Any) -> dict[str, Any]:
        store = workspace_of(db).shadows
        shadow = store.get(name)
        return {"shadow": shadow.model_dump(mode="json"), "summary": store.summary(name, **window)}

    @routes.post("/experiments")
    def create_experiment(body: Experiment, who: Who) -> dict[str, Any]:
        """A new experiment, as a draft (start it with `POST /experiments/{name}/start`)."""
        who.require(Action.MANAGE)
        for arm in body.arms.values():
            collection(db, arm.collection, who, Action.READ)  # every arm names something that exists
        return experiment_state(workspace_of(db).experiments.create(body, who=who.key_id or "open access"))

    @routes.get("/experiments")
    def list_experiments(who: Who) -> list[dict[str, Any]]:
        who.require(Action.READ)
        return [experiment_state(s) for s in workspace_of(db).experiments.all()]

    @routes.get("/experiments/{name}")
    def get_experiment(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.READ)
        store = workspace_of(db).experiments
        return {**experiment_state(store.get(name)), "log": store.log(name)}

    @routes.post("/experiments/{name}/start")
    def start_experiment(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.MANAGE)
        return experiment_state(workspace_of(db).experiments.start(name, who=who.key_id or "open access"))

    @routes.post("/experiments/{name}/stop")
    def stop_experiment(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.MANAGE)
        return experiment_state(workspace_of(db).experiments.stop(name, who=who.key_id or "open access"))

    @routes.post("/experiments/{name}/query")
    def query_in_experiment(name: str, body: QueryInExperiment, who: Who) -> dict[str, Any]:
        """Answer a user's query as their arm does, or, in an interleaving experiment, with the
        team-draft merge of both arms, and log it (the answer carries the query id for the
        clicks). A stopped or draft experiment answers with its control arm, unlogged."""
        state = workspace_of(db).experiments.get(name)
        exp: Experiment = state["experiment"]
        running = state["status"] == "running"
        began = time.perf_counter()
        teams: list[str] | None = None
        if running and exp.kind == "interleaving":
            arm = INTERLEAVED
            query_id = uuid.uuid4().hex
            first, second = (answer(exp, spec, body.text, who) for spec in exp.arms.values())
            # seeded by the query: the merge is reproducible from the log
            merged = team_draft(
                [str(h.id) for h in first],
                [str(h.id) for h in second],
                exp.k,
                np.random.default_rng(int(query_id, 16)),
            )
            own = {"a": {str(h.id): h for h in first}, "b": {str(h.id): h for h in second}}
            hits = [own[team][doc] for doc, team in zip(merged.ids, merged.teams, strict=True)]
            teams = list(merged.teams)
        else:
            unit = body.user_id if exp.unit == "user" else body.session_id
            arm = assign(exp, unit or "") if running else exp.control
            query_id = None
            hits = answer(exp, exp.arms[arm], body.text, who)
        latency_ms = 1000 * (time.perf_counter() - began)
        out: dict[str, Any] = {"arm": arm, "hits": [hit_to_dict(h) for h in hits]}
        if teams is not None:
            names = list(exp.arms)
            out["teams"] = [names[0] if t == "a" else names[1] for t in teams]
        if running:
            out["query_id"] = log.record(
                exp.arms[exp.control].collection,
                hits,
                latency_ms,
                query_id=query_id,
                text=body.text,
                user_id=body.user_id,
                session_id=body.session_id,
                experiment=name,
                arm=arm,
                segment=body.segment,
                teams=teams,
            )
        return out

    def answer(exp: Experiment, spec: Arm, text: str, who: Principal) -> list[Any]:
        col = collection(db, spec.collection, who, Action.READ)
        return col.query(
            text,
            k=exp.k,
            using=spec.using,
            mode=spec.mode,
            fusion=spec.fusion,
            weights=spec.weights,
            params=spec.params,
            filter=spec.filter,
        )

    @routes.get("/experiments/{name}/results")
    def experiment_results(
        name: str, who: Who, k: int | None = None, dwell_s: float = 30.0
    ) -> dict[str, Any]:
        """Each arm's online metrics so far, and the statistics of the comparison."""
        who.require(Action.READ)
        log.flush()
        return experiment_report(workspace_of(db), name, k=k, dwell_s=dwell_s)

    return routes
