"""What the online routes and the dashboard show: an experiment's report (its state, each arm's
metrics, the statistics of the comparison) and an overview of online metrics, experiments and
drift for the collections a key may see."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vectorforge.evaluation.online.experiment_stats import (
    Guardrail,
    check_guardrails,
    cuped,
    delta_ratio,
    msprt,
    two_proportion_ztest,
    welch_test,
)
from vectorforge.evaluation.online.experiments import Experiment
from vectorforge.evaluation.online.interleaving import Interleaved, credit, preference_test
from vectorforge.evaluation.online.online_metrics import SearchOutcome, online_metrics, outcomes, time_series
from vectorforge.evaluation.workspace import Workspace

__all__ = [
    "INTERLEAVED",
    "ab_comparisons",
    "cuped_comparisons",
    "enforce_guardrails",
    "experiment_report",
    "experiment_state",
    "guardrail_verdict",
    "interleaving_result",
    "online_overview",
]

INTERLEAVED = "interleaved"  # the arm logged for an interleaved search (its results carry their team)
# The mSPRT's mixture variance: effects of about 5 points on a rate (a poor choice costs power only).
MSPRT_TAU2 = 0.05**2


def experiment_state(state: dict[str, Any]) -> dict[str, Any]:
    """A stored experiment's state as JSON."""
    return {**state, "experiment": state["experiment"].model_dump(mode="json")}


def experiment_report(
    ws: Workspace,
    name: str,
    *,
    k: int | None = None,
    dwell_s: float = 30.0,
    alpha: float = 0.05,
    cuped: bool = True,
) -> dict[str, Any]:
    """The experiment's state, each arm's online metrics so far and the statistics: for an A/B
    test, every arm against the control (`comparisons`) and the guardrails' verdict; for an
    interleaving experiment, the preference test (`interleaving`)."""
    state = ws.experiments.get(name)
    exp: Experiment = state["experiment"]
    k = k or exp.k
    found = outcomes(ws.events, experiment=name, dwell_s=dwell_s)
    out = experiment_state(state)
    if exp.kind == "interleaving":
        merged = [o for o in found if o.arm == INTERLEAVED]
        out["arms"] = {INTERLEAVED: online_metrics(merged, by=None, k=k)["all"]}
        out["interleaving"] = interleaving_result(exp, merged, alpha)
        return out
    per_arm = online_metrics(found, by="arm", k=k)
    out["arms"] = {arm: per_arm.get(f"arm:{arm}") for arm in exp.arms}
    by_arm = {arm: [o for o in found if o.arm == arm] for arm in exp.arms}
    out["comparisons"] = ab_comparisons(exp, by_arm, k, alpha)
    if cuped:  # reads the pre-period's events: skipped where only the guardrails are wanted
        out["comparisons"] += cuped_comparisons(ws, exp, state["started_at"], by_arm, k, dwell_s, alpha)
    out["guardrails"] = guardrail_verdict(exp, by_arm, per_arm)
    return out


def ab_comparisons(
    exp: Experiment, by_arm: dict[str, list[SearchOutcome]], k: int, alpha: float
) -> list[dict[str, Any]]:
    """Each arm against the control: ctr@k and success@k by the two-proportion z-test (searches as
    units) and by the always-valid mSPRT (safe to watch as traffic comes), mrr by Welch's t, and
    ctr@k by the delta method over the randomized units (users or sessions), which is the right
    test when one user makes many searches."""
    control = by_arm[exp.control]
    out: list[dict[str, Any]] = []
    for arm, treated in by_arm.items():
        if arm == exp.control or len(control) < 2 or len(treated) < 2:
            continue
        rates: tuple[tuple[str, Callable[[SearchOutcome], bool]], ...] = (
            (f"ctr@{k}", lambda o: o.clicked_top(k)),
            (f"success@{k}", lambda o: o.success_at(k)),
        )
        for metric, of in rates:
            xa = [float(of(o)) for o in control]
            xb = [float(of(o)) for o in treated]
            tests = [
                two_proportion_ztest(
                    int(sum(xa)), len(xa), int(sum(xb)), len(xb), metric=metric, alpha=alpha
                ),
                msprt(xa, xb, tau2=MSPRT_TAU2, proportion=True, metric=metric, alpha=alpha),
            ]
            out += [{"arm": arm, **t.to_json()} for t in tests]
        rr = [[1 / min(o.clicks) if o.clicks else 0.0 for o in group] for group in (control, treated)]
        out.append({"arm": arm, **welch_test(rr[0], rr[1], metric="mrr", alpha=alpha).to_json()})
        units = [_per_unit(exp, group, k) for group in (control, treated)]
        if min(len(u[0]) for u in units) >= 2:
            ratio = delta_ratio(*units[0], *units[1], metric=f"ctr@{k} per {exp.unit}", alpha=alpha)
            out.append({"arm": arm, **ratio.to_json()})
    return out


