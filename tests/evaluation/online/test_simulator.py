"""The cascade click model: position bias, relevance, dwell, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.online.interleaving import credit, preference_test, team_draft
from vectorforge.evaluation.online.simulator import (
    ClickModel,
    is_success,
    simulate_clicks,
    simulate_grades,
    simulate_many,
)

MODEL = ClickModel()
DOCS = [f"d{i}" for i in range(10)]


def _clicks_on(doc: str, ranking: list[str], judgments: dict[str, int], trials: int = 2000) -> int:
    rng = np.random.default_rng(0)
    return sum(
        any(c.doc_id == doc for c in simulate_clicks(ranking, judgments, MODEL, rng)) for _ in range(trials)
    )


def test_position_bias() -> None:
    judged = {"rel": 2}
    top = ["rel", *DOCS[:9]]
    fifth = [*DOCS[:4], "rel", *DOCS[4:9]]
    at_1, at_5 = _clicks_on("rel", top, judged), _clicks_on("rel", fifth, judged)
    assert at_1 > 2.5 * at_5  # examined with probability 1 against 1/5
    assert at_1 / 2000 == pytest.approx(0.9, abs=0.03)


def test_relevance_drives_clicks_and_dwell() -> None:
    clicked, dwell = simulate_many(DOCS, {"d0": 2}, MODEL, np.random.default_rng(1), 5000)
    assert clicked.shape == dwell.shape == (5000, 10)
    assert clicked[:, 0].mean() == pytest.approx(0.9, abs=0.02)
    assert clicked[:, 1].mean() < 0.05  # noise clicks, and a satisfied user often stopped
    assert np.median(dwell[clicked[:, 0], 0]) > 5 * np.median(dwell[clicked[:, 1], 1])
    assert (dwell[~clicked] == 0).all()
    # unjudged is grade 0, and a grade above the table uses its last entry
    c_unjudged, _ = simulate_many(["zz"], {}, MODEL, np.random.default_rng(2), 5000)
    c_high, _ = simulate_many(["zz"], {"zz": 7}, MODEL, np.random.default_rng(2), 5000)
    assert c_unjudged.mean() == pytest.approx(0.05, abs=0.01) and c_high.mean() == pytest.approx(
        0.9, abs=0.02
    )


def test_clicks_stay_within_the_ranking_and_are_deterministic() -> None:
    judged = {d: i % 3 for i, d in enumerate(DOCS)}
    for seed in range(200):
        clicks = simulate_clicks(DOCS[:4], judged, MODEL, np.random.default_rng(seed))
        assert all(1 <= c.rank <= 4 and c.doc_id == DOCS[c.rank - 1] and c.dwell_s > 0 for c in clicks)
        assert [c.rank for c in clicks] == sorted(c.rank for c in clicks)
        assert clicks == simulate_clicks(DOCS[:4], judged, MODEL, np.random.default_rng(seed))
    assert simulate_clicks([], judged, MODEL, np.random.default_rng(0)) == []


def test_satisfied_users_stop_and_success_needs_dwell() -> None:
    always = ClickModel(click_probs=(0.0, 1.0), p_stop=1.0, eta=0.0)
    clicks = simulate_clicks(
        ["r1", "r2", "r3"], {"r1": 1, "r2": 1, "r3": 1}, always, np.random.default_rng(0)
    )
    assert [c.rank for c in clicks] == [1]
    long_click = ClickModel(dwell_sigma=0.0, dwell_medians_s=(5.0, 60.0), success_dwell_s=30.0)
    rng = np.random.default_rng(3)
    sessions = [simulate_clicks(["r"], {"r": 1}, long_click, rng) for _ in range(200)]
    assert all(is_success(s, long_click) == bool(s) for s in sessions)
    noise = [simulate_clicks(["n"], {}, long_click, rng) for _ in range(400)]
    assert not any(is_success(s, long_click) for s in noise) and any(noise)
    assert not is_success(sessions[0], long_click, k=0)


def test_bad_models_are_refused() -> None:
    with pytest.raises(InvalidParameter):
        ClickModel(click_probs=(0.1, 1.5))
    with pytest.raises(InvalidParameter):
        ClickModel(p_stop=2.0)
    with pytest.raises(InvalidParameter):
        ClickModel(dwell_medians_s=(0.0,))
    assert ClickModel().to_json()["click_probs"] == (0.05, 0.5, 0.9)


def test_interleaving_prefers_the_better_ranking() -> None:
    judged = {"r1": 2, "r2": 1}
    good, bad = ["r1", "r2", *DOCS[:8]], [*DOCS[:8], "r1", "r2"]
    rng = np.random.default_rng(4)
    outcomes = []
    for _ in range(300):
        m = team_draft(bad, good, 10, rng)  # b is the better arm
        outcomes.append(credit(m, [c.rank for c in simulate_clicks(m.ids, judged, MODEL, rng)]))
    r = preference_test(outcomes)
    assert r.significant and r.delta > 0.3


def test_per_user_rankings_are_the_same_model() -> None:
    judged = {"d0": 1, "d3": 2}
    grades = np.array([[judged.get(d, 0) for d in DOCS]] * 50)
    many = simulate_many(DOCS, judged, MODEL, np.random.default_rng(5), 50)
    each = simulate_grades(grades, MODEL, np.random.default_rng(5))
    assert all((x == y).all() for x, y in zip(many, each, strict=True))
    with pytest.raises(InvalidParameter, match="matrix"):
        simulate_grades(np.zeros(3), MODEL, np.random.default_rng(0))
