"""Drift detection: calibration on seeded Gaussian windows, each statistic against a direct
computation with the library it rests on, PSI by hand and by an independent formula, bad input."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from scipy.spatial.distance import cosine, pdist
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import rbf_kernel
from statsmodels.stats.multitest import multipletests

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.online.drift import (
    OVERALL_RULE,
    DriftConfig,
    DriftReport,
    detect_drift,
    psi,
    signal_drift,
)

# Small windows keep the file fast; the thresholds adapt (the AUC's critical value grows).
FAST = DriftConfig(window=120, n_permutations=100, pca_components=8, seed=0)


def gaussian(rng: np.random.Generator, n: int = 100, dim: int = 16, shift: float = 0.0) -> np.ndarray:
    return rng.normal(size=(n, dim)) + shift


def pooled_pca(ref: np.ndarray, cur: np.ndarray, cfg: DriftConfig) -> tuple[np.ndarray, np.ndarray]:
    z = PCA(n_components=cfg.pca_components, svd_solver="full").fit_transform(np.vstack([ref, cur]))
    return z[: len(ref)], z[len(ref) :]


def test_same_distribution_rarely_alarms() -> None:
    # 500-row windows: the fixed AUC threshold 0.55 is meant for that size (see DriftConfig).
    rng = np.random.default_rng(1)
    counts = dict.fromkeys(("classifier_auc", "mmd", "ks", "centroid", "overall"), 0)
    for i in range(20):
        cfg = DriftConfig(window=500, n_permutations=100, pca_components=4, seed=i)
        report = detect_drift(gaussian(rng, n=500, dim=4), gaussian(rng, n=500, dim=4), cfg)
        for t in report.tests:
            counts[t.name] += t.alarm
        counts["overall"] += report.alarm
    # alpha 0.01 (0.2 alarms expected over 20 pairs), KS at 0.05 (1 expected)
    assert counts["overall"] <= 2 and counts["mmd"] <= 2 and counts["centroid"] <= 2, counts
    assert counts["ks"] <= 4, counts


def test_clear_mean_shift_alarms_every_test() -> None:
    rng = np.random.default_rng(2)
    report = detect_drift(gaussian(rng), gaussian(rng, shift=0.5), FAST)
    assert report.alarm
    assert all(t.alarm for t in report.tests), report.to_json()
    assert report.test("classifier_auc").statistic > 0.8


def test_shift_in_one_coordinate_is_found_by_the_overall_rule() -> None:
    rng = np.random.default_rng(3)
    ref, cur = gaussian(rng), gaussian(rng)
    cur[:, 0] += 1.5
    assert detect_drift(ref, cur, FAST).alarm


def test_report_names_rule_and_json() -> None:
    rng = np.random.default_rng(4)
    report = detect_drift(gaussian(rng), gaussian(rng), FAST)
    assert isinstance(report, DriftReport)
    assert [t.name for t in report.tests] == ["classifier_auc", "mmd", "ks", "centroid"]
    assert report.rule == OVERALL_RULE
    assert report.alarm == (report.test("classifier_auc").alarm or report.test("mmd").alarm)
    assert (report.n_reference, report.n_current) == (100, 100)
    doc = json.loads(json.dumps(report.to_json()))
    assert doc["tests"][1]["threshold_on"] == "p_value"
    with pytest.raises(InvalidParameter, match="no drift test named 'nope'"):
        report.test("nope")


def test_deterministic_given_the_seed() -> None:
    rng = np.random.default_rng(5)
    ref, cur = gaussian(rng), gaussian(rng, shift=0.05)
    first = detect_drift(ref, cur, FAST).to_json()
    assert detect_drift(ref, cur, FAST).to_json() == first
    other = detect_drift(ref, cur, DriftConfig(**{**FAST.to_json(), "seed": 9})).to_json()
    assert other["tests"][1]["p_value"] != first["tests"][1]["p_value"]  # another permutation draw


def test_mmd_statistic_is_the_unbiased_estimate_over_sklearns_kernel() -> None:
    rng = np.random.default_rng(6)
    ref, cur = gaussian(rng, n=60), gaussian(rng, n=80, shift=0.2)
    mmd = detect_drift(ref, cur, FAST).test("mmd")
    x, y = pooled_pca(ref, cur, FAST)
    gamma = mmd.details["gamma"]
    kxx, kyy, kxy = rbf_kernel(x, gamma=gamma), rbf_kernel(y, gamma=gamma), rbf_kernel(x, y, gamma=gamma)
    n, m = len(x), len(y)
    want = (kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean()
    assert mmd.statistic == pytest.approx(want, rel=1e-9)
    # median heuristic: gamma = 1 / (2 median^2) over the pooled pairwise distances
    pooled = np.vstack([x, y])
    median = np.median(pdist(pooled))
    assert gamma == pytest.approx(1 / (2 * median**2))


def test_mmd_of_a_window_with_itself_is_negative_and_quiet() -> None:
    rng = np.random.default_rng(7)
    x = gaussian(rng)
    report = detect_drift(x, x.copy(), FAST)
    # each row has an exact copy across: the cross term outweighs the within terms
    assert report.test("mmd").statistic < 0
    assert report.test("mmd").p_value is not None and report.test("mmd").p_value > 0.5
    assert not report.alarm


def test_ks_is_holm_corrected_per_component() -> None:
    rng = np.random.default_rng(8)
    ref, cur = gaussian(rng), gaussian(rng)
    cur[:, :3] *= 1.6  # a change of spread, which KS sees and a mean test would not
    ks = detect_drift(ref, cur, FAST).test("ks")
    x, y = pooled_pca(ref, cur, FAST)
    raw = [stats.ks_2samp(x[:, j], y[:, j], method="asymp").pvalue for j in range(x.shape[1])]
    reject, corrected, _, _ = multipletests(raw, alpha=FAST.ks_alpha, method="holm")
    assert ks.details["p_values_corrected"] == pytest.approx(list(corrected))
    assert ks.p_value == pytest.approx(min(corrected))
    assert ks.details["rejected"] == int(reject.sum())
    assert ks.alarm == bool(reject.any())
    assert min(corrected) > min(raw)  # the correction did something


def test_centroid_is_the_cosine_distance_of_the_means() -> None:
    rng = np.random.default_rng(9)
    ref, cur = gaussian(rng, shift=1.0), gaussian(rng, shift=1.0)
    cur[:, 0] += 0.5
    got = detect_drift(ref, cur, FAST).test("centroid")
    assert got.statistic == pytest.approx(cosine(ref.mean(axis=0), cur.mean(axis=0)))


def test_auc_fixed_threshold_and_permutation_threshold() -> None:
    rng = np.random.default_rng(10)
    fixed = detect_drift(gaussian(rng, n=30), gaussian(rng, n=30), FAST).test("classifier_auc")
    assert (fixed.threshold, fixed.p_value) == (0.55, None)
    cfg = DriftConfig(**{**FAST.to_json(), "auc_permutations": 10, "cv_folds": 3})
    quiet = detect_drift(gaussian(rng, n=30), gaussian(rng, n=30), cfg).test("classifier_auc")
    # on 30 rows the null's 99th percentile is above 0.55: the threshold follows it
    assert quiet.threshold == quiet.details["critical_auc"] > 0.55
    assert quiet.p_value is not None and 1 / 11 <= quiet.p_value <= 1
    loud = detect_drift(gaussian(rng, n=30), gaussian(rng, n=30, shift=1.0), cfg).test("classifier_auc")
    assert loud.alarm and loud.p_value == pytest.approx(1 / 11)


def test_psi_by_hand() -> None:
    # Reference median 0.5 splits it into halves; current has 1/4 and 3/4 there:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5) = 0.25 ln 2 + 0.25 ln 1.5 = 0.25 ln 3.
    assert psi([0, 0, 1, 1], [0, 1, 1, 1], bins=2) == pytest.approx(0.25 * math.log(3))


def test_psi_empty_bin_uses_epsilon() -> None:
    # Current has nothing in the lower half: its share is floored at epsilon, PSI finite.
    got = psi([0, 0, 1, 1], [1, 1, 1, 1], bins=2, epsilon=1e-4)
    want = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    assert got == pytest.approx(want)


def independent_psi(ref: np.ndarray, cur: np.ndarray, bins: int, epsilon: float) -> float:
    """PSI from explicit (low, high] interval counts, without searchsorted or rel_entr."""
    edges = sorted(set(np.quantile(ref, [i / bins for i in range(1, bins)]).tolist()))
    bounds = [-math.inf, *edges, math.inf]
    total = 0.0
    for low, high in itertools.pairwise(bounds):
        r = max(sum(low < v <= high for v in ref) / len(ref), epsilon)
        c = max(sum(low < v <= high for v in cur) / len(cur), epsilon)
        total += (c - r) * math.log(c / r)
    return total


samples = arrays(
    np.float64,
    st.integers(5, 60),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=60, deadline=None)
@given(ref=samples, cur=samples, bins=st.integers(1, 12))
def test_psi_matches_an_independent_formula(ref: np.ndarray, cur: np.ndarray, bins: int) -> None:
    assert psi(ref, cur, bins=bins) == pytest.approx(
        independent_psi(ref, cur, bins, 1e-4), rel=1e-9, abs=1e-12
    )


@settings(max_examples=60, deadline=None)
@given(ref=samples, cur=samples)
def test_psi_properties(ref: np.ndarray, cur: np.ndarray) -> None:
    assert psi(ref, ref) == 0.0  # identical samples
    assert psi(ref, cur) >= 0.0
    # rank based: scaling both by a power of two (exact in floating point) changes nothing
    assert psi(ref * 4, cur * 4) == psi(ref, cur)


def test_signal_drift_levels() -> None:
    rng = np.random.default_rng(11)
    ref = {"top1_score": rng.normal(0.6, 0.1, 500), "query_length": rng.poisson(12, 500).astype(float)}
    same = {"top1_score": rng.normal(0.6, 0.1, 500), "query_length": rng.poisson(12, 500).astype(float)}
    moved = {"top1_score": rng.normal(0.4, 0.1, 500), "query_length": rng.poisson(12, 500).astype(float)}
    quiet = signal_drift(ref, same)
    assert not quiet.alarm and not any(t.warning for t in quiet.tests)
    loud = signal_drift(ref, moved)
    assert loud.alarm and loud.rule == "any psi"
    assert loud.test("psi:top1_score").alarm and not loud.test("psi:query_length").alarm
    assert loud.test("psi:top1_score").p_value is None
    # 0/1 zero-result indicator: a 10% -> 25% rate is a warning-level shift
    zero_ref = (np.arange(1000) < 100).astype(float)
    zero_cur = (np.arange(1000) < 250).astype(float)
    level = signal_drift({"zero_result": zero_ref}, {"zero_result": zero_cur}).test("psi:zero_result")
    assert level.statistic == pytest.approx(
        (0.25 - 0.1) * math.log(2.5) + (0.75 - 0.9) * math.log(0.75 / 0.9)
    )
    assert level.warning and not level.alarm


@pytest.mark.parametrize(
    ("ref", "cur", "message"),
    [
        (np.zeros(50), np.zeros((50, 4)), "reference window must be 2-D"),
        (np.zeros((50, 4)), np.zeros((5, 4)), "current window has 5 rows"),
        (np.zeros((500, 4)), np.zeros((50, 4)), "reference window has 500 rows"),
        (np.zeros((50, 4)), np.full((50, 4), np.nan), "current window contains NaN"),
        (np.zeros((50, 4)), np.zeros((50, 5)), "differ in dimension: 4 and 5"),
        (np.zeros((50, 1)), np.zeros((50, 1)), "at least 2 columns"),
    ],
)
def test_bad_windows(ref: np.ndarray, cur: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        detect_drift(ref, cur, FAST)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"alpha": 0.0}, "alpha must be in"),
        ({"auc_threshold": 0.4}, "auc_threshold"),
        ({"min_rows": 2}, "min_rows"),
        ({"window": 10}, "below min_rows"),
        ({"n_permutations": 0}, "n_permutations must be >= 1"),
        ({"psi_warn": 0.3}, "psi_warn <= psi_alarm"),
    ],
)
def test_bad_config(changes: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        DriftConfig(**changes)  # type: ignore[arg-type]


def test_bad_signals() -> None:
    with pytest.raises(InvalidParameter, match="reference_values is empty"):
        psi([], [1.0])
    with pytest.raises(InvalidParameter, match="current_values contains NaN"):
        psi([1.0, 2.0], [np.nan])
    with pytest.raises(InvalidParameter, match="must be 1-D"):
        psi(np.zeros((3, 2)), [1.0])
    with pytest.raises(InvalidParameter, match="different signals"):
        signal_drift({"a": [1.0]}, {"b": [1.0]})
