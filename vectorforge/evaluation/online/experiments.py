"""Experiments on live traffic: A/B tests and interleaving experiments, who is in which arm, and
a record of who changed what. Kept in `evaluation/events.sqlite`, beside the events they produce.

An arm is a way to answer a query: a collection or alias, with its search configuration (vector,
hybrid mode and weights, index parameters). Assignment hashes the unit (user or session) with the
experiment's salt: the same user lands in the same arm on every server and after every restart,
and two experiments with different salts split users independently.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr, model_validator

from vectorforge.errors import ConflictError, ExperimentNotFound, InvalidParameter
from vectorforge.evaluation.sqlite import SQLiteFile
from vectorforge.types import check_name

__all__ = ["Arm", "Experiment", "ExperimentStore", "Guardrails", "assign"]

Name = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Number = StrictFloat | StrictInt

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    stopped_at REAL,
    stop_reason TEXT
);
CREATE TABLE IF NOT EXISTS experiment_log (
    name TEXT NOT NULL,
    time REAL NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class Arm(BaseModel):
    """How one arm answers a query: `col.query(text, using, mode, fusion, weights, params,
    filter)` on `collection` (a collection or an alias)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collection: Name
    using: Name | None = None
    mode: Literal["hybrid"] | None = None
    fusion: Literal["rrf", "dbsf", "weighted"] = "rrf"
    weights: list[Number] | None = None
    params: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None


