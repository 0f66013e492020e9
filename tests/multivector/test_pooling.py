"""Hierarchical token pooling (multivector/pooling.py): its invariants for any input, and that it
keeps MaxSim where a pooling that ignores the tokens' geometry does not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vectorforge.errors import InvalidParameter, InvalidVector
from vectorforge.multivector.pooling import cluster_tokens, pool_documents, pool_tokens


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    return float((query @ doc.T).max(axis=1).sum())


def clustered_docs(rng: np.random.Generator, n_docs: int, dim: int, topics: int, tokens: int, noise: float):
    """Documents made of noisy copies of a few of many topic vectors (as a passage repeats its
    subject in several tokens), and each document's topics."""
    centres = unit(rng.standard_normal((topics * 4, dim)))
    docs, chosen = [], []
    for _ in range(n_docs):
        mine = rng.choice(len(centres), size=topics, replace=False)
        picks = rng.choice(mine, size=tokens)
        docs.append(unit(centres[picks] + noise * rng.standard_normal((tokens, dim))).astype(np.float32))
        chosen.append(mine)
    return centres, docs, chosen


matrices = st.builds(
    lambda seed, n, dim, repeats: np.repeat(
        np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32), repeats, axis=0
    ),
    seed=st.integers(0, 2**16),
    n=st.integers(1, 40),
    dim=st.integers(1, 8),
    repeats=st.integers(1, 3),
)


@settings(max_examples=60, deadline=None)
@given(tokens=matrices)
def test_factor_one_is_no_pooling(tokens: np.ndarray) -> None:
    pooled = pool_tokens(tokens, 1)
    assert pooled is not tokens and pooled.dtype == tokens.dtype
    assert np.array_equal(pooled, tokens)


