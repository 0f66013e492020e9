"""The statistics of one metric of an A/B experiment: control arm "a" against treatment arm "b".

Every comparison is `b - a` and comes back as an `ArmComparison`. The arms are independent samples
of the unit of randomization (a user or a session): one value per unit. When the metric is a ratio
of two per-unit sums (clicks per search, with users randomized) use `delta_ratio`, not a t-test on
the searches: searches of one user are not independent.

statsmodels and scipy do the work (z-test, Welch, bootstrap, power); the mixture SPRT of
`msprt` is a closed form written here. Looking at a fixed-horizon test's p-value after every batch
inflates its false positives; `msprt`'s always-valid p-value does not, and `fixed_horizon` refuses
to answer before the planned sample size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from vectorforge.errors import InvalidParameter

__all__ = [
    "ArmComparison",
    "CupedResult",
    "Guardrail",
    "GuardrailVerdict",
    "bootstrap_diff",
    "check_guardrails",
    "cuped",
    "delta_ratio",
    "fixed_horizon",
    "msprt",
    "msprt_p_values",
    "ratio_variance",
    "sample_size_means",
    "sample_size_proportions",
    "two_proportion_ztest",
    "welch_test",
]


@dataclass(frozen=True)
class ArmComparison:
    """Arm b against arm a on one metric; `diff` = mean_b - mean_a, its interval and two-sided p."""

    metric: str
    method: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    relative_diff: float | None  # diff / mean_a; None when mean_a is 0
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool  # p_value < alpha

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _comparison(
    metric: str, method: str, n_a: int, n_b: int, mean_a: float, mean_b: float,
    ci: tuple[float, float], p: float, alpha: float,
) -> ArmComparison:  # fmt: skip
    diff = mean_b - mean_a
    p = 1.0 if math.isnan(p) else min(max(float(p), 0.0), 1.0)  # nan: no spread in either arm
    return ArmComparison(
        metric, method, n_a, n_b, float(mean_a), float(mean_b), float(diff),
        None if mean_a == 0 else float(diff / mean_a), float(ci[0]), float(ci[1]), p, p < alpha,
    )  # fmt: skip


def _alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidParameter(f"alpha must be between 0 and 1 (exclusive), got {alpha}")


def _sample(values: Any, name: str, least: int = 1) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidParameter(
            f"arm {name} must be a flat sequence of per-unit values, got shape {arr.shape}"
        )
    if len(arr) < least:
        raise InvalidParameter(f"arm {name} needs at least {least} values, got {len(arr)}")
    if not np.isfinite(arr).all():
        raise InvalidParameter(f"arm {name} holds NaN or infinite values")
    return arr


def _two(a: Any, b: Any, alpha: float, least: int = 1) -> tuple[np.ndarray, np.ndarray]:
    _alpha(alpha)
    return _sample(a, "a", least), _sample(b, "b", least)


def _normal_ci(diff: float, se: float, alpha: float) -> tuple[float, float]:
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    return diff - half, diff + half


def _normal_p(diff: float, se: float) -> float:
    if se == 0:
        return 1.0 if diff == 0 else 0.0
    return float(2 * stats.norm.sf(abs(diff) / se))


# -- fixed-sample tests ------------------------------------------------------------------------


def two_proportion_ztest(
    successes_a: int, n_a: int, successes_b: int, n_b: int, *, metric: str = "rate", alpha: float = 0.05
) -> ArmComparison:
    """The pooled two-proportion z-test (statsmodels `proportions_ztest`) of success counts, with the
    Newcombe (Wilson score) interval of p_b - p_a. Assumes independent units, one trial each."""
    _alpha(alpha)
    for name, k, n in (("a", successes_a, n_a), ("b", successes_b, n_b)):
        if n < 1 or not 0 <= k <= n:
            raise InvalidParameter(f"arm {name}: need 0 <= successes <= n and n >= 1, got {k} of {n}")
    pa, pb = successes_a / n_a, successes_b / n_b
    if successes_a + successes_b in (0, n_a + n_b):
        p = 1.0  # every unit alike: the pooled variance is 0 and there is nothing to test
    else:
        _, p = proportions_ztest([successes_b, successes_a], [n_b, n_a])
    low, high = confint_proportions_2indep(successes_b, n_b, successes_a, n_a, method="newcomb", alpha=alpha)
    return _comparison(metric, "z-test", n_a, n_b, pa, pb, (low, high), float(p), alpha)


def welch_test(a: Any, b: Any, *, metric: str = "mean", alpha: float = 0.05) -> ArmComparison:
    """Welch's unequal-variance t-test of the means of two independent samples (statsmodels),
    with its Welch-Satterthwaite interval."""
    x, y = _two(a, b, alpha, least=2)
    cm = CompareMeans(DescrStatsW(y), DescrStatsW(x))
    if x.var() == 0 and y.var() == 0:
        p, ci = (1.0 if x[0] == y[0] else 0.0), (y[0] - x[0], y[0] - x[0])
    else:
        _, p, _ = cm.ttest_ind(usevar="unequal")
        ci = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    return _comparison(metric, "welch", len(x), len(y), x.mean(), y.mean(), ci, float(p), alpha)


def bootstrap_diff(
    a: Any, b: Any, *, metric: str = "mean", alpha: float = 0.05, n_resamples: int = 2000, seed: int = 0
) -> ArmComparison:
    """The percentile bootstrap (scipy, each arm resampled on its own, seeded) of mean_b - mean_a;
    p is twice the smaller tail of the bootstrap distribution beyond 0 (the interval inverted)."""
    x, y = _two(a, b, alpha, least=2)
    if x.var() == 0 and y.var() == 0:
        d = float(y[0] - x[0])
        return _comparison(
            metric, "bootstrap", len(x), len(y), x.mean(), y.mean(), (d, d), float(d == 0), alpha
        )
    res = stats.bootstrap(
        (x, y),
        _mean_diff,
        n_resamples=n_resamples,
        confidence_level=1 - alpha,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    dist = res.bootstrap_distribution
    p = min(1.0, 2 * min(float(np.mean(dist <= 0)), float(np.mean(dist >= 0))))
    ci = (res.confidence_interval.low, res.confidence_interval.high)
    return _comparison(metric, "bootstrap", len(x), len(y), x.mean(), y.mean(), ci, p, alpha)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y, axis=axis) - np.mean(x, axis=axis)  # type: ignore[no-any-return]


# -- ratio metrics -----------------------------------------------------------------------------


def ratio_variance(numerators: Any, denominators: Any) -> float:
    """The delta-method variance of mean(num) / mean(den) over n units (first-order Taylor):
    (var_n / mu_d^2 - 2 mu_n cov / mu_d^3 + mu_n^2 var_d / mu_d^4) / n."""
    num, den = _sample(numerators, "numerators", 2), _sample(denominators, "denominators", 2)
    if len(num) != len(den):
        raise InvalidParameter(f"numerators and denominators differ in length: {len(num)} and {len(den)}")
    mu_n, mu_d = num.mean(), den.mean()
    if mu_d == 0:
        raise InvalidParameter("the denominators sum to 0: the ratio is undefined")
    cov = np.cov(num, den, ddof=1)
    v = cov[0, 0] / mu_d**2 - 2 * mu_n * cov[0, 1] / mu_d**3 + mu_n**2 * cov[1, 1] / mu_d**4
    return float(max(v, 0.0) / len(num))


def delta_ratio(
    num_a: Any, den_a: Any, num_b: Any, den_b: Any, *, metric: str = "ratio", alpha: float = 0.05
) -> ArmComparison:
    """A ratio metric (sum of numerators / sum of denominators, e.g. clicks per search) when the unit
    of randomization is the one holding both (the user): per-unit numerators and denominators per
    arm, the delta-method variance of each ratio, a z-test and normal interval of the difference."""
    _alpha(alpha)
    va, vb = ratio_variance(num_a, den_a), ratio_variance(num_b, den_b)
    ra = float(np.sum(num_a) / np.sum(den_a))
    rb = float(np.sum(num_b) / np.sum(den_b))
    se = math.sqrt(va + vb)
    ci = _normal_ci(rb - ra, se, alpha)
    return _comparison(metric, "delta", len(num_a), len(num_b), ra, rb, ci, _normal_p(rb - ra, se), alpha)


# -- CUPED -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CupedResult:
    """Welch's test on the CUPED-adjusted metric, theta, and the share of variance it removed."""

    comparison: ArmComparison
    theta: float
    variance_reduction: float  # 1 - var(adjusted) / var(raw), pooled over both arms

    def to_json(self) -> dict[str, Any]:
        return {"comparison": self.comparison.to_json(), "theta": self.theta,
                "variance_reduction": self.variance_reduction}  # fmt: skip


