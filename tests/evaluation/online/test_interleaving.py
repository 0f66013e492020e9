"""Team-draft interleaving: properties of the merge (hypothesis), credit, the preference test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.online.interleaving import Interleaved, credit, preference_test, team_draft

rankings = st.lists(st.sampled_from([f"d{i}" for i in range(15)]), unique=True, max_size=12)


@settings(max_examples=300, deadline=None)
@given(a=rankings, b=rankings, k=st.integers(0, 20), seed=st.integers(0, 2**32 - 1))
def test_team_draft_properties(a: list[str], b: list[str], k: int, seed: int) -> None:
    m = team_draft(a, b, k, np.random.default_rng(seed))
    assert len(m.ids) == len(m.teams) == min(k, len(set(a) | set(b)))
    assert len(set(m.ids)) == len(m.ids)  # no duplicates
    assert set(m.teams) <= {"a", "b"}
    lists = {"a": a, "b": b}
    for i, (doc, team) in enumerate(zip(m.ids, m.teams, strict=True)):
        assert doc in lists[team]  # every id comes from the ranking of the team credited with it
        # ... and was that team's best result not yet placed: each team's picks follow its order
        above = lists[team][: lists[team].index(doc)]
        assert set(above) <= set(m.ids[:i])
    # while both rankings have results left, the teams stay within one pick of each other
    both = 0
    for i in range(len(m.ids)):
        if set(a) - set(m.ids[:i]) and set(b) - set(m.ids[:i]):
            both = i + 1
    assert abs(m.teams[:both].count("a") - m.teams[:both].count("b")) <= 1


@settings(max_examples=30, deadline=None)
@given(a=st.lists(st.sampled_from([f"d{i}" for i in range(15)]), unique=True, min_size=2, max_size=12),
       rank=st.integers(1, 12))  # fmt: skip
def test_identical_arms_favour_nobody(a: list[str], rank: int) -> None:
    rank = min(rank, len(a), 10)
    outcomes = [credit(team_draft(a, a, 10, np.random.default_rng(s)), [rank]) for s in range(300)]
    wins_a = outcomes.count("a")
    assert outcomes.count("tie") == 0 and wins_a + outcomes.count("b") == 300
    assert stats.binomtest(wins_a, 300, 0.5).pvalue > 1e-4  # a coin, not a side
    m = team_draft(a, a, len(a), np.random.default_rng(0))
    assert m.ids == tuple(a)  # the merge of a list with itself is the list


def test_team_draft_is_seeded() -> None:
    a, b = ["x", "y", "z", "w"], ["z", "q", "x", "r"]
    first = team_draft(a, b, 6, np.random.default_rng(7))
    assert first == team_draft(a, b, 6, np.random.default_rng(7))
    assert {team_draft(a, b, 6, np.random.default_rng(s)).teams[0] for s in range(20)} == {"a", "b"}
    with pytest.raises(InvalidParameter):
        team_draft(a, b, -1, np.random.default_rng(0))


def test_credit_counts_clicks_per_team() -> None:
    m = Interleaved(("x", "y", "z", "w"), ("a", "b", "b", "a"))
    assert credit(m, []) == "tie"
    assert credit(m, [1]) == "a"
    assert credit(m, [1, 2, 3]) == "b"
    assert credit(m, [1, 2]) == "tie"
    with pytest.raises(InvalidParameter, match="outside"):
        credit(m, [5])
    with pytest.raises(InvalidParameter, match="outside"):
        credit(m, [0])


def test_preference_test_is_the_sign_test() -> None:
    outcomes = ["b"] * 30 + ["a"] * 15 + ["tie"] * 55
    r = preference_test(outcomes)
    assert (r.n, r.wins_a, r.wins_b, r.ties) == (100, 15, 30, 55)
    assert r.delta == pytest.approx(0.15)
    assert r.p_value == pytest.approx(stats.binomtest(30, 45, 0.5).pvalue)
    assert r.significant and r.ci_low < 0.15 < r.ci_high and r.ci_low > 0
    assert r == preference_test(outcomes)  # seeded
    quiet = preference_test(["tie"] * 10, interval=False)
    assert quiet.p_value == 1.0 and quiet.delta == 0 and not quiet.significant
    with pytest.raises(InvalidParameter, match="outcomes"):
        preference_test(["a", "c"])
    with pytest.raises(InvalidParameter):
        preference_test([])
    with pytest.raises(InvalidParameter, match="alpha"):
        preference_test(["a"], alpha=1.5)
