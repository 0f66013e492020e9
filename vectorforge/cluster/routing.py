"""Which shard a point lives on, and which shards a query must ask.

- hash: a stable hash of the id (blake2b, so every process and every run agrees);
- key: a stable hash of one payload field (a tenant id); a query whose filter pins that field to one
  value (`must: [{key, match}]`) asks only that shard;
- semantic: the nearest of N k-means centroids (FAISS k-means); a query asks its `n_probe` nearest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np

from vectorforge.engine.named import absent_rows
from vectorforge.errors import InvalidParameter, InvalidPayload
from vectorforge.types import Metric, PointId

__all__ = ["HashRouter", "KeyRouter", "Router", "SemanticRouter", "stable_hash"]


def stable_hash(value: Any) -> int:
    """A 64-bit hash that is the same in every process (Python's hash() is salted per process)."""
    tag = b"b" if isinstance(value, bool) else b"i" if isinstance(value, int) else b"s"
    return int.from_bytes(hashlib.blake2b(tag + str(value).encode(), digest_size=8).digest(), "little")


class Router:
    """Assigns points to shards and picks the shards a query needs."""

    def __init__(self, n_shards: int) -> None:
        self.n_shards = n_shards

    def place(self, ids: Sequence[PointId], vectors: np.ndarray, payloads: Sequence[Any]) -> np.ndarray:
        """The shard of each point."""
        return np.array([stable_hash(pid) % self.n_shards for pid in ids], dtype=np.int64)

    def probe(self, queries: np.ndarray, filter: dict[str, Any] | None) -> list[list[int]]:
        """For each query, the shards to ask (all of them unless the router knows better)."""
        everything = list(range(self.n_shards))
        return [everything] * queries.shape[0]

    @property
    def moves_points(self) -> bool:
        """True if re-upserting an id may place it on another shard (then the old copy must go)."""
        return False


class HashRouter(Router):
    """By id."""


class KeyRouter(Router):
    """By the value of one payload field."""

    def __init__(self, n_shards: int, key: str) -> None:
        super().__init__(n_shards)
        self.key = key

    def place(self, ids: Sequence[PointId], vectors: np.ndarray, payloads: Sequence[Any]) -> np.ndarray:
        out = np.empty(len(ids), dtype=np.int64)
        for i, payload in enumerate(payloads):
            value = payload.get(self.key) if isinstance(payload, dict) else None
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise InvalidPayload(
                    f"payload {i} has no str or int {self.key!r}: this collection is sharded by that field"
                )
            out[i] = stable_hash(value) % self.n_shards
        return out

    def probe(self, queries: np.ndarray, filter: dict[str, Any] | None) -> list[list[int]]:
        pinned = _pinned_value(filter, self.key)
        if pinned is None:
            return super().probe(queries, filter)
        return [[stable_hash(pinned) % self.n_shards]] * queries.shape[0]

    @property
    def moves_points(self) -> bool:
        return True


class SemanticRouter(Router):
    """By the nearest centroid; trained with k-means on the first batch written."""

    def __init__(
        self, n_shards: int, metric: Metric, n_probe: int, centroids: np.ndarray | None = None
    ) -> None:
        super().__init__(n_shards)
        self.metric = metric
        self.n_probe = min(n_probe, n_shards)
        self.centroids = centroids

    @property
    def trained(self) -> bool:
        return self.centroids is not None

    def train(self, vectors: np.ndarray) -> None:
        vectors = vectors[~absent_rows(vectors)]  # points without the dense vector have no place yet
        if vectors.shape[0] < self.n_shards:
            raise InvalidParameter(
                f"semantic sharding trains {self.n_shards} centroids on the first batch, which has only "
                f"{vectors.shape[0]} dense vectors; send at least {self.n_shards} (ideally thousands) first"
            )
        kmeans = faiss.Kmeans(
            vectors.shape[1], self.n_shards, niter=20, seed=1234, spherical=self.metric != Metric.L2
        )
        kmeans.train(np.ascontiguousarray(vectors, dtype=np.float32))
        self.centroids = kmeans.centroids.astype(np.float32)

    def _nearest(self, vectors: np.ndarray, n: int) -> np.ndarray:
        assert self.centroids is not None
        metric = faiss.METRIC_L2 if self.metric is Metric.L2 else faiss.METRIC_INNER_PRODUCT
        _, idx = faiss.knn(np.ascontiguousarray(vectors, dtype=np.float32), self.centroids, n, metric=metric)
        nearest: np.ndarray = idx
        return nearest

    def place(self, ids: Sequence[PointId], vectors: np.ndarray, payloads: Sequence[Any]) -> np.ndarray:
        # A point without the dense vector has no nearest centroid: it is placed by its id, which
        # stays its place until it gets a vector (dense searches never look for it).
        out = super().place(ids, vectors, payloads)
        present = ~absent_rows(vectors)
        if present.any():
            out[present] = self._nearest(vectors[present], 1)[:, 0]
        return out

    def probe(self, queries: np.ndarray, filter: dict[str, Any] | None) -> list[list[int]]:
        if self.centroids is None:
            return super().probe(queries, filter)
        return [sorted(row.tolist()) for row in self._nearest(queries, self.n_probe)]

    @property
    def moves_points(self) -> bool:
        return True


def _pinned_value(filter: dict[str, Any] | None, key: str) -> Any:
    """The single value `filter` requires for `key` at its top level, if it requires exactly one."""
    if not isinstance(filter, dict) or not filter:
        return None
    must = filter.get("must", [])
    for cond in must if isinstance(must, list) else [must]:
        if isinstance(cond, dict) and cond.get("key") == key and "match" in cond:
            value = cond["match"]
            if isinstance(value, str | int) and not isinstance(value, bool):
                return value
    return None