def cuped(
    y_a: Any, x_a: Any, y_b: Any, x_b: Any, *, metric: str = "mean", alpha: float = 0.05
) -> CupedResult:
    """CUPED (Deng et al. 2013): y - theta (x - mean x) with x a pre-period covariate of the same unit
    (unaffected by the treatment, or the estimate is biased), theta = cov(y, x) / var(x) pooled over
    both arms, then Welch. The adjustment keeps each arm's mean up to noise and removes the share
    corr(y, x)^2 of the variance."""
    ya, yb = _two(y_a, y_b, alpha, least=2)
    xa, xb = _sample(x_a, "a covariate", 2), _sample(x_b, "b covariate", 2)
    if len(xa) != len(ya) or len(xb) != len(yb):
        raise InvalidParameter(
            f"each unit needs its covariate: lengths a {len(ya)}/{len(xa)}, b {len(yb)}/{len(xb)}"
        )
    y, x = np.concatenate([ya, yb]), np.concatenate([xa, xb])
    var_x = float(np.var(x, ddof=1))
    theta = 0.0 if var_x == 0 else float(np.cov(y, x, ddof=1)[0, 1] / var_x)
    mx = x.mean()
    adj_a, adj_b = ya - theta * (xa - mx), yb - theta * (xb - mx)
    var_y = float(np.var(y, ddof=1))
    var_adj = float(np.var(np.concatenate([adj_a, adj_b]), ddof=1))
    reduction = 0.0 if var_y == 0 else 1 - var_adj / var_y
    comp = welch_test(adj_a, adj_b, metric=metric, alpha=alpha)
    return CupedResult(_renamed(comp, "cuped"), theta, reduction)


