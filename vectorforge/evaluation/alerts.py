"""Where regressions (and drift alarms) are told: the log always, and a webhook (an HTTP POST of
JSON) when given."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx

from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.regression import Change

__all__ = ["alert_payload", "notify", "post_json"]

log = logging.getLogger("vectorforge.evaluation")


def alert_payload(run: EvalRun, baseline: EvalRun, changes: Sequence[Change]) -> dict[str, Any]:
    """The JSON a webhook receives: which run regressed against which baseline, and where."""
    return {
        "event": "vectorforge.evaluation.regression",
        "goldset": run.goldset,
        "goldset_version": run.goldset_version,
        "collection": run.collection,
        "run_id": run.run_id,
        "baseline_run_id": baseline.run_id,
        "created_at": run.created_at,
        "regressions": [c.to_json() for c in changes if c.regression],
    }


def notify(
    payload: dict[str, Any], webhook: str | None = None, *, retries: int = 3, timeout: float = 10
) -> bool:
    """Log the regression and POST it to `webhook`, retrying with back-off; False if it never got
    a 2xx answer (the failure is logged: an alert that cannot be sent must not end the evaluation)."""
    for r in payload["regressions"]:
        log.warning(
            "regression on %s/%s segment %s: %s %.4f -> %.4f (p=%.3g)",
            payload["goldset"],
            payload["collection"],
            r["segment"],
            r["metric"],
            r["baseline"],
            r["candidate"],
            r["p_adjusted"],
        )
    return True if webhook is None else post_json(payload, webhook, retries=retries, timeout=timeout)


def post_json(payload: dict[str, Any], webhook: str, *, retries: int = 3, timeout: float = 10) -> bool:
    """POST `payload` to `webhook`, retrying with back-off; False if it never got a 2xx answer
    (logged: an alert that cannot be sent must not end the job that raised it)."""
    for attempt in range(retries):
        try:
            response = httpx.post(webhook, json=payload, timeout=timeout)
            if response.is_success:
                return True
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = str(exc) or type(exc).__name__
        log.warning("alert webhook %s failed (%s), attempt %d of %d", webhook, problem, attempt + 1, retries)
        if attempt + 1 < retries:
            time.sleep(0.5 * 2**attempt)
    return False
