"""Online evaluation over HTTP: events in (`POST /events`), online metrics out (`/online/...`), the
server's own search log (opt-in per collection), and experiments (`/experiments/...`): A/B tests
and interleaving, whose queries the server answers, assigns and logs itself.

Events and experiments live in the data folder (`evaluation/events.sqlite`); a server that keeps
its data in memory answers these routes with a UsageError.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from vectorforge.engine import Database
from vectorforge.evaluation.online.events import EventLogger, ResultItem, SearchEvent, parse_events
from vectorforge.evaluation.online.experiments import Experiment, assign
from vectorforge.evaluation.online.online_metrics import online_metrics, outcomes, time_series
from vectorforge.server.auth import Action
from vectorforge.server.deps import Who, collection
from vectorforge.server.routes_evaluation import workspace_of
from vectorforge.wire import hit_to_dict

__all__ = ["LoggingBody", "QueryInExperiment", "SearchLog", "online_routes"]


class LoggingBody(BaseModel):
    """`PUT /online/logging/{collection}`: log this share of its searches (0: off)."""

    model_config = ConfigDict(extra="forbid")
    sample_rate: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
    keep_text: StrictBool = False


class QueryInExperiment(BaseModel):
    """`POST /experiments/{name}/query`: a user's query, answered by the arm they are in."""

    model_config = ConfigDict(extra="forbid")
    text: Annotated[StrictStr, Field(min_length=1, max_length=10_000)]
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    session_id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    segment: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None


class SearchLog:
    """The server's search log: which collections log (cached for a second: a search must not
    wait on SQLite), and the writer that stores their events off the request path."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._logger: EventLogger | None = None
        self._configs: dict[str, tuple[float, dict[str, Any]]] = {}

    @property
    def logger(self) -> EventLogger:
        if self._logger is None:
            self._logger = EventLogger(workspace_of(self._db).events)
        return self._logger

    def config(self, name: str) -> dict[str, Any]:
        cached = self._configs.get(name)
        if cached is None or time.monotonic() - cached[0] > 1.0:
            cached = (time.monotonic(), workspace_of(self._db).events.logging(name))
            self._configs[name] = cached
        return cached[1]

    def forget(self, name: str) -> None:
        self._configs.pop(name, None)

    def record(
        self,
        name: str,
        hits: Sequence[Any],
        latency_ms: float,
        *,
        text: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        experiment: str | None = None,
        arm: str | None = None,
        segment: str | None = None,
        teams: Sequence[str] | None = None,
        keep_text: bool = False,
    ) -> str:
        """Queue one search event; its query id (for the client's clicks)."""
        query_id = uuid.uuid4().hex
        results = [
            ResultItem(id=h.id, score=float(h.score), team=None if teams is None else teams[i])
            for i, h in enumerate(hits)
        ]
        event = SearchEvent(
            query_id=query_id,
            collection=name,
            query=text,
            user_id=user_id,
            session_id=session_id,
            experiment=experiment,
            arm=arm,
            segment=segment,
            latency_ms=latency_ms,
            results=results,
        )
        self.logger.log(event, keep_text=keep_text)
        return query_id

    def maybe_record(
        self,
        name: str,
        hits: Sequence[Any],
        latency_ms: float,
        text: str | None,
        user: str | None,
        session: str | None,
    ) -> str | None:
        """Log a plain search if `name` logs and this one is sampled; its query id, or None."""
        if self._db.path is None:
            return None
        config = self.config(name)
        if config["sample_rate"] <= 0 or random.random() >= config["sample_rate"]:
            return None
        return self.record(
            name, hits, latency_ms, text=text, user_id=user, session_id=session, keep_text=config["keep_text"]
        )

    def close(self) -> None:
        if self._logger is not None:
            self._logger.close()


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
        log.logger.flush()
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
        log.logger.flush()
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

    @routes.post("/experiments")
    def create_experiment(body: Experiment, who: Who) -> dict[str, Any]:
        """A new experiment, as a draft (start it with `POST /experiments/{name}/start`)."""
        who.require(Action.MANAGE)
        for arm in body.arms.values():
            collection(db, arm.collection, who, Action.READ)  # every arm names something that exists
        return _state(workspace_of(db).experiments.create(body, who=who.key_id or "open access"))

    @routes.get("/experiments")
    def list_experiments(who: Who) -> list[dict[str, Any]]:
        who.require(Action.READ)
        return [_state(s) for s in workspace_of(db).experiments.all()]

    @routes.get("/experiments/{name}")
    def get_experiment(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.READ)
        store = workspace_of(db).experiments
        return {**_state(store.get(name)), "log": store.log(name)}

    @routes.post("/experiments/{name}/start")
    def start_experiment(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.MANAGE)
        return _state(workspace_of(db).experiments.start(name, who=who.key_id or "open access"))

    @routes.post("/experiments/{name}/stop")
    def stop_experiment(name: str, who: Who) -> dict[str, Any]:
        who.require(Action.MANAGE)
        return _state(workspace_of(db).experiments.stop(name, who=who.key_id or "open access"))

    @routes.post("/experiments/{name}/query")
    def query_in_experiment(name: str, body: QueryInExperiment, who: Who) -> dict[str, Any]:
        """Answer a user's query as their arm does and log it (the answer carries the query id
        for the clicks). A stopped or draft experiment answers with its control arm, unlogged."""
        store = workspace_of(db).experiments
        state = store.get(name)
        exp: Experiment = state["experiment"]
        unit = body.user_id if exp.unit == "user" else body.session_id
        running = state["status"] == "running"
        arm = assign(exp, unit or "") if running else exp.control
        spec = exp.arms[arm]
        col = collection(db, spec.collection, who, Action.READ)
        began = time.perf_counter()
        hits = col.query(
            body.text,
            k=exp.k,
            using=spec.using,
            mode=spec.mode,
            fusion=spec.fusion,
            weights=spec.weights,
            params=spec.params,
            filter=spec.filter,
        )
        latency_ms = 1000 * (time.perf_counter() - began)
        out: dict[str, Any] = {"arm": arm, "hits": [hit_to_dict(h) for h in hits]}
        if running:
            out["query_id"] = log.record(
                spec.collection,
                hits,
                latency_ms,
                text=body.text,
                user_id=body.user_id,
                session_id=body.session_id,
                experiment=name,
                arm=arm,
                segment=body.segment,
            )
        return out

    @routes.get("/experiments/{name}/results")
    def experiment_results(
        name: str, who: Who, k: int | None = None, dwell_s: float = 30.0
    ) -> dict[str, Any]:
        """Each arm's online metrics so far."""
        who.require(Action.READ)
        ws = workspace_of(db)
        state = ws.experiments.get(name)
        exp: Experiment = state["experiment"]
        log.logger.flush()
        found = outcomes(ws.events, experiment=name, dwell_s=dwell_s)
        per_arm = online_metrics(found, by="arm", k=k or exp.k)
        return {**_state(state), "arms": {arm: per_arm.get(f"arm:{arm}") for arm in exp.arms}}

    return routes


def _state(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "experiment": state["experiment"].model_dump(mode="json")}
