"""Exact MaxSim against a brute-force oracle (a loop over documents and query tokens)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vectorforge.errors import DimensionMismatch, InvalidVector
from vectorforge.index.maxsim import MultiVectorIndex

DIM = 4


def oracle(query: np.ndarray, docs: list[np.ndarray | None]) -> list[float]:
    out = []
    for d in docs:
        if d is None or len(d) == 0:
            out.append(float("-inf"))
            continue
        out.append(sum(max(float(np.dot(q, t)) for t in d) for q in query))
    return out


@settings(max_examples=80, deadline=None)
@given(
    lengths=st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=6)), min_size=1, max_size=12),
    query_tokens=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**16),
    k=st.integers(min_value=1, max_value=12),
)
def test_maxsim_equals_the_oracle(lengths: list[int | None], query_tokens: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    docs = [None if n is None else rng.standard_normal((n, DIM)).astype(np.float32) for n in lengths]
    query = rng.standard_normal((query_tokens, DIM)).astype(np.float32)
    index = MultiVectorIndex(DIM)
    index.add(docs)
    expected = oracle(query, docs)
    assert np.allclose(index.scores(query), expected, atol=1e-4, equal_nan=False)
    scores, rows = index.search(query, k)
    ranked = sorted(
        (r for r, s in enumerate(expected) if s != float("-inf")), key=lambda r: (-expected[r], r)
    )
    assert len(rows) == min(k, len(ranked))
    assert np.allclose(scores, [expected[r] for r in rows], atol=1e-4)
    assert all(expected[r] >= expected[ranked[len(rows) - 1]] - 1e-4 for r in rows)
    for r, m in enumerate(docs):
        got = index.row(r)
        assert (got is None) == (m is None) and (m is None or np.array_equal(got, m))


def test_rows_without_tokens_never_score_and_masks_apply() -> None:
    index = MultiVectorIndex(2)
    index.add([np.array([[1.0, 0.0]]), None, np.array([[0.0, 1.0], [2.0, 0.0]])])
    scores, rows = index.search(np.array([[1.0, 0.0]]), 5)
    assert rows.tolist() == [2, 0] and scores.tolist() == [2.0, 1.0]
    _, masked = index.search(np.array([[1.0, 0.0]]), 5, mask=np.array([True, True, False]))
    assert masked.tolist() == [0]


def test_bad_matrices_are_refused() -> None:
    index = MultiVectorIndex(3)
    with pytest.raises(DimensionMismatch):
        index.add([np.ones((2, 4))])
    with pytest.raises(InvalidVector, match="matrix"):
        index.add([np.ones(3)])
    with pytest.raises(InvalidVector, match="NaN"):
        index.add([np.array([[np.nan, 0, 0]])])
    with pytest.raises(InvalidVector, match="query"):
        index.search(np.ones((0, 3)), 1)
    assert index.ntotal == 0
