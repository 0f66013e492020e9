"""Statistics against independent oracles: exact sign-flip enumeration for the randomization test,
the t formula, Holm's step-down definition, and seeded simulations for error rates and coverage."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.stats import bootstrap_ci, compare, holm, paired_test


def exact_sign_flip_p(diff: np.ndarray) -> float:
    observed = abs(diff.mean())
    flips = [abs((diff * np.array(s)).mean()) for s in itertools.product((1, -1), repeat=len(diff))]
    return float(np.mean([f >= observed - 1e-12 for f in flips]))


# multiples of 1/64: differences and sums are exact in binary floating point, so a flip's mean
# either equals the observed one or differs by 1/640 at least. With arbitrary floats a flip can
# differ by 1e-16 (diff = [0.5, 2e-16]), and whether that is "as extreme" is a tolerance convention
# (scipy's is relative, 100 eps), not what this test is about.
dyadic = st.integers(0, 64).map(lambda i: i / 64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(dyadic, dyadic), min_size=2, max_size=10))
def test_randomization_test_is_the_exact_sign_flip_test(pairs: list[tuple[float, float]]) -> None:
    a, b = (np.array(x) for x in zip(*pairs, strict=True))
    diff = b - a
    if diff.std(ddof=1) == 0:
        return  # no spread: handled by the degenerate rule, tested below
    result = paired_test(a, b, test="randomization", n_resamples=5000)  # 2**10 <= 5000: exact
    assert result.p_value == pytest.approx(exact_sign_flip_p(diff), abs=1e-9)


def test_randomization_test_by_sampling_is_close_to_exact() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.random(16), rng.random(16) + 0.15
    exact = exact_sign_flip_p(b - a)
    sampled = paired_test(a, b, test="randomization", n_resamples=20_000, seed=3).p_value
    assert abs(sampled - exact) < 0.01


def test_t_test_is_the_textbook_formula() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.random(30), rng.random(30)
    d = b - a
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    p = 2 * sps.t.sf(abs(t), len(d) - 1)
    result = paired_test(a, b)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    assert result.diff == pytest.approx(b.mean() - a.mean()) and result.ci_low < result.diff < result.ci_high


def test_degenerate_samples_give_clean_answers() -> None:
    same = paired_test([0.5, 0.2, 0.9], [0.5, 0.2, 0.9])
    assert (same.p_value, same.diff, same.effect_size, same.ci_low, same.ci_high) == (1.0, 0, 0, 0, 0)
    # every query moved by the same amount: both tests give the exact sign-flip p, 2 / 2**n
    shifted = paired_test([0.1, 0.2, 0.3], [0.2, 0.3, 0.4])
    assert shifted.p_value == pytest.approx(2 / 8) and shifted.diff == pytest.approx(0.1)
    assert shifted.effect_size is None
    exact = paired_test([0.1, 0.2, 0.3], [0.2, 0.3, 0.4], test="randomization")
    assert exact.p_value == pytest.approx(2 / 8)  # the smallest p three sign flips can give
    assert paired_test([0.1] * 12, [0.2] * 12).p_value == pytest.approx(2 / 4096)
    assert paired_test([0.3], [0.3]).p_value == 1.0
    assert paired_test([0.9], [0.1]).p_value == 1.0  # one query: no test can tell it from chance
    with pytest.raises(InvalidParameter, match="equal lengths"):
        paired_test([1, 2], [1])
    with pytest.raises(InvalidParameter, match="not one of"):
        paired_test([1, 2], [1, 2], test="wilcoxon")
    with pytest.raises(InvalidParameter, match="finite"):
        paired_test([1, float("nan")], [1, 2])


def holm_by_definition(p: list[float], alpha: float) -> set[int]:
    """Step down: reject the smallest while p_(i) <= alpha / (m - i + 1), stop at the first failure."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected.add(i)
    return rejected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20), st.sampled_from([0.01, 0.05, 0.1]))
def test_holm_rejects_what_the_step_down_definition_rejects(p: list[float], alpha: float) -> None:
    adjusted = holm(p)
    assert all(adj >= raw - 1e-15 and adj <= 1.0 for adj, raw in zip(adjusted, p, strict=True))
    ranked = sorted(range(len(p)), key=lambda i: p[i])
    assert all(adjusted[ranked[k]] <= adjusted[ranked[k + 1]] for k in range(len(p) - 1))  # monotone
    # equal p-values at the boundary are decided the same way by both (<= alpha / k)
    assert {i for i, adj in enumerate(adjusted) if adj <= alpha} == holm_by_definition(p, alpha)


def test_equal_systems_are_rejected_at_about_alpha_and_a_shift_is_found() -> None:
    rng = np.random.default_rng(7)
    null_rejections = power = 0
    trials = 400
    for _ in range(trials):
        base = rng.random(50)
        a, b = base + rng.normal(0, 0.2, 50), base + rng.normal(0, 0.2, 50)
        null_rejections += paired_test(a, b).p_value < 0.05
        power += paired_test(a, b + 0.15).p_value < 0.05
    assert 0.02 < null_rejections / trials < 0.09  # nominal 0.05
    assert power / trials > 0.9


def test_bootstrap_interval_covers_the_mean_at_about_its_level() -> None:
    rng = np.random.default_rng(11)
    covered = sum(
        lo <= 0.5 <= hi
        for lo, hi in (bootstrap_ci(rng.random(60), n_resamples=1000, seed=s) for s in range(300))
    )
    assert 0.90 < covered / 300 <= 0.99  # nominal 0.95
    assert bootstrap_ci([0.4, 0.4]) == (0.4, 0.4) and bootstrap_ci([]) == (0.0, 0.0)


def test_compare_pairs_queries_by_id_and_refuses_different_sets() -> None:
    a = {"q1": {"ndcg@10": 0.2}, "q2": {"ndcg@10": 0.4}, "q3": {"ndcg@10": 0.6}}
    b = {"q3": {"ndcg@10": 0.7}, "q1": {"ndcg@10": 0.3}, "q2": {"ndcg@10": 0.4}}
    result = compare(a, b, "ndcg@10")
    assert result.n == 3 and result.diff == pytest.approx(2 / 30)
    with pytest.raises(InvalidParameter, match="different queries"):
        compare(a, {"q1": {"ndcg@10": 0.1}}, "ndcg@10")
    with pytest.raises(InvalidParameter, match="'mrr@10' is not in both"):
        compare(a, b, "mrr@10")


def test_paired_test_pairs_score_dicts_by_query_id() -> None:
    a = {"q1": 0.2, "q2": 0.4, "q3": 0.6, "q4": 0.1}
    b = {"q4": 0.3, "q3": 0.65, "q1": 0.3, "q2": 0.4}  # another order: paired by id, not position
    by_id = paired_test(a, b, test="randomization")
    aligned = paired_test([0.2, 0.4, 0.6, 0.1], [0.3, 0.4, 0.65, 0.3], test="randomization")
    assert by_id == aligned and by_id.diff == pytest.approx(0.35 / 4)
    assert bootstrap_ci(a) == bootstrap_ci(list(a.values()))
    with pytest.raises(InvalidParameter, match=r"different queries .*only in b, e.g. \['q9'\]"):
        paired_test(a, {**b, "q9": 0.5})
    with pytest.raises(InvalidParameter, match="not one of each"):
        paired_test(a, [0.1, 0.2, 0.3, 0.4])