class Guardrails(BaseModel):
    """Limits that stop a running experiment when the treatment breaks them against control:
    `latency_p95_ratio` (treatment p95 over control p95) and `zero_result_increase` (absolute)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_p95_ratio: Annotated[Number, Field(gt=1)] | None = 1.5
    zero_result_increase: Annotated[Number, Field(gt=0, le=1)] | None = 0.05
    min_searches: Annotated[StrictInt, Field(ge=1)] = 200  # per arm, before a guardrail may fire


class Experiment(BaseModel):
    """An experiment's definition. `kind`: "ab" (each unit sees one arm) or "interleaving" (each
    query sees the team-draft merge of exactly two arms). `split`: each arm's share of units
    (default: equal); `unit`: what is randomized, "user" or "session"; `salt`: default the name;
    `cuped_days`: the pre-period of the CUPED-adjusted test (None: no CUPED). The first arm is the
    control."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    kind: Literal["ab", "interleaving"] = "ab"
    arms: dict[Name, Arm] = Field(min_length=2, max_length=8)
    split: dict[Name, Annotated[Number, Field(gt=0)]] | None = None
    unit: Literal["user", "session"] = "user"
    salt: Name | None = None
    k: Annotated[StrictInt, Field(ge=1, le=1000)] = 10
    guardrails: Guardrails = Field(default_factory=Guardrails)
    # CUPED's pre-period: the days before the start whose searches give each unit its covariate
    cuped_days: Annotated[Number, Field(gt=0, le=365)] | None = 14
    description: Annotated[StrictStr, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        check_name(self.name, "experiment")
        if self.kind == "interleaving" and len(self.arms) != 2:
            raise ValueError(f"an interleaving experiment has exactly two arms, not {len(self.arms)}")
        if self.split is not None and set(self.split) != set(self.arms):
            raise ValueError(f"split names arms {sorted(self.split)}, but the arms are {sorted(self.arms)}")
        return self

    @property
    def control(self) -> str:
        return next(iter(self.arms))

    def shares(self) -> dict[str, float]:
        """Each arm's share of units, summing to 1."""
        weights = self.split or dict.fromkeys(self.arms, 1.0)
        total = float(sum(weights.values()))
        return {arm: float(weights[arm]) / total for arm in self.arms}


def assign(experiment: Experiment, unit_id: str) -> str:
    """The arm of `unit_id`: its salted SHA-256 read as a number in [0, 1), against the arms'
    cumulative shares (in the order the arms were given)."""
    if not unit_id:
        unit = experiment.unit
        raise InvalidParameter(f"experiment {experiment.name!r} assigns by {unit}: give a {unit} id")
    salt = experiment.salt or experiment.name
    digest = hashlib.sha256(f"{salt}\x00{unit_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    arms = list(experiment.shares().items())
    for arm, share in arms:
        edge += share
        if u < edge:
            return arm
    return arms[-1][0]  # u just under 1 with shares summing to 1 - epsilon


class ExperimentStore(SQLiteFile):
    """Experiments and their change log. Safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA)

    def create(self, experiment: Experiment, who: str = "") -> dict[str, Any]:
        """Store a new experiment as a draft."""
        with self._connect(write=True) as db:
            if db.execute("SELECT 1 FROM experiments WHERE name = ?", (experiment.name,)).fetchone():
                raise ConflictError(f"experiment {experiment.name!r} exists; pick another name")
            now = time.time()
            db.execute(
                "INSERT INTO experiments VALUES (?, ?, 'draft', ?, NULL, NULL, NULL)",
                (experiment.name, experiment.model_dump_json(), now),
            )
            _log(db, experiment.name, now, who, "create", experiment.model_dump(mode="json"))
        return self.get(experiment.name)

    def get(self, name: str) -> dict[str, Any]:
        """{"experiment": Experiment, "status", "created_at", "started_at", "stopped_at", "stop_reason"}."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM experiments WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ExperimentNotFound(f"no experiment {name!r}; GET /experiments lists them")
        return _state(row)

    def experiment(self, name: str) -> Experiment:
        found: Experiment = self.get(name)["experiment"]
        return found

    def all(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM experiments ORDER BY created_at").fetchall()
        return [_state(r) for r in rows]

    def start(self, name: str, who: str = "") -> dict[str, Any]:
        return self._move(name, "running", who, "start")

    def stop(self, name: str, who: str = "", reason: str = "stopped") -> dict[str, Any]:
        return self._move(name, "stopped", who, "stop", reason)

    def log(self, name: str) -> list[dict[str, Any]]:
        """Who changed what, oldest first."""
        self.get(name)
        with self._connect() as db:
            rows = db.execute(
                "SELECT time, who, action, detail FROM experiment_log WHERE name = ? ORDER BY time, rowid",
                (name,),
            ).fetchall()
        return [{"time": t, "who": w, "action": a, "detail": json.loads(d)} for t, w, a, d in rows]

    def _move(
        self, name: str, status: str, who: str, action: str, reason: str | None = None
    ) -> dict[str, Any]:
        allowed = {"running": ("draft",), "stopped": ("draft", "running")}[status]
        with self._connect(write=True) as db:
            row = db.execute("SELECT status FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise ExperimentNotFound(f"no experiment {name!r}; GET /experiments lists them")
            if row[0] not in allowed:
                raise InvalidParameter(f"experiment {name!r} is {row[0]}: it cannot {action}")
            now = time.time()
            column = "started_at" if status == "running" else "stopped_at"
            db.execute(
                f"UPDATE experiments SET status = ?, {column} = ?, stop_reason = ? WHERE name = ?",
                (status, now, reason, name),
            )
            _log(db, name, now, who, action, {"reason": reason} if reason else {})
        return self.get(name)


def _log(db: Any, name: str, now: float, who: str, action: str, detail: dict[str, Any]) -> None:
    row = (name, now, who, action, json.dumps(detail))
    db.execute("INSERT INTO experiment_log VALUES (?, ?, ?, ?, ?)", row)


def _state(row: tuple[Any, ...]) -> dict[str, Any]:
    _, spec, status, created, started, stopped, reason = row
    return {
        "experiment": Experiment.model_validate_json(spec),
        "status": status,
        "created_at": created,
        "started_at": started,
        "stopped_at": stopped,
        "stop_reason": reason,
    }
