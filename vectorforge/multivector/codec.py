"""ColBERTv2's residual codec: a token is its nearest centroid's id and its residual from that
centroid, each dimension bucketized into 2**nbits buckets and packed, nbits to a dimension.

Training follows the reference (stanford-futuredata/ColBERT, `CollectionIndexer`): spherical k-means
on a sample of tokens (FAISS), a held-out 5% of the sample to set the bucket cutoffs at the
quantiles 1/B .. (B-1)/B of the residuals (one set for every dimension) and the bucket weights at the
mid quantiles (i + 0.5)/B. Decoding looks each packed byte up in a table (256 x dims-per-byte) of
bucket weights, adds the centroid and re-normalizes. At 2 bits a 128-d token takes 4 + 32 = 36 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faiss
import numpy as np

from vectorforge.errors import CorruptionError, InvalidParameter

__all__ = ["ResidualCodec", "num_centroids", "sample_passages"]

HELDOUT = 0.05


def sample_passages(n_passages: int) -> int:
    """How many passages' tokens train the centroids: min(N, 1 + 16 * sqrt(120 * N)) (reference)."""
    return int(min(n_passages, 1 + 16 * np.sqrt(120 * n_passages)))


def num_centroids(n_tokens: int, n_sample_tokens: int, min_points: int = 39) -> int:
    """The power of two at or below 16 * sqrt(n_tokens), no more than the sample gives `min_points`
    tokens each (and at least 1)."""
    k = 1 << max(int(np.floor(np.log2(16 * np.sqrt(max(n_tokens, 1))))), 0)
    while k > 1 and n_sample_tokens < min_points * k:
        k //= 2
    return k


