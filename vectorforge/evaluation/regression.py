"""Regression detection: a candidate run against a baseline run, per segment and metric.

A change is a regression when both hold:
- the paired test on the queries both runs scored rejects "no change" at `alpha`, after Holm's
  correction over every (segment, metric) pair compared;
- the mean fell by at least `min_effect` (an absolute amount of the metric: 0.02 nDCG by default).
The first rule keeps noise from alarming, the second keeps a real but negligible change from
alarming. A re-run of an unchanged system gives identical per-query scores: no change, no alarm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.stats import holm, paired_test

__all__ = ["Change", "compare_runs", "regressions"]


@dataclass(frozen=True)
class Change:
    """One segment and metric compared between a baseline and a candidate run."""

    segment: str
    metric: str
    n: int
    baseline: float
    candidate: float
    diff: float  # candidate - baseline
    p_value: float
    p_adjusted: float  # Holm, over every pair of the comparison
    effect_size: float | None  # Cohen's d of the paired differences (None: they have no spread)
    detectable: float  # the smallest change this segment can show (80% power at alpha)
    min_effect: float
    regression: bool
    improvement: bool

    @property
    def underpowered(self) -> bool:
        """Too few queries (or too noisy) to see a change of the size that matters."""
        return self.detectable > self.min_effect

    def to_json(self) -> dict[str, float | int | str | bool]:
        return {**asdict(self), "underpowered": self.underpowered}


def compare_runs(
    baseline: EvalRun,
    candidate: EvalRun,
    goldset: GoldSet,
    metrics: Sequence[str] | None = None,
    *,
    min_effect: float = 0.02,
    alpha: float = 0.05,
    test: str = "t",
) -> list[Change]:
    """Every segment of `goldset` and metric both runs have, on the queries both runs scored."""
    if not 0 < alpha < 1 or min_effect < 0:
        raise InvalidParameter(f"alpha must be in (0, 1) and min_effect >= 0; got {alpha}, {min_effect}")
    versions = (baseline.goldset, baseline.goldset_version), (candidate.goldset, candidate.goldset_version)
    if versions[0] != versions[1]:
        raise InvalidParameter(
            f"runs {baseline.run_id} and {candidate.run_id} were scored on {'@'.join(versions[0])} and "
            f"{'@'.join(versions[1])}: per-query scores pair only under the same judgments; compare "
            "runs of one gold set version (re-run the baseline system on the new version)"
        )
    common = set(baseline.per_query) & set(candidate.per_query)
    if not common:
        raise InvalidParameter(
            f"runs {baseline.run_id} and {candidate.run_id} share no query; compare runs of one gold set"
        )
    shared = [m for m in (metrics or candidate.metrics) if m in baseline.metrics and m in candidate.metrics]
    if not shared:
        raise InvalidParameter(f"runs {baseline.run_id} and {candidate.run_id} share no metric")
    rows: list[tuple[str, str, np.ndarray, np.ndarray]] = []
    for segment, qids in goldset.segment_queries().items():
        picked = [q for q in qids if q in common]
        if not picked:
            continue
        for m in shared:
            a = np.array([baseline.per_query[q][m] for q in picked])
            b = np.array([candidate.per_query[q][m] for q in picked])
            rows.append((segment, m, a, b))
    tests = [paired_test(a, b, test=test, interval=False) for _, _, a, b in rows]
    adjusted = holm([t.p_value for t in tests])
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(0.8)
    changes = []
    for (segment, m, a, b), t, p_adj in zip(rows, tests, adjusted, strict=True):
        diff = float(b.mean() - a.mean())
        sd = float(np.std(b - a, ddof=1)) if len(a) > 1 else math.inf
        detectable = z * sd / math.sqrt(len(a)) if len(a) > 1 else math.inf
        significant = bool(p_adj < alpha)
        changes.append(
            Change(
                segment,
                m,
                len(a),
                float(a.mean()),
                float(b.mean()),
                diff,
                float(t.p_value),
                float(p_adj),
                t.effect_size,
                float(detectable),
                min_effect,
                regression=significant and diff <= -min_effect,
                improvement=significant and diff >= min_effect,
            )
        )
    return changes


def regressions(changes: Sequence[Change]) -> list[Change]:
    return [c for c in changes if c.regression]
