"""The single search's fast check (`one_query`) gives the same bits as the full check of a batch,
and leaves to it every input it cannot vouch for, so that the full check names the problem."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import vectorforge as vf
from vectorforge.engine.validate import check_queries, check_vectors, one_query
from vectorforge.types import Metric

DIM = 8
finite = st.floats(-1e3, 1e3, width=32, allow_nan=False, allow_infinity=False)


@given(
    vector=arrays(np.float32, DIM, elements=finite),
    scale=st.sampled_from([None, 1.0, 1 + 1e-7, 1 + 5e-7, 1 + 2e-6, 0.5]),
    metric=st.sampled_from(list(Metric)),
)
def test_the_fast_check_equals_the_full_one(vector: np.ndarray, scale: float | None, metric: Metric) -> None:
    norm = float(np.linalg.norm(vector))
    if scale is not None and norm > 0:  # near the unit length, where the two checks must agree
        vector = (vector / norm * scale).astype(np.float32)
    fast = one_query(vector, DIM, metric)
    try:
        full = check_vectors(vector, DIM, metric)
    except vf.InvalidVector:
        assert fast is None  # a zero vector for cosine: left to the full check, which names it
        return
    if fast is not None:
        assert fast.shape == (1, DIM) and fast.flags.c_contiguous and fast.dtype == np.float32
        assert fast.tobytes() == full.tobytes()
    assert check_queries(vector, DIM, metric, 10).tobytes() == full.tobytes()


@pytest.mark.parametrize(
    "vector",
    [
        np.array([np.nan] + [0.0] * (DIM - 1), np.float32),
        np.array([np.inf] + [0.0] * (DIM - 1), np.float32),
        np.zeros(DIM, np.float32),
        np.ones(DIM, np.float64),  # not float32: converted by the full check
        np.ones(DIM + 1, np.float32),
        np.ones((1, DIM), np.float32),
        [1.0] * DIM,
    ],
)
def test_what_the_fast_check_cannot_vouch_for_goes_to_the_full_one(vector: object) -> None:
    assert one_query(vector, DIM, Metric.COSINE) is None


def test_a_bad_single_query_is_still_refused_by_name() -> None:
    col = vf.connect().create_collection("c", dim=DIM)
    col.upsert([1], np.ones((1, DIM), np.float32))
    with pytest.raises(vf.InvalidVector, match="NaN or infinite"):
        col.search(np.array([np.nan] + [1.0] * (DIM - 1), np.float32))
    with pytest.raises(vf.InvalidVector, match="all zeros"):
        col.search(np.zeros(DIM, np.float32))
    with pytest.raises(vf.DimensionMismatch):
        col.search(np.ones(DIM + 1, np.float32))


def test_search_params_parsed_once_are_not_confused_with_equal_values_of_another_type() -> None:
    from vectorforge.index.base import SearchParams

    assert SearchParams.parse({"ef": 1}).ef == 1  # parsed, then remembered
    assert SearchParams.parse({"ef": 1}) is SearchParams.parse({"ef": 1})
    for bad in ({"ef": True}, {"ef": 1.0}, {"exact": 1}):  # == a remembered one, but not valid
        with pytest.raises(vf.InvalidParameter):
            SearchParams.parse(bad)
    assert SearchParams.parse({"exact": True}).exact is True
    with pytest.raises(vf.InvalidParameter, match="oversample must be a number from 1 to 100"):
        SearchParams.parse({"oversample": 0.5})