def _renamed(c: ArmComparison, method: str) -> ArmComparison:
    d = asdict(c)
    d["method"] = method
    return ArmComparison(**d)


# -- sample sizes ------------------------------------------------------------------------------


def sample_size_proportions(
    baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8,
    relative: bool = False, ratio: float = 1.0,
) -> int:  # fmt: skip
    """Units needed in arm a to detect p_b = baseline + mde (or baseline * (1 + mde) if `relative`),
    two-sided, by the normal approximation on Cohen's arcsine effect size (statsmodels); arm b gets
    `ratio` times as many."""
    _alpha(alpha)
    target = baseline * (1 + mde) if relative else baseline + mde
    if not 0 < baseline < 1 or not 0 < target < 1 or mde == 0:
        raise InvalidParameter(
            f"need 0 < baseline, baseline + effect < 1 and an effect, got {baseline}, {target}"
        )
    return _solve(float(proportion_effectsize(target, baseline)), alpha, power, ratio)


def sample_size_means(
    sd: float, mde: float, *, alpha: float = 0.05, power: float = 0.8,
    baseline: float | None = None, ratio: float = 1.0,
) -> int:  # fmt: skip
    """Units needed in arm a to detect a difference of means `mde` (relative to `baseline` when it is
    given) of a metric with standard deviation `sd`, two-sided normal approximation (statsmodels)."""
    _alpha(alpha)
    effect = mde * baseline if baseline is not None else mde
    if sd <= 0 or effect == 0:
        raise InvalidParameter(f"need sd > 0 and a nonzero effect, got sd {sd}, effect {effect}")
    return _solve(abs(effect) / sd, alpha, power, ratio)


