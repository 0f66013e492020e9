"""A position-biased cascade click model over graded judgments, to generate user traffic.

The user scans the ranking from the top. Having examined rank r, they go on to rank r + 1 with
probability (r / (r + 1)) ** eta, so rank r is examined with probability r ** -eta when nothing
stops them (position bias). An examined result is clicked with the probability of its grade
(unjudged results are grade 0, whose small probability is noise clicks). Each click has a dwell time
drawn from a log-normal whose median grows with the grade; a click on a relevant result (grade >= 1)
satisfies the user, who then stops scanning with probability `p_stop`. A click with dwell at least
`success_dwell_s` is a "success", which makes success@k an outcome that relevance drives.

Randomness comes only from the generator passed in, and the same number of draws is made whatever
happens, so a seed gives the same traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vectorforge.errors import InvalidParameter

__all__ = [
    "ClickModel",
    "SimulatedClick",
    "is_success",
    "simulate_clicks",
    "simulate_grades",
    "simulate_many",
]


@dataclass(frozen=True)
class ClickModel:
    """The parameters; tuples are indexed by grade (grades above the last entry use the last)."""

    eta: float = 1.0  # position bias: rank r examined with probability r ** -eta
    click_probs: tuple[float, ...] = (0.05, 0.5, 0.9)  # P(click | examined, grade)
    p_stop: float = 0.7  # P(stop scanning | clicked a relevant result)
    dwell_medians_s: tuple[float, ...] = (8.0, 45.0, 90.0)  # median dwell per grade
    dwell_sigma: float = 0.8  # log-normal shape of the dwell
    success_dwell_s: float = 30.0  # a click this long or longer is a success

    def __post_init__(self) -> None:
        if self.eta < 0 or not 0 <= self.p_stop <= 1 or self.dwell_sigma < 0 or self.success_dwell_s < 0:
            raise InvalidParameter(
                "need eta >= 0, 0 <= p_stop <= 1, dwell_sigma >= 0 and success_dwell_s >= 0"
            )
        if not self.click_probs or any(not 0 <= p <= 1 for p in self.click_probs):
            raise InvalidParameter(
                f"click_probs must be probabilities, one per grade, got {self.click_probs}"
            )
        if not self.dwell_medians_s or any(m <= 0 for m in self.dwell_medians_s):
            raise InvalidParameter(f"dwell medians must be > 0, got {self.dwell_medians_s}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SimulatedClick:
    rank: int  # 1-based
    doc_id: str
    dwell_s: float


def _grades(ranking: Sequence[str], judgments: Mapping[str, int]) -> np.ndarray:
    return np.array([max(0, int(judgments.get(d, 0))) for d in ranking], dtype=np.int64)


def simulate_many(
    ranking: Sequence[str], judgments: Mapping[str, int], model: ClickModel, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """`n` independent users on one ranking at once: (clicked, dwell), both (n, len(ranking)); dwell
    is 0 where there is no click."""
    if n < 0:
        raise InvalidParameter(f"n must be >= 0, got {n}")
    g = _grades(ranking, judgments)
    return simulate_grades(np.broadcast_to(g, (n, len(g))), model, rng)


def simulate_grades(
    grades: np.ndarray, model: ClickModel, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Users each on their own ranking, given as its grades: row i of `grades` (n, depth) holds the
    grades of user i's results, top first. Returns (clicked, dwell) of the same shape."""
    g = np.asarray(grades, dtype=np.int64)
    if g.ndim != 2:
        raise InvalidParameter(f"grades must be a (users, depth) matrix, got shape {g.shape}")
    g = np.maximum(g, 0)
    n, size = g.shape
    click_p = np.array(model.click_probs)[np.minimum(g, len(model.click_probs) - 1)]
    medians = np.array(model.dwell_medians_s)[np.minimum(g, len(model.dwell_medians_s) - 1)]
    clicked = np.zeros((n, size), dtype=bool)
    dwell = np.zeros((n, size))
    active = np.ones(n, dtype=bool)
    for r in range(size):
        # four draws per rank for everyone, used or not: the stream does not depend on the path
        go_on, u_click, u_stop = rng.random(n), rng.random(n), rng.random(n)
        d = medians[:, r] * np.exp(model.dwell_sigma * rng.standard_normal(n))
        if r > 0:
            active &= go_on < (r / (r + 1)) ** model.eta
        click = active & (u_click < click_p[:, r])
        clicked[:, r] = click
        dwell[:, r] = np.where(click, d, 0.0)
        active &= ~(click & (g[:, r] >= 1) & (u_stop < model.p_stop))
    return clicked, dwell


def simulate_clicks(
    ranking: Sequence[str], judgments: Mapping[str, int], model: ClickModel, rng: np.random.Generator
) -> list[SimulatedClick]:
    """One user's clicks on `ranking`, top first; `judgments` maps doc ids to grades (a gold set's
    `qrels[qid]`)."""
    clicked, dwell = simulate_many(ranking, judgments, model, rng, 1)
    return [
        SimulatedClick(r + 1, ranking[r], float(dwell[0, r])) for r in np.flatnonzero(clicked[0]).tolist()
    ]


def is_success(clicks: Sequence[SimulatedClick], model: ClickModel, k: int | None = None) -> bool:
    """Success@k: some click in the top k (all when k is None) dwelt at least `success_dwell_s`."""
    return any(c.dwell_s >= model.success_dwell_s and (k is None or c.rank <= k) for c in clicks)
