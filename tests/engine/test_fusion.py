"""Fusion of ranked lists: hand-worked values, and the properties each method promises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vectorforge.engine.fusion import dbsf, fuse, rrf, weighted
from vectorforge.errors import InvalidParameter

scores = st.integers(min_value=-50, max_value=50).map(float)  # exact under the scaling below
runs_strategy = st.lists(
    st.dictionaries(st.integers(min_value=0, max_value=30), scores, max_size=12), min_size=1, max_size=3
)


def test_rrf_by_hand() -> None:
    fused = rrf([{"a": 9.0, "b": 5.0}, {"b": 0.7, "c": 0.1}], k=60)
    assert fused == pytest.approx({"b": 1 / 62 + 1 / 61, "a": 1 / 61, "c": 1 / 62})
    assert list(fused) == ["b", "a", "c"]


@given(runs=runs_strategy, scale=st.integers(min_value=1, max_value=100))
def test_rrf_depends_on_ranks_only(runs: list[dict[int, float]], scale: int) -> None:
    scaled = [{pid: s * scale + 7 for pid, s in run.items()} for run in runs]
    assert list(rrf(runs)) == list(rrf(scaled))


@given(runs=runs_strategy)
def test_every_fusion_holds_every_id_once_best_first(runs: list[dict[int, float]]) -> None:
    ids = set().union(*runs)
    for method in ("rrf", "dbsf", "weighted"):
        fused = fuse(runs, method)
        assert set(fused) == ids
        scores = list(fused.values())
        assert scores == sorted(scores, reverse=True)


def test_dbsf_and_weighted_by_hand() -> None:
    assert dbsf([{1: 2.0, 2: 2.0}]) == {1: 0.5, 2: 0.5}  # no spread: the middle
    fused = weighted([{1: 10.0, 2: 0.0}, {2: 1.0, 3: 0.0}], weights=[0.25, 0.75])
    assert fused == {2: 0.75, 1: 0.25, 3: 0.0}


def test_bad_fusion_arguments_are_refused() -> None:
    with pytest.raises(InvalidParameter, match="unknown"):
        fuse([{1: 1.0}], "max")
    with pytest.raises(InvalidParameter, match="one non-negative weight"):
        weighted([{1: 1.0}], weights=[1.0, 2.0])
    with pytest.raises(InvalidParameter, match="k >= 1"):
        rrf([{1: 1.0}], k=0)