def cuped_comparisons(
    ws: Workspace,
    exp: Experiment,
    started_at: float | None,
    by_arm: dict[str, list[SearchOutcome]],
    k: int,
    dwell_s: float,
    alpha: float,
) -> list[dict[str, Any]]:
    """Each arm against the control on the unit-level ctr@k (each unit's share of searches with a
    click on the top k, averaged over units), CUPED-adjusted by the same unit's ctr@k on the arms'
    collections in the `cuped_days` before the start. A unit without pre-period searches gets the
    mean covariate (the pre-period cannot depend on the arm, so this keeps the estimate unbiased)."""
    if exp.cuped_days is None or started_at is None:
        return []
    start = started_at - float(exp.cuped_days) * 86400
    collections = sorted({arm.collection for arm in exp.arms.values()})
    before = [
        o
        for name in collections
        for o in outcomes(ws.events, collection=name, start=start, end=started_at, dwell_s=dwell_s)
    ]
    pre = _unit_rates(exp, before, k)
    if not pre:
        return []
    fill = float(sum(pre.values()) / len(pre))
    units = {arm: _unit_rates(exp, group, k) for arm, group in by_arm.items()}
    out: list[dict[str, Any]] = []
    control = units[exp.control]
    for arm, treated in units.items():
        if arm == exp.control or len(control) < 2 or len(treated) < 2:
            continue
        y_a, y_b = list(control.values()), list(treated.values())
        x_a, x_b = ([pre.get(u, fill) for u in group] for group in (control, treated))
        result = cuped(y_a, x_a, y_b, x_b, metric=f"ctr@{k} per {exp.unit}", alpha=alpha)
        covered = sum(u in pre for u in (*control, *treated)) / (len(control) + len(treated))
        out.append(
            {
                "arm": arm,
                **result.comparison.to_json(),
                "theta": result.theta,
                "variance_reduction": result.variance_reduction,
                "pre_period_coverage": covered,
            }
        )
    return out


def guardrail_verdict(
    exp: Experiment, by_arm: dict[str, list[SearchOutcome]], per_arm: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Whether a treatment broke a guardrail against the control (once each holds
    `min_searches`): its p95 latency over `latency_p95_ratio` times the control's, or its
    zero-result rate more than `zero_result_increase` above."""
    rails = exp.guardrails
    limits: dict[str, Guardrail] = {}
    if rails.latency_p95_ratio is not None:
        limits["latency_p95_ms"] = Guardrail(float(rails.latency_p95_ratio) - 1, relative=True)
    if rails.zero_result_increase is not None:
        limits["zero_result_rate"] = Guardrail(float(rails.zero_result_increase), relative=False)
    reasons: list[str] = []
    if len(by_arm[exp.control]) >= rails.min_searches and limits:
        base = per_arm[f"arm:{exp.control}"]
        for arm in exp.arms:
            if arm == exp.control or len(by_arm[arm]) < rails.min_searches:
                continue
            mine = per_arm[f"arm:{arm}"]
            a, b = (
                {"latency_p95_ms": m["latency_p95_ms"], "zero_result_rate": m["zero_result"]}
                for m in (base, mine)
            )
            verdict = check_guardrails({n: a[n] for n in limits}, {n: b[n] for n in limits}, limits)
            reasons += [f"arm {arm}: {r}" for r in verdict.reasons]
    return {"stop": bool(reasons), "reasons": reasons, "min_searches": rails.min_searches}


def interleaving_result(exp: Experiment, merged: list[SearchOutcome], alpha: float) -> dict[str, Any] | None:
    """The team-draft preference of the logged interleaved searches: each search's clicks credited
    to the arm that placed the clicked result; the sign test over searches with a preference."""
    a, b = list(exp.arms)
    found = []
    for o in merged:
        teams = tuple(str(r[2]) for r in o.results if len(r) > 2)
        if not teams or len(teams) != len(o.results):
            continue
        lists = Interleaved(tuple(str(r[0]) for r in o.results), teams)
        found.append(credit(lists, [r for r in o.clicks if 1 <= r <= len(teams)]))
    if not found:
        return None
    return {"arm_a": a, "arm_b": b, **preference_test(found, alpha=alpha).to_json()}


def enforce_guardrails(ws: Workspace) -> list[str]:
    """Stop every running A/B test whose guardrails say so (the server's schedule calls this); the
    names stopped."""
    stopped = []
    for state in ws.experiments.all():
        exp: Experiment = state["experiment"]
        if state["status"] != "running" or exp.kind != "ab":
            continue
        verdict = experiment_report(ws, exp.name, cuped=False)["guardrails"]
        if verdict["stop"]:
            ws.experiments.stop(exp.name, who="guardrail", reason="; ".join(verdict["reasons"]))
            stopped.append(exp.name)
    return stopped


def _per_unit(exp: Experiment, found: list[SearchOutcome], k: int) -> tuple[list[float], list[float]]:
    """Per randomized unit: (searches with a click on the top k, searches)."""
    clicks, searches = _per_unit_counts(exp, found, k)
    return [clicks[u] for u in searches], list(searches.values())


def _per_unit_counts(
    exp: Experiment, found: list[SearchOutcome], k: int
) -> tuple[dict[str, float], dict[str, float]]:
    clicks: dict[str, float] = {}
    searches: dict[str, float] = {}
    for o in found:
        unit = o.user_id if exp.unit == "user" else o.session_id
        if unit is None:
            continue
        clicks[unit] = clicks.get(unit, 0.0) + float(o.clicked_top(k))
        searches[unit] = searches.get(unit, 0.0) + 1.0
    return clicks, searches


def _unit_rates(exp: Experiment, found: list[SearchOutcome], k: int) -> dict[str, float]:
    """Per randomized unit: the share of its searches with a click on the top k."""
    clicks, searches = _per_unit_counts(exp, found, k)
    return {u: clicks[u] / searches[u] for u in searches}


def online_overview(
    ws: Workspace, may_see: Callable[[str], bool], *, hours: int = 24, now: float | None = None
) -> dict[str, Any]:
    """For the dashboard: hourly online metrics of the last `hours` per collection, every
    experiment on visible collections with its report, each watched collection's drift checks, and
    each shadow's comparisons per segment."""
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
    shadow = {}
    for s in ws.shadows.all():
        if may_see(s.collection) and may_see(s.candidate.collection):
            summary = ws.shadows.summary(s.name, start=start)
            shadow[s.name] = {
                "config": s.model_dump(mode="json"),
                "summary": summary,
                "review": summary["low_overlap"],
            }
    return {"series": series, "experiments": experiments, "drift": drift, "shadow": shadow}
