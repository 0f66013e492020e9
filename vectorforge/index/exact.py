"""Exact top-k by brute force: the oracle, and the plan for selective filters."""

from __future__ import annotations

import faiss
import numpy as np

from vectorforge.types import Metric

__all__ = ["distances_to_scores", "exact_topk", "faiss_metric"]


def faiss_metric(metric: Metric) -> int:
    """FAISS's metric constant for `metric` (cosine is inner product over normalized vectors)."""
    return int(faiss.METRIC_L2 if metric is Metric.L2 else faiss.METRIC_INNER_PRODUCT)


def distances_to_scores(distances: np.ndarray, metric: Metric) -> np.ndarray:
    """FAISS output -> higher-is-better scores: -euclidean distance for l2, the similarity otherwise
    (cosine at most 1: float32 rounding puts a unit vector's self-score at 1.0000001)."""
    if metric is Metric.L2:
        scores: np.ndarray = -np.sqrt(np.maximum(distances, 0.0))
        return scores
    if metric is Metric.COSINE:
        capped: np.ndarray = np.minimum(distances, 1.0, out=distances)
        return capped
    return distances


def exact_topk(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    metric: Metric,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of `queries` against `vectors` (or only `vectors[rows]`).

    Returns (scores, rows), each (nq, k), best first; missing results have row -1 and score -inf.
    """
    nq = queries.shape[0]
    base = np.ascontiguousarray(vectors if rows is None else vectors[rows])
    if base.shape[0] == 0:
        return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
    kk = min(k, base.shape[0])
    dist, idx = faiss.knn(queries, base, kk, metric=faiss_metric(metric))
    scores = distances_to_scores(dist, metric).astype(np.float32, copy=False)
    if rows is not None:
        idx = np.where(idx >= 0, rows[np.maximum(idx, 0)], -1)
    if kk < k:
        scores = np.pad(scores, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        idx = np.pad(idx, ((0, 0), (0, k - kk)), constant_values=-1)
    return scores, idx.astype(np.int64, copy=False)
