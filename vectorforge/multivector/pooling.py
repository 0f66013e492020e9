"""Token pooling: fewer vectors per document for late interaction, at little cost in MaxSim.

Answer.AI's hierarchical pooling (as PyLate and ColBERT ship it): cluster one document's token
vectors by Ward linkage, cut the tree into at most `n // factor` clusters, and keep each cluster's
mean, normalized to unit length. Neighbouring tokens of a document are often near-duplicates
(ColPali's blank patches, a word's sub-word pieces), so a factor of 2 or 3 halves or thirds the
index while a query's best match in each cluster moves little.

One difference from PyLate: it feeds Ward the rows of `1 - similarity` as if they were points; here
Ward runs on the token vectors themselves (its Euclidean distance between unit vectors is a function
of their cosine), which is what Ward's variance criterion is defined on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vectorforge.errors import InvalidParameter, InvalidVector
from vectorforge.extras import missing_extra

__all__ = ["cluster_tokens", "hierarchy", "pool_documents", "pool_tokens"]


def hierarchy() -> tuple[Any, Any]:
    """scipy's `fcluster` and `linkage` (the `embed` extra); an index that pools asks for them when
    it is made, so that a missing scipy never fails a write half-way."""
    with missing_extra("token pooling", "embed"):
        from scipy.cluster.hierarchy import fcluster, linkage
    return fcluster, linkage


def _check_factor(factor: object) -> int:
    # bool is an int to Python, and numpy integers are not ints: name what is wanted either way
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer):
        raise InvalidParameter(f"pool factor must be an int >= 1, not {factor!r} ({type(factor).__name__})")
    if factor < 1:
        raise InvalidParameter(f"pool factor must be an int >= 1, not {factor}")
    return int(factor)


def _check_tokens(tokens: object) -> np.ndarray:
    arr = np.asarray(tokens)
    if arr.ndim != 2:
        raise InvalidVector(f"token pooling takes one document's (tokens, dim) matrix, not shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidVector(f"token vectors must be real numbers, not {arr.dtype}")
    if not np.isfinite(arr).all():
        raise InvalidVector("token vectors hold NaN or infinite values")
    return arr


def _normalized(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def cluster_tokens(tokens: np.ndarray, factor: int) -> np.ndarray:
    """The cluster of each of one document's tokens that `pool_tokens` would pool together: (n,)
    ints from 0 to m - 1, numbered in the order of each cluster's first token, with
    `1 <= m <= max(n // factor, 1)` (fewer when tokens repeat: Ward never splits identical ones)."""
    factor = _check_factor(factor)
    arr = _check_tokens(tokens)
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n == 1 or factor == 1:
        return np.arange(n, dtype=np.int64)
    fcluster, linkage = hierarchy()
    tree = linkage(arr.astype(np.float64), method="ward", metric="euclidean")
    labels = np.asarray(fcluster(tree, t=max(n // factor, 1), criterion="maxclust"), dtype=np.int64)
    # renumber in the order of each cluster's first token: a stable output for a stable input
    _, first = np.unique(labels, return_index=True)
    remap = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    remap[labels[np.sort(first)]] = np.arange(len(first))
    return remap[labels]


def pool_tokens(tokens: np.ndarray, factor: int, *, protected: int = 0) -> np.ndarray:
    """One document's token matrix (n, dim) pooled to at most `max(n // factor, 1)` unit rows.

    `factor` 1 returns a copy of `tokens`, unchanged (not even normalized). Otherwise the first
    `protected` tokens (a [CLS] or [D] marker, say) are kept as they are, normalized, ahead of the
    pooled ones; the others are clustered by Ward linkage and each cluster becomes its normalized
    mean. A cluster whose mean is the zero vector (opposite tokens) keeps its first token instead.
    Identical tokens form one cluster, so a document of repeated tokens pools to fewer rows than
    `n // factor`. The output is float32 in the order of each cluster's first token.
    """
    factor = _check_factor(factor)
    arr = _check_tokens(tokens)
    if isinstance(protected, bool) or not isinstance(protected, int) or protected < 0:
        raise InvalidParameter(f"protected must be an int >= 0, not {protected!r}")
    if factor == 1:
        return arr.copy()
    arr = arr.astype(np.float32, copy=False)
    head, rest = arr[:protected], arr[protected:]
    n = len(rest)
    if n <= 1:
        return _normalized(np.concatenate([head, rest])).astype(np.float32)
    group = cluster_tokens(rest, factor)
    first = np.unique(group, return_index=True)[1]
    sums = np.zeros((len(first), rest.shape[1]), dtype=np.float64)
    np.add.at(sums, group, rest.astype(np.float64))
    zero = np.linalg.norm(sums, axis=1) == 0
    if zero.any():
        sums[zero] = rest[first][zero]
    pooled = _normalized(sums).astype(np.float32)
    if protected:
        return np.concatenate([_normalized(head).astype(np.float32), pooled])
    return pooled


def pool_documents(documents: list[np.ndarray], factor: int, *, protected: int = 0) -> list[np.ndarray]:
    """`pool_tokens` of each document."""
    _check_factor(factor)
    return [pool_tokens(doc, factor, protected=protected) for doc in documents]
