"""Regression rules: identical runs never alarm; a real drop larger than the minimum effect does;
a drop below the minimum effect or within noise does not; Holm's correction applies."""

from __future__ import annotations

import numpy as np
import pytest

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.evaluator import score_run
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.regression import compare_runs, regressions
from vectorforge.evaluation.runs import Run

N = 200
GOLD = GoldSet(
    "g",
    {f"q{i}": f"query {i}" for i in range(N)},
    {f"q{i}": {f"rel{i}": 1} for i in range(N)},
    {f"q{i}": {"parity": "even" if i % 2 == 0 else "odd"} for i in range(N)},
)


def run_with_ranks(ranks: np.ndarray) -> EvalRun:
    """Each query's relevant document at the given rank (0: first); 99 distractors around it."""
    run = Run()
    for i, rank in enumerate(ranks):
        docs = [f"x{j}" for j in range(99)]
        docs.insert(int(rank), f"rel{i}")
        run[f"q{i}"] = {d: float(100 - j) for j, d in enumerate(docs)}
    return score_run(run, GOLD, ["ndcg@10", "mrr@10"], collection="c")


def ranks(seed: int, worse: int = 0, share: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 6, N)
    hit = rng.random(N) < share
    return np.where(hit, base + worse, base)


def test_identical_runs_never_alarm() -> None:
    a = run_with_ranks(ranks(0))
    changes = compare_runs(a, run_with_ranks(ranks(0)), GOLD)
    assert len(changes) == 3 * 2  # all, parity=even, parity=odd x 2 metrics
    assert not regressions(changes) and all(c.diff == 0 and c.p_value == 1 for c in changes)


def test_a_real_drop_is_a_regression_everywhere_it_happened() -> None:
    changes = compare_runs(run_with_ranks(ranks(0)), run_with_ranks(ranks(0, worse=4)), GOLD)
    found = {(c.segment, c.metric) for c in regressions(changes)}
    assert found == {(s, m) for s in ("all", "parity=even", "parity=odd") for m in ("ndcg@10", "mrr@10")}
    assert all(c.diff < -0.1 and c.p_adjusted < 0.05 and c.effect_size < 0 for c in changes)


def test_a_drop_below_the_minimum_effect_is_not_a_regression() -> None:
    base, cand = run_with_ranks(ranks(0)), run_with_ranks(ranks(0, worse=1, share=0.1))
    changes = compare_runs(base, cand, GOLD, ["ndcg@10"], min_effect=0.05)
    overall = next(c for c in changes if c.segment == "all")
    assert -0.05 < overall.diff < 0 and not overall.regression
    assert regressions(compare_runs(base, cand, GOLD, ["ndcg@10"], min_effect=0.001))


def test_noise_between_equal_systems_rarely_alarms() -> None:
    """Two systems of the same quality (independent draws): with Holm over 6 tests at 0.05, at most a
    few of 40 comparisons may alarm."""
    alarms = sum(
        bool(regressions(compare_runs(run_with_ranks(ranks(s)), run_with_ranks(ranks(s + 1000)), GOLD)))
        for s in range(40)
    )
    assert alarms <= 4


def test_holm_adjusts_over_every_pair() -> None:
    changes = compare_runs(run_with_ranks(ranks(0)), run_with_ranks(ranks(0, worse=1, share=0.3)), GOLD)
    assert all(c.p_adjusted >= c.p_value for c in changes)
    smallest = min(changes, key=lambda c: c.p_value)
    assert smallest.p_adjusted == pytest.approx(min(1.0, smallest.p_value * len(changes)))


def test_underpowered_segments_are_named() -> None:
    tiny = GoldSet("g", {"q0": "a", "q1": "b"}, {"q0": {"rel0": 1}, "q1": {"rel1": 1}})
    a = score_run(Run({"q0": {"rel0": 1.0}, "q1": {"x": 1.0, "rel1": 0.5}}), tiny, ["ndcg@10"])
    b = score_run(Run({"q0": {"x": 1.0, "rel0": 0.5}, "q1": {"rel1": 1.0}}), tiny, ["ndcg@10"])
    (change,) = compare_runs(a, b, tiny)
    assert change.underpowered and not change.regression


def test_runs_of_another_gold_set_are_refused() -> None:
    a = run_with_ranks(ranks(0))
    other = GoldSet("h", {"z": "t"}, {"z": {"d": 1}})
    b = score_run(Run({"z": {"d": 1.0}}), other, ["ndcg@10"])
    with pytest.raises(InvalidParameter, match="pair only under the same judgments"):
        compare_runs(a, b, GOLD)
    with pytest.raises(InvalidParameter, match="alpha"):
        compare_runs(a, a, GOLD, alpha=1.5)


def test_a_one_query_segment_never_alarms() -> None:
    gold = GoldSet(
        "g",
        {f"q{i}": "t" for i in range(40)},
        {f"q{i}": {f"rel{i}": 1} for i in range(40)},
        {"q0": {"lang": "de"}},
    )
    good = Run({f"q{i}": {f"rel{i}": 2.0, "x": 1.0} for i in range(40)})
    worse = Run({**good, "q0": {"x": 2.0, "rel0": 1.0}})  # only q0 falls, from rank 1 to 2
    changes = compare_runs(score_run(good, gold, ["ndcg@10"]), score_run(worse, gold, ["ndcg@10"]), gold)
    (de,) = [c for c in changes if c.segment == "lang=de"]
    assert de.n == 1 and de.diff < -0.3 and de.p_value == 1.0 and not de.regression and de.underpowered


def test_runs_on_different_gold_set_versions_are_not_paired() -> None:
    other = GoldSet("g", GOLD.queries, {**GOLD.qrels, "q0": {"rel0": 1, "x1": 2}}, GOLD.segments)
    a = run_with_ranks(ranks(0))
    b = score_run(Run({q: dict(v) for q, v in a.per_query.items()}), other, ["ndcg@10"])
    with pytest.raises(InvalidParameter, match="pair only under the same judgments"):
        compare_runs(a, b, other)
