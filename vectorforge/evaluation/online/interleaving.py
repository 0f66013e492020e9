"""Team-draft interleaving (Radlinski, Kurup and Joachims 2008): one merged ranking per query from
two arms' rankings, each result credited to the arm ("team") that placed it, and the test of which
arm users prefer (Chapelle, Joachims, Radlinski and Yue 2012).

Every user sees both arms at once, so the comparison is within the query: the variance between
users and queries that an A/B test must average out mostly cancels, hence its sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.stats import bootstrap_ci

__all__ = ["Interleaved", "InterleavingResult", "credit", "preference_test", "team_draft"]

OUTCOMES = ("a", "b", "tie")


@dataclass(frozen=True)
class Interleaved:
    """The merged ranking and, per position, the team ("a" or "b") that placed the result there."""

    ids: tuple[str, ...]
    teams: tuple[str, ...]


def team_draft(a: Sequence[str], b: Sequence[str], k: int, rng: np.random.Generator) -> Interleaved:
    """Merge rankings `a` and `b` into at most `k` results: in each round the team with fewer picks
    (a coin toss when even) adds its highest-ranked result not yet placed. A result both rank is
    placed once, for the team that picked it first; when one ranking runs out the other fills the
    rest, so the length is min(k, |a u b|)."""
    if k < 0:
        raise InvalidParameter(f"k must be >= 0, got {k}")
    ids: list[str] = []
    teams: list[str] = []
    placed: set[str] = set()
    lists = {"a": list(a), "b": list(b)}
    nxt = {"a": 0, "b": 0}
    count = {"a": 0, "b": 0}

    def advance(team: str) -> bool:  # skip what the other team already placed
        ranking = lists[team]
        while nxt[team] < len(ranking) and ranking[nxt[team]] in placed:
            nxt[team] += 1
        return nxt[team] < len(ranking)

    while len(ids) < k:
        has_a, has_b = advance("a"), advance("b")
        if not (has_a or has_b):
            break
        if has_a and has_b:
            # the coin is tossed every time the counts are even: one toss per round of two picks
            team = (
                "a" if count["a"] < count["b"] or (count["a"] == count["b"] and rng.random() < 0.5) else "b"
            )
        else:
            team = "a" if has_a else "b"
        doc = lists[team][nxt[team]]
        ids.append(doc)
        teams.append(team)
        placed.add(doc)
        count[team] += 1
    return Interleaved(tuple(ids), tuple(teams))


def credit(interleaved: Interleaved, clicked_ranks: Sequence[int]) -> str:
    """The query's outcome: "a" or "b" for the team whose results took more clicks, "tie" when they
    took as many (no clicks included). Ranks are 1-based positions in the merged list."""
    wins = {"a": 0, "b": 0}
    for r in clicked_ranks:
        if not 1 <= r <= len(interleaved.ids):
            raise InvalidParameter(
                f"clicked rank {r} is outside the interleaved list of {len(interleaved.ids)}"
            )
        wins[interleaved.teams[r - 1]] += 1
    return "tie" if wins["a"] == wins["b"] else max(wins, key=lambda t: wins[t])


@dataclass(frozen=True)
class InterleavingResult:
    """Per-query outcomes summed; delta > 0 favours b. The p-value is the exact two-sided binomial
    sign test of the non-tied queries; the interval a percentile bootstrap of delta."""

    n: int
    wins_a: int
    wins_b: int
    ties: int
    delta: float  # (wins_b - wins_a) / n, in [-1, 1]
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def preference_test(
    outcomes: Sequence[str],
    *,
    alpha: float = 0.05,
    n_resamples: int = 2000,
    seed: int = 0,
    interval: bool = True,
) -> InterleavingResult:
    """Which arm the queries prefer. delta = (wins_b - wins_a) / (wins_a + wins_b + ties) (Chapelle
    et al. 2012 use half of it: ties count half to each side, minus 0.5); ties carry no evidence for
    the sign test. `interval=False` skips the bootstrap (the interval is then (delta, delta))."""
    if not 0 < alpha < 1:
        raise InvalidParameter(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    bad = sorted({o for o in outcomes if o not in OUTCOMES})
    if bad:
        raise InvalidParameter(f"outcomes are 'a', 'b' or 'tie', got {bad[:3]}")
    if not outcomes:
        raise InvalidParameter("no outcomes: at least one query is needed")
    wa, wb = outcomes.count("a"), outcomes.count("b")
    n = len(outcomes)
    ties = n - wa - wb
    delta = (wb - wa) / n
    p = 1.0 if wa + wb == 0 else float(stats.binomtest(wb, wa + wb, 0.5).pvalue)
    if interval:
        signs = [1.0 if o == "b" else -1.0 if o == "a" else 0.0 for o in outcomes]
        low, high = bootstrap_ci(signs, confidence=1 - alpha, n_resamples=n_resamples, seed=seed)
    else:
        low = high = delta
    return InterleavingResult(n, wa, wb, ties, delta, low, high, min(p, 1.0), p < alpha)