def _solve(effect: float, alpha: float, power: float, ratio: float) -> int:
    if not 0 < power < 1 or ratio <= 0:
        raise InvalidParameter(f"power must be in (0, 1) and ratio > 0, got {power}, {ratio}")
    n = NormalIndPower().solve_power(abs(effect), nobs1=None, alpha=alpha, power=power, ratio=ratio)
    return math.ceil(float(n))


# -- sequential monitoring ---------------------------------------------------------------------


def _msprt_stat(diff: float, s2: float, tau2: float) -> float:
    """log of the normal-mixture likelihood ratio of an estimate diff ~ N(theta, s2), theta ~ N(0, tau2)
    under the alternative, against theta = 0."""
    return 0.5 * math.log(s2 / (s2 + tau2)) + tau2 * diff**2 / (2 * s2 * (s2 + tau2))


def _diff_var(x: np.ndarray, y: np.ndarray, proportion: bool) -> tuple[float, float]:
    if proportion:
        va, vb = x.mean() * (1 - x.mean()), y.mean() * (1 - y.mean())
    else:
        va, vb = float(np.var(x, ddof=1)), float(np.var(y, ddof=1))
    return float(y.mean() - x.mean()), va / len(x) + vb / len(y)


def _looks(looks: Sequence[tuple[int, int]] | None, n_a: int, n_b: int) -> list[tuple[int, int]]:
    if looks is None:
        return [(max(2, round(n_a * j / 20)), max(2, round(n_b * j / 20))) for j in range(1, 21)]
    out = [(int(la), int(lb)) for la, lb in looks]
    if not out or any(not 2 <= la <= n_a or not 2 <= lb <= n_b for la, lb in out):
        raise InvalidParameter(f"looks must be (n_a, n_b) counts with 2 <= n <= the arm's size, got {looks}")
    return out


def msprt_p_values(
    a: Any, b: Any, *, tau2: float, looks: Sequence[tuple[int, int]] | None = None, proportion: bool = False
) -> list[float]:
    """The always-valid p-value after each look: p_t = min(p_{t-1}, 1 / Lambda_t), where Lambda_t is
    the mixture SPRT statistic of the first (n_a, n_b) observations of each arm (see `msprt`)."""
    x, y = _two(a, b, 0.05, least=2)
    if tau2 <= 0:
        raise InvalidParameter(f"the mixture variance tau2 must be > 0, got {tau2}")
    p, out = 1.0, []
    for la, lb in _looks(looks, len(x), len(y)):
        diff, s2 = _diff_var(x[:la], y[:lb], proportion)
        if s2 > 0:
            p = min(p, math.exp(min(0.0, -_msprt_stat(diff, s2, tau2))))
        out.append(p)
    return out


def msprt(
    a: Any, b: Any, *, tau2: float, alpha: float = 0.05, looks: Sequence[tuple[int, int]] | None = None,
    proportion: bool = False, metric: str = "mean",
) -> ArmComparison:  # fmt: skip
    """Sequential monitoring by the mixture sequential probability ratio test (mSPRT; Johari, Pekelis
    and Walsh 2017, "Always valid inference"), normal mixture: the difference of means (or of
    proportions, `proportion=True`) is estimated at each look by d ~ N(theta, s2), s2 = var_a/n_a +
    var_b/n_b (plugged in), and

        Lambda = sqrt(s2 / (s2 + tau2)) * exp(tau2 d^2 / (2 s2 (s2 + tau2)))

    is the likelihood ratio of the mixture theta ~ N(0, tau2) against theta = 0. Its running minimum
    of 1 / Lambda is a p-value valid at any stopping time: look after every batch and stop when
    p < alpha, and the false positive rate stays <= alpha (asymptotically: the variance is
    estimated). `tau2` is the prior spread of effects (choose it near the squared effect you expect;
    a poor choice costs power, never validity). `a`, `b` are the arms' observations in arrival
    order; `looks` the (n_a, n_b) seen at each look (default: 20 even looks). The interval is the
    confidence sequence at the last look, intersected over looks, so it is valid at any time too."""
    _alpha(alpha)
    x, y = _two(a, b, alpha, least=2)
    plan = _looks(looks, len(x), len(y))
    p_values = msprt_p_values(x, y, tau2=tau2, looks=plan, proportion=proportion)
    low, high = -math.inf, math.inf
    for la, lb in plan:
        diff, s2 = _diff_var(x[:la], y[:lb], proportion)
        if s2 > 0:
            # {theta0 : Lambda(theta0) < 1 / alpha}, solved for |d - theta0|
            half = math.sqrt(
                2 * s2 * (s2 + tau2) / tau2 * (math.log(1 / alpha) + 0.5 * math.log((s2 + tau2) / s2))
            )
            low, high = max(low, diff - half), min(high, diff + half)
    la, lb = plan[-1]
    xs, ys = x[:la], y[:lb]
    if low > high:  # the intersection can empty out by chance; fall back to the last look's
        low = high = float(ys.mean() - xs.mean())
    return _comparison(metric, "msprt", la, lb, xs.mean(), ys.mean(), (low, high), p_values[-1], alpha)