@dataclass(frozen=True)
class ResidualCodec:
    """Centroids (K x dim, unit rows), bucket cutoffs (B - 1) and weights (B), B = 2**nbits."""

    centroids: np.ndarray
    cutoffs: np.ndarray
    weights: np.ndarray
    nbits: int
    _lookup: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # each byte value's bucket weights, one per dimension the byte holds (high bits first), as one
        # opaque item of 4 * 8 / nbits bytes: taking whole items is ~10x faster than a 2-d gather
        per_byte = 8 // self.nbits
        shifts = self.nbits * np.arange(per_byte - 1, -1, -1)
        buckets = (np.arange(256)[:, None] >> shifts[None, :]) & ((1 << self.nbits) - 1)
        table = np.ascontiguousarray(self.weights[buckets], dtype=np.float32)
        object.__setattr__(self, "_lookup", table.view(f"V{4 * per_byte}").reshape(256))

    @property
    def dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def bytes_per_token(self) -> int:
        """A centroid id (int32) and the packed residual."""
        return 4 + self.dim * self.nbits // 8

    @classmethod
    def train(
        cls, tokens: np.ndarray, k: int, nbits: int = 2, niter: int = 4, seed: int = 0
    ) -> ResidualCodec:
        """Fit `k` centroids and the bucket cutoffs to `tokens` (unit rows, a sample of the corpus)."""
        if nbits not in (1, 2, 4):
            raise InvalidParameter(f"nbits must be 1, 2 or 4, not {nbits!r}")
        dim = tokens.shape[1]
        if (dim * nbits) % 8:
            raise InvalidParameter(f"a {dim}-d token does not pack into whole bytes at {nbits} bits")
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(tokens))
        n_heldout = min(int(HELDOUT * len(tokens)), 50_000) if len(tokens) >= 40 else 0
        heldout, train = tokens[order[:n_heldout]], tokens[order[n_heldout:]]
        k = max(1, min(k, len(train)))
        if k == 1:  # one centroid: the mean (FAISS would warn of too few points to cluster)
            centroids = train.mean(axis=0, keepdims=True).astype(np.float32)
        else:
            kmeans = faiss.Kmeans(dim, k, niter=niter, seed=seed, spherical=True, verbose=False)
            kmeans.cp.max_points_per_centroid = 256  # FAISS samples the rest (its default)
            kmeans.train(np.ascontiguousarray(train, dtype=np.float32))
            centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        sample = heldout if len(heldout) else train[: min(len(train), 50_000)]
        residuals = sample - centroids[_nearest(centroids, sample)]
        buckets = 1 << nbits
        cutoffs = np.quantile(residuals, np.arange(1, buckets) / buckets).astype(np.float32)
        weights = np.quantile(residuals, (np.arange(buckets) + 0.5) / buckets).astype(np.float32)
        return cls(centroids, cutoffs, weights, nbits)

    def encode(self, tokens: np.ndarray, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        """(centroid ids as int32, packed residuals as uint8 rows of dim * nbits / 8 bytes)."""
        n = len(tokens)
        codes = np.empty(n, np.int32)
        packed = np.empty((n, self.dim * self.nbits // 8), np.uint8)
        for start in range(0, n, batch):
            part = np.ascontiguousarray(tokens[start : start + batch], dtype=np.float32)
            ids = _nearest(self.centroids, part)
            buckets = np.searchsorted(self.cutoffs, part - self.centroids[ids], side="right").astype(np.uint8)
            codes[start : start + len(part)] = ids
            packed[start : start + len(part)] = _pack(buckets, self.nbits)
        return codes, packed

    def decode(self, codes: np.ndarray, packed: np.ndarray) -> np.ndarray:
        """Approximate unit tokens back from `encode`'s output."""
        residuals = np.take(self._lookup, packed).view(np.float32).reshape(len(codes), self.dim)
        out: np.ndarray = self.centroids[codes]
        out += residuals
        out /= np.maximum(np.sqrt(np.einsum("ij,ij->i", out, out)), 1e-12)[:, None]
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """What `from_arrays` reads back (saved in the segment's file)."""
        return {
            "centroids": self.centroids,
            "cutoffs": self.cutoffs,
            "weights": self.weights,
            "nbits": np.asarray([self.nbits], np.int64),
        }

    @classmethod
    def from_arrays(cls, data: Any, dim: int) -> ResidualCodec:
        centroids = np.ascontiguousarray(data["centroids"], np.float32)
        cutoffs = np.asarray(data["cutoffs"], np.float32)
        weights = np.asarray(data["weights"], np.float32)
        nbits = int(np.asarray(data["nbits"]).reshape(-1)[0])
        buckets = 1 << nbits if nbits in (1, 2, 4) else 0
        if (
            centroids.ndim != 2
            or centroids.shape[1] != dim
            or len(centroids) == 0
            or not buckets
            or cutoffs.shape != (buckets - 1,)
            or weights.shape != (buckets,)
            or not all(np.isfinite(a).all() for a in (centroids, cutoffs, weights))
        ):
            raise CorruptionError(f"a PLAID codec that does not match {dim}-d tokens")
        return cls(centroids, cutoffs, weights, nbits)


def _nearest(centroids: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Each token's nearest centroid by inner product (unit rows: cosine); FAISS blocks the product,
    so that no (tokens x centroids) matrix is ever held."""
    index = faiss.IndexFlatIP(centroids.shape[1])
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    _, ids = index.search(np.ascontiguousarray(tokens, dtype=np.float32), 1)
    found: np.ndarray = ids[:, 0].astype(np.int32)
    return found


def _pack(buckets: np.ndarray, nbits: int) -> np.ndarray:
    """(n, dim) bucket numbers -> (n, dim * nbits / 8) bytes, high bits first."""
    n, dim = buckets.shape
    per_byte = 8 // nbits
    grouped = buckets.reshape(n, dim // per_byte, per_byte).astype(np.uint16)
    shifts = nbits * np.arange(per_byte - 1, -1, -1, dtype=np.uint16)
    packed: np.ndarray = (grouped << shifts).sum(axis=2).astype(np.uint8)
    return packed