@settings(max_examples=80, deadline=None)
@given(tokens=matrices, factor=st.integers(2, 9), protected=st.integers(0, 2))
def test_each_pooled_vector_is_the_normalized_mean_of_one_cluster(
    tokens: np.ndarray, factor: int, protected: int
) -> None:
    pooled = pool_tokens(tokens, factor, protected=protected)
    head, rest = tokens[:protected], tokens[protected:]
    assert pooled.dtype == np.float32
    assert np.allclose(np.linalg.norm(pooled, axis=1), 1.0, atol=1e-5)
    assert np.allclose(pooled[: len(head)], unit(head), atol=1e-6)
    tail = pooled[len(head) :]
    if len(rest) <= 1:
        assert np.allclose(tail, unit(rest), atol=1e-6)
        return
    labels = cluster_tokens(rest, factor)
    clusters = int(labels.max()) + 1
    # a partition of the tokens into 1 .. n // factor clusters, numbered by first appearance
    assert set(labels.tolist()) == set(range(clusters))
    assert 1 <= clusters <= max(len(rest) // factor, 1) == max(len(rest) // factor, 1)
    assert np.array_equal(
        np.unique(labels, return_index=True)[1], np.sort(np.unique(labels, return_index=True)[1])
    )
    assert len(tail) == clusters
    for c in range(clusters):
        assert np.allclose(tail[c], unit(rest[labels == c].mean(axis=0)), atol=1e-5)
    # identical tokens always share a cluster
    for i in range(len(rest)):
        same = np.flatnonzero((rest == rest[i]).all(axis=1))
        assert len(set(labels[same].tolist())) == 1


def test_edge_cases() -> None:
    one = np.array([[3.0, 4.0]], dtype=np.float32)
    assert np.allclose(pool_tokens(one, 4), [[0.6, 0.8]])
    same = np.tile(np.array([[1.0, 2.0, 2.0]], dtype=np.float32), (10, 1))
    assert np.allclose(pool_tokens(same, 2), [[1 / 3, 2 / 3, 2 / 3]])
    assert pool_tokens(np.zeros((0, 5)), 3).shape == (0, 5)
    # n < factor: one vector, the mean direction
    few = np.eye(3, dtype=np.float32)
    assert np.allclose(pool_tokens(few, 5), unit(np.ones((1, 3))))
    # a cluster of opposite tokens (zero mean) keeps its first token
    opposite = np.array([[1.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    assert np.allclose(pool_tokens(opposite, 2), [[1.0, 0.0]])
    # the same clusters the clusters a document obviously has
    blobs = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)
    assert np.allclose(pool_tokens(blobs, 5), np.eye(4))
    assert [len(p) for p in pool_documents([blobs, one], 2)] == [4, 1]


@pytest.mark.parametrize("factor", [0, -1, 2.0, "2", True, None])
def test_a_bad_factor_is_refused(factor: object) -> None:
    with pytest.raises(InvalidParameter, match="pool factor must be an int >= 1"):
        pool_tokens(np.ones((3, 2)), factor)  # type: ignore[arg-type]


def test_bad_tokens_are_refused() -> None:
    with pytest.raises(InvalidVector, match=r"\(tokens, dim\) matrix, not shape \(3,\)"):
        pool_tokens(np.ones(3), 2)
    with pytest.raises(InvalidVector, match="NaN or infinite"):
        pool_tokens(np.array([[1.0, np.nan]]), 2)
    with pytest.raises(InvalidVector, match="real numbers"):
        pool_tokens(np.array([["a", "b"]]), 2)
    with pytest.raises(InvalidParameter, match="protected must be an int >= 0"):
        pool_tokens(np.ones((3, 2)), 2, protected=-1)


def agreement(
    docs: list[np.ndarray], pooled: list[np.ndarray], queries: list[np.ndarray]
) -> tuple[float, float]:
    """Mean relative MaxSim error, and the mean share of each query's exact top 10 documents that
    the pooled documents' top 10 keeps."""
    errors, overlaps = [], []
    for q in queries:
        exact = np.array([maxsim(q, d) for d in docs])
        approx = np.array([maxsim(q, p) for p in pooled])
        errors.append(float(np.mean(np.abs(approx - exact) / np.abs(exact))))
        top = set(np.argsort(-exact, kind="stable")[:10].tolist())
        overlaps.append(len(top & set(np.argsort(-approx, kind="stable")[:10].tolist())) / 10)
    return float(np.mean(errors)), float(np.mean(overlaps))


def test_pooling_keeps_maxsim_on_clustered_data() -> None:
    """Documents of 64 tokens around 8 topics, queries of 4 tokens near one document's topics:
    pooled by 2 and 4, MaxSim drops by 3-7% (a max over fewer, smoother vectors) and 95% of the
    top 10 stays; pooled by a partition that ignores
    the geometry (consecutive tokens), the same budget of vectors loses much more."""
    rng = np.random.default_rng(7)
    dim = 32
    centres, docs, chosen = clustered_docs(rng, n_docs=200, dim=dim, topics=8, tokens=64, noise=0.05)
    queries = []
    for i in rng.choice(len(docs), size=30, replace=False):
        picks = rng.choice(chosen[i], size=4, replace=False)
        queries.append(unit(centres[picks] + 0.05 * rng.standard_normal((4, dim))).astype(np.float32))
    for factor, max_error, min_overlap in ((2, 0.05, 0.9), (4, 0.1, 0.9)):
        pooled = pool_documents(docs, factor)
        assert all(len(p) <= 64 // factor for p in pooled)
        error, overlap = agreement(docs, pooled, queries)
        naive = [unit(d.reshape(len(d) // factor, factor, dim).mean(axis=1)) for d in docs]
        naive_error, naive_overlap = agreement(docs, naive, queries)
        print(f"factor {factor}: error {error:.4f} top-10 {overlap:.3f}; ", end="")
        print(f"consecutive: error {naive_error:.4f} top-10 {naive_overlap:.3f}")
        assert error < max_error and overlap >= min_overlap
        assert naive_error > 2.5 * error and naive_overlap < overlap - 0.1
