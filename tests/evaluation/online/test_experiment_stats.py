"""The experiment statistics against direct scipy/statsmodels computations and seeded simulations."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportions_ztest

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.online.experiment_stats import (
    Guardrail,
    bootstrap_diff,
    check_guardrails,
    cuped,
    delta_ratio,
    fixed_horizon,
    msprt,
    msprt_p_values,
    ratio_variance,
    sample_size_means,
    sample_size_proportions,
    two_proportion_ztest,
    welch_test,
)


def test_ztest_matches_the_pooled_formula_and_statsmodels() -> None:
    r = two_proportion_ztest(120, 1000, 150, 1000, metric="ctr")
    pooled = 270 / 2000
    z = (0.15 - 0.12) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert r.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert r.p_value == pytest.approx(proportions_ztest([150, 120], [1000, 1000])[1], rel=1e-12)
    assert (r.n_a, r.n_b, r.mean_a, r.mean_b) == (1000, 1000, 0.12, 0.15)
    assert r.diff == pytest.approx(0.03) and r.relative_diff == pytest.approx(0.25)
    assert r.ci_low < 0.03 < r.ci_high and r.significant is (r.p_value < 0.05)
    # the Newcombe interval is close to Wald's at this size
    se = math.sqrt(0.12 * 0.88 / 1000 + 0.15 * 0.85 / 1000)
    assert r.ci_low == pytest.approx(0.03 - 1.96 * se, abs=2e-3)
    assert json.loads(json.dumps(r.to_json()))["method"] == "z-test"


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 80), rng.normal(0.4, 2.5, 50)
    r = welch_test(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert r.diff == pytest.approx(b.mean() - a.mean())


def test_bootstrap_is_seeded_and_agrees_with_welch() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.exponential(1.0, 400), rng.exponential(1.3, 400)
    r1, r2 = bootstrap_diff(a, b, seed=3), bootstrap_diff(a, b, seed=3)
    assert r1 == r2
    w = welch_test(a, b)
    assert r1.ci_low == pytest.approx(w.ci_low, abs=0.05) and r1.ci_high == pytest.approx(w.ci_high, abs=0.05)
    assert r1.significant and w.significant


def _users(rng: np.random.Generator, n: int, ctr: float) -> tuple[np.ndarray, np.ndarray]:
    searches = rng.poisson(3.0, n) + 1
    user_ctr = np.clip(rng.normal(ctr, 0.25, n), 0, 1)  # users differ: clicks of one user correlate
    return rng.binomial(searches, user_ctr).astype(float), searches.astype(float)


def test_delta_method_variance_matches_a_large_simulation() -> None:
    rng = np.random.default_rng(4)
    ratios, predicted = [], []
    for _ in range(2000):
        num, den = _users(rng, 300, 0.3)
        ratios.append(num.sum() / den.sum())
        predicted.append(ratio_variance(num, den))
    assert np.mean(predicted) == pytest.approx(np.var(ratios), rel=0.1)
    # the naive variance, searches treated as independent, is too small: users cluster
    num, den = _users(rng, 300, 0.3)
    p = num.sum() / den.sum()
    assert p * (1 - p) / den.sum() < 0.8 * np.var(ratios)


def test_delta_ratio_detects_a_gap_and_validates() -> None:
    rng = np.random.default_rng(5)
    na, da = _users(rng, 3000, 0.30)
    nb, db = _users(rng, 3000, 0.33)
    r = delta_ratio(na, da, nb, db, metric="ctr")
    assert r.method == "delta" and r.significant and r.ci_low < 0.03 < r.ci_high
    with pytest.raises(InvalidParameter, match="length"):
        delta_ratio(na, da[:-1], nb, db)


def test_cuped_reduces_variance_and_stays_unbiased() -> None:
    rng = np.random.default_rng(6)
    raw, adjusted, reductions = [], [], []
    for _ in range(200):
        x = rng.normal(10, 2, 800)  # pre-period value of each user
        y = 0.8 * x + rng.normal(0, 1, 800)
        y[400:] += 0.1  # the treatment effect, arm b
        res = cuped(y[:400], x[:400], y[400:], x[400:])
        raw.append(welch_test(y[:400], y[400:]).diff)
        adjusted.append(res.comparison.diff)
        reductions.append(res.variance_reduction)
    assert abs(np.mean(adjusted) - 0.1) < 3 * np.std(adjusted) / np.sqrt(200)  # unbiased, within noise
    assert np.var(adjusted) < 0.4 * np.var(raw)
    rho2 = 0.8**2 * 4 / (0.8**2 * 4 + 1)
    assert np.mean(reductions) == pytest.approx(rho2, abs=0.03)
    assert res.comparison.method == "cuped" and "theta" in res.to_json()


def test_cuped_without_correlation_changes_little() -> None:
    rng = np.random.default_rng(7)
    y, x = rng.normal(0, 1, 1000), rng.normal(0, 1, 1000)
    res = cuped(y[:500], x[:500], y[500:], x[500:])
    assert abs(res.variance_reduction) < 0.02


def test_sample_size_textbook_example() -> None:
    # 10% -> 12%, alpha 0.05 two-sided, power 0.8: Fleiss' pooled formula gives 3,841 per arm;
    # statsmodels' arcsine effect size 3,834.6
    n = sample_size_proportions(0.10, 0.02)
    assert n == 3835
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    fleiss = (z_a * math.sqrt(2 * 0.11 * 0.89) + z_b * math.sqrt(0.09 + 0.12 * 0.88)) ** 2 / 0.02**2
    assert n == pytest.approx(fleiss, rel=0.01)
    assert sample_size_proportions(0.10, 0.2, relative=True) == n
    # means: d = 0.2 needs 2 (1.96 + 0.84)^2 / 0.04 = 393 per arm
    assert sample_size_means(1.0, 0.2) == 393
    assert sample_size_means(2.0, 0.1, baseline=4.0) == 393
    assert sample_size_means(1.0, 0.2, power=0.95) > 393
    with pytest.raises(InvalidParameter):
        sample_size_proportions(0.95, 0.1)


def _null_experiment(rng: np.random.Generator, batches: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(0, 1, batches * size), rng.normal(0, 1, batches * size)


def test_msprt_keeps_false_positives_under_peeking_and_naive_t_does_not() -> None:
    rng = np.random.default_rng(8)
    batches, size, alpha = 20, 50, 0.05
    looks = [(size * j, size * j) for j in range(1, batches + 1)]
    msprt_hits = naive_hits = 0
    for _ in range(300):
        a, b = _null_experiment(rng, batches, size)
        msprt_hits += min(msprt_p_values(a, b, tau2=0.01, looks=looks)) < alpha
        naive_hits += any(stats.ttest_ind(b[:n], a[:n], equal_var=False).pvalue < alpha for n, _ in looks)
    assert msprt_hits / 300 <= alpha + 0.02
    assert naive_hits / 300 > 2 * alpha  # peeking at a fixed-horizon test inflates its error


def test_msprt_detects_a_real_effect_and_its_interval_covers_it() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(0, 1, 2000), rng.normal(0.2, 1, 2000)
    r = msprt(a, b, tau2=0.04)
    assert r.significant and r.method == "msprt" and r.ci_low < 0.2 < r.ci_high
    p = msprt_p_values(a, b, tau2=0.04)
    assert all(x >= y for x, y in itertools.pairwise(p))  # always-valid p only falls
    # proportions
    ca, cb = (rng.random(3000) < 0.10).astype(float), (rng.random(3000) < 0.14).astype(float)
    assert msprt(ca, cb, tau2=0.001, proportion=True).significant
    with pytest.raises(InvalidParameter, match="tau2"):
        msprt(a, b, tau2=0)


def test_fixed_horizon_waits_for_the_plan() -> None:
    rng = np.random.default_rng(10)
    a, b = rng.normal(0, 1, 500), rng.normal(0.3, 1, 500)
    assert fixed_horizon(a[:100], b[:100], planned_n=393) is None
    r = fixed_horizon(a, b, planned_n=393)
    assert r is not None and r.n_a == 393 and r == welch_test(a[:393], b[:393])
    bits = (rng.random(500) < 0.5).astype(float)
    z = fixed_horizon(bits, bits, planned_n=400, proportion=True)
    assert z is not None and z.method == "z-test" and z.p_value == 1.0


def test_guardrails_stop_with_a_reason() -> None:
    a = {"latency_p95_ms": 40.0, "zero_result_rate": 0.020}
    ok = check_guardrails(a, {"latency_p95_ms": 42.0, "zero_result_rate": 0.025})
    assert not ok.stop and ok.reasons == ()
    bad = check_guardrails(a, {"latency_p95_ms": 50.0, "zero_result_rate": 0.035})
    assert bad.stop and len(bad.reasons) == 2 and "latency_p95_ms" in bad.reasons[0]
    ndcg = check_guardrails({"ndcg": 0.6}, {"ndcg": 0.5}, {"ndcg": Guardrail(0.05, False, False)})
    assert ndcg.stop and ndcg.to_json()["stop"]
    with pytest.raises(InvalidParameter, match="missing"):
        check_guardrails(a, {"latency_p95_ms": 1.0})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: welch_test([], [1.0, 2.0]), "at least"),
        (lambda: welch_test([1.0, float("nan")], [1.0, 2.0]), "NaN"),
        (lambda: welch_test([1.0, 2.0], [1.0, 2.0], alpha=1.0), "alpha"),
        (lambda: bootstrap_diff([1.0, 2.0], [1.0, 2.0], alpha=0), "alpha"),
        (lambda: two_proportion_ztest(5, 0, 1, 10), "arm a"),
        (lambda: two_proportion_ztest(11, 10, 1, 10), "arm a"),
        (lambda: cuped([1.0, 2.0], [1.0], [1.0, 2.0], [1.0, 2.0]), "covariate"),
        (lambda: ratio_variance([1.0, 2.0], [0.0, 0.0]), "0"),
        (lambda: msprt([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], tau2=1.0, looks=[(5, 5)]), "looks"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        call()  # type: ignore[operator]


def test_identical_arms_without_spread() -> None:
    r = welch_test([1.0, 1.0], [1.0, 1.0])
    assert r.p_value == 1.0 and not r.significant and r.diff == 0
    assert two_proportion_ztest(0, 10, 0, 10).p_value == 1.0
    assert bootstrap_diff([2.0, 2.0], [2.0, 2.0]).p_value == 1.0