def fixed_horizon(
    a: Any, b: Any, *, planned_n: int, metric: str = "mean", alpha: float = 0.05, proportion: bool = False
) -> ArmComparison | None:
    """The fixed-horizon alternative: None until both arms hold `planned_n` units (from
    `sample_size_*`), then one test (Welch, or the z-test of 0/1 values) on the first `planned_n`
    of each. Testing only then keeps the false positive rate at alpha."""
    if planned_n < 2:
        raise InvalidParameter(f"planned_n must be >= 2, got {planned_n}")
    x, y = _two(a, b, alpha)
    if len(x) < planned_n or len(y) < planned_n:
        return None
    x, y = x[:planned_n], y[:planned_n]
    if proportion:
        if not (np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all()):
            raise InvalidParameter("proportion=True needs 0/1 values in both arms")
        return two_proportion_ztest(
            int(x.sum()), planned_n, int(y.sum()), planned_n, metric=metric, alpha=alpha
        )
    return welch_test(x, y, metric=metric, alpha=alpha)


# -- guardrails --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Guardrail:
    """Arm b may not be worse than arm a by more than `max_worse` (a fraction of a's value when
    `relative`, else in the metric's unit); worse means higher unless `higher_is_worse` is False."""

    max_worse: float
    relative: bool = True
    higher_is_worse: bool = True


@dataclass(frozen=True)
class GuardrailVerdict:
    stop: bool
    reasons: tuple[str, ...]  # one sentence per breached guardrail

    def to_json(self) -> dict[str, Any]:
        return {"stop": self.stop, "reasons": list(self.reasons)}


DEFAULT_GUARDRAILS: Mapping[str, Guardrail] = {
    "latency_p95_ms": Guardrail(0.10),  # 10% slower at p95
    "zero_result_rate": Guardrail(0.01, relative=False),  # one point more empty answers
}


def check_guardrails(
    a: Mapping[str, float], b: Mapping[str, float], guardrails: Mapping[str, Guardrail] = DEFAULT_GUARDRAILS
) -> GuardrailVerdict:
    """Whether to stop the experiment: each guardrail metric's value in arm b against arm a (e.g.
    {"latency_p95_ms": 41.0, "zero_result_rate": 0.02}); stop if any is worse beyond its limit."""
    reasons = []
    for name, rail in guardrails.items():
        if name not in a or name not in b:
            raise InvalidParameter(
                f"guardrail metric {name!r} is missing from arm {'a' if name not in a else 'b'}"
            )
        va, vb = float(a[name]), float(b[name])
        if not (math.isfinite(va) and math.isfinite(vb)) or rail.max_worse < 0:
            raise InvalidParameter(f"guardrail {name!r}: values must be finite and max_worse >= 0")
        worse = (vb - va) if rail.higher_is_worse else (va - vb)
        limit = rail.max_worse * abs(va) if rail.relative else rail.max_worse
        if worse > limit:
            how = f"{rail.max_worse:.0%}" if rail.relative else f"{rail.max_worse:g}"
            reasons.append(f"{name}: b {vb:g} against a {va:g} is worse by more than {how}")
    return GuardrailVerdict(bool(reasons), tuple(reasons))
