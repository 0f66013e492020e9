"""Evaluations on a schedule (APScheduler's interval trigger): `vectorforge eval watch` in the
foreground, and the server's own schedule in the background."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from apscheduler.executors.debug import DebugExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from pydantic import Field, ValidationError

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.continuous import EvaluationSpec
from vectorforge.evaluation.runs import validation_problems

__all__ = ["ScheduledEvaluation", "load_schedule", "parse_interval", "run_every", "start_background"]

log = logging.getLogger("vectorforge.evaluation")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """ "30s", "15m", "1h", "1d" (or a number of seconds) in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if match is None or float(match[1]) <= 0:
        raise InvalidParameter(f"interval {text!r} is not understood; use e.g. 30s, 15m, 1h or 1d")
    return float(match[1]) * _UNITS[match[2] or "s"]


def _add(scheduler: BaseScheduler, job: Callable[[], object], seconds: float, name: str) -> None:
    def guarded() -> None:
        try:
            job()
        except Exception:  # one failed evaluation must not end the schedule
            log.exception("scheduled evaluation %s failed", name)

    scheduler.add_job(
        guarded,
        "interval",
        seconds=seconds,
        next_run_time=datetime.now(UTC),
        id=name,
        name=name,
        max_instances=1,
        coalesce=True,
    )


def run_every(job: Callable[[], bool], seconds: float, name: str = "evaluation") -> None:
    """Run `job` now and every `seconds` in this thread until it returns False or Ctrl-C. Jobs run
    in the calling thread (APScheduler's DebugExecutor), so Ctrl-C stops a job where it is: an
    evaluation interrupted mid-search records nothing."""
    scheduler = BlockingScheduler(timezone=UTC, executors={"default": DebugExecutor()})
    interrupted = stopping = False

    def step() -> None:
        nonlocal interrupted, stopping
        try:
            again = job()
        except KeyboardInterrupt:  # APScheduler would log it as a failed job and go on
            interrupted, again = True, False
        if not again:
            stopping = True
            scheduler.shutdown(wait=False)

    _add(scheduler, step, seconds, name)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
    except JobLookupError:
        # The scheduler, shut down from inside the job (it runs in this thread), cannot file the
        # job's next run any more; that is the stop we asked for.
        if not stopping:
            raise
    if interrupted:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        raise KeyboardInterrupt


def start_background(jobs: list[tuple[str, float, Callable[[], object]]]) -> BackgroundScheduler:
    """Start a background scheduler running each (name, seconds, job); the caller shuts it down."""
    scheduler = BackgroundScheduler(timezone=UTC, daemon=True)
    for name, seconds, job in jobs:
        _add(scheduler, job, seconds, name)
    scheduler.start()
    return scheduler


class ScheduledEvaluation(EvaluationSpec):
    """One entry of a schedule file (`vectorforge serve --eval-schedule FILE`, a YAML list)."""

    every: str = Field(default="1h", description="30s, 15m, 1h, 1d")
    label: str = "scheduled"

    @property
    def seconds(self) -> float:
        return parse_interval(self.every)

    @property
    def name(self) -> str:
        return f"{self.goldset} on {self.collection} every {self.every}"


def load_schedule(path: str | Path) -> list[ScheduledEvaluation]:
    """Read and check a schedule file; a bad entry is refused naming its place and field."""
    p = Path(path)
    try:
        entries = yaml.safe_load(p.read_text()) or []
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidParameter(f"evaluation schedule {p}: {exc}") from exc
    if not isinstance(entries, list):
        raise InvalidParameter(f"evaluation schedule {p}: expected a list of entries")
    out = []
    for i, entry in enumerate(entries):
        try:
            job = ScheduledEvaluation.model_validate(entry)
        except ValidationError as exc:
            problems = validation_problems(exc)
            raise InvalidParameter(f"evaluation schedule {p}, entry {i + 1}: {problems}") from None
        job.seconds  # noqa: B018 - an interval it cannot parse is refused now, not at its first run
        out.append(job)
    return out
