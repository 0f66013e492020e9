"""MUVERA's fixed-dimensional encodings (Dhulipala et al., 2024): one vector per token matrix whose
inner product approximates MaxSim (Chamfer similarity), so that a single-vector index finds late
interaction candidates and exact MaxSim re-ranks them.

For each of `reps` repetitions, `k_sim` random Gaussian hyperplanes (SimHash) split the token space
into 2**k_sim buckets, and a random ±1 matrix scaled by 1/sqrt(d_proj) (an AMS sketch) projects each
token to `d_proj` numbers. A query's block for bucket b is the sum of its projected tokens in b; a
document's is their mean, and a bucket where none of the document's tokens falls takes the
projection of its token nearest to the bucket (by Hamming distance of the SimHash bits: fill_empty).
So <FDE(q), FDE(d)> sums, per repetition and per query token, the similarity of the token with the
mean of the document's tokens in its bucket: near-by tokens share buckets, and that mean stands in
for the best match. The encoding has reps * 2**k_sim * d_proj numbers (5,120 with the defaults).

As in Google's reference (graph-mining's fixed_dimensional_encoding.cc) and Weaviate's, except for
two choices: the paper's dense ±1 projection (Google's code keeps one ±1 per input coordinate), and
buckets numbered by their bits in plain binary (Google uses a Gray code; a permutation of the
blocks, the same inner products). The optional final projection is left out. Random matrices come
from `numpy.random.default_rng(seed)`: the same seed gives the same encoder on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vectorforge.errors import DimensionMismatch, InvalidParameter, InvalidVector
from vectorforge.extras import missing_extra

__all__ = ["FDE", "sparse_matrix"]

# tokens encoded at once: bounds the memory of one call (~100 MB for 128-dim tokens)
_CHUNK_TOKENS = 65_536


def sparse_matrix() -> Any:
    """scipy's `csr_matrix` (the `embed` extra); the MUVERA index asks for it when it is made, so
    that a missing scipy never fails a write or a compaction half-way."""
    with missing_extra("MUVERA encodings", "embed"):
        from scipy.sparse import csr_matrix
    return csr_matrix


def _positive(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise InvalidParameter(f"FDE {name} must be an int from {low} to {high}, not {value!r}")
    return int(value)


class FDE:
    """A fixed-dimensional encoder of (tokens, dim) matrices; `output_dim` numbers per matrix."""

    def __init__(
        self,
        dim: int,
        k_sim: int = 4,
        reps: int = 20,
        d_proj: int = 16,
        seed: int = 0,
        *,
        fill_empty: bool = True,
    ) -> None:
        self.dim = _positive("dim", dim, 1, 65536)
        self.k_sim = _positive("k_sim", k_sim, 0, 16)
        self.reps = _positive("reps", reps, 1, 4096)
        self.d_proj = _positive("d_proj", d_proj, 1, 65536)
        self.seed = _positive("seed", seed, 0, 2**63 - 1)
        self.fill_empty = bool(fill_empty)
        self.buckets = 2**self.k_sim
        self.output_dim = self.reps * self.buckets * self.d_proj
        rng = np.random.default_rng(self.seed)
        # (dim, reps * k_sim): repetition r's hyperplanes are columns r*k_sim .. (r+1)*k_sim - 1
        self.hyperplanes = rng.standard_normal((self.dim, self.reps * self.k_sim)).astype(np.float32)
        signs = rng.integers(0, 2, size=(self.dim, self.reps * self.d_proj), dtype=np.int8) * 2 - 1
        # (dim, reps * d_proj), E[<xS, yS>] = <x, y>
        self.projection = (signs / np.sqrt(self.d_proj)).astype(np.float32)
        # bit j of a bucket's number is the side of hyperplane j (the first hyperplane: the high bit)
        self._weights = (1 << np.arange(self.k_sim - 1, -1, -1)).astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"FDE(dim={self.dim}, k_sim={self.k_sim}, reps={self.reps}, d_proj={self.d_proj}, "
            f"seed={self.seed}, fill_empty={self.fill_empty})"
        )

    # -- public ---------------------------------------------------------------------------------
    def encode_documents(self, documents: Sequence[Any]) -> np.ndarray:
        """(len(documents), output_dim) float32: bucket means, empty buckets filled (fill_empty)."""
        return self._encode(self._matrices(documents, "document"), average=True, fill=self.fill_empty)

    def encode_queries(self, queries: Sequence[Any]) -> np.ndarray:
        """(len(queries), output_dim) float32: bucket sums."""
        return self._encode(self._matrices(queries, "query"), average=False, fill=False)

    def encode_query(self, query: Any) -> np.ndarray:
        """(output_dim,) float32: one query's bucket sums."""
        encoded: np.ndarray = self.encode_queries([query])[0]
        return encoded

    def encode_document(self, document: Any) -> np.ndarray:
        """(output_dim,) float32: one document's encoding."""
        encoded: np.ndarray = self.encode_documents([document])[0]
        return encoded

    # -- internals ------------------------------------------------------------------------------
    def _matrices(self, items: Sequence[Any], what: str) -> list[np.ndarray]:
        if isinstance(items, np.ndarray) and items.ndim == 2:
            raise InvalidVector(
                f"encode {what}s takes a list of (tokens, {self.dim}) matrices (or a 3-d array); "
                f"for one {what} use encode_{what}"
            )
        out = []
        for i, item in enumerate(items):
            arr = np.asarray(item, dtype=np.float32)
            if arr.ndim != 2:
                raise InvalidVector(f"{what} {i} is not a (tokens, {self.dim}) matrix: shape {arr.shape}")
            if arr.shape[1] != self.dim:
                raise DimensionMismatch(
                    f"{what} {i} has tokens of {arr.shape[1]} numbers; this FDE encodes {self.dim}",
                    expected=self.dim,
                    got=int(arr.shape[1]),
                )
            if arr.shape[0] == 0:
                raise InvalidVector(f"{what} {i} has no tokens; an FDE needs at least one")
            if not np.isfinite(arr).all():
                raise InvalidVector(f"{what} {i} holds NaN or infinite values")
            out.append(arr)
        return out

    def _encode(self, matrices: list[np.ndarray], *, average: bool, fill: bool) -> np.ndarray:
        out = np.zeros((len(matrices), self.output_dim), dtype=np.float32)
        start = 0
        while start < len(matrices):
            stop, tokens = start, 0
            while stop < len(matrices) and (stop == start or tokens + len(matrices[stop]) <= _CHUNK_TOKENS):
                tokens += len(matrices[stop])
                stop += 1
            out[start:stop] = self._encode_chunk(matrices[start:stop], average=average, fill=fill)
            start = stop
        return out

    def _encode_chunk(self, matrices: list[np.ndarray], *, average: bool, fill: bool) -> np.ndarray:
        m, buckets, k_sim = len(matrices), self.buckets, self.k_sim
        lengths = np.fromiter((len(x) for x in matrices), dtype=np.int64, count=m)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        tokens = np.concatenate(matrices) if m > 1 else matrices[0]
        t = len(tokens)
        owner = np.repeat(np.arange(m, dtype=np.int64), lengths)  # (t,) the matrix of each token
        above = tokens @ self.hyperplanes > 0  # (t, reps * k_sim)
        out = np.empty((m, self.reps, buckets, self.d_proj), dtype=np.float32)
        padded: np.ndarray | None = None
        for r in range(self.reps):
            code = np.zeros(t, dtype=np.int64)  # the bucket of each token in this repetition
            for j in range(k_sim):
                code |= above[:, r * k_sim + j].astype(np.int64) << (k_sim - 1 - j)
            block = owner * buckets + code
            # The projection is linear: project each block's sum (or mean, or nearest token) of the
            # raw tokens, not every token, which costs (blocks x dim x d_proj) instead of
            # (tokens x dim x d_proj) and does the same sums.
            member = sparse_matrix()(
                (np.ones(t, dtype=np.float32), (block, np.arange(t))), shape=(m * buckets, t)
            )
            raw = np.asarray(member @ tokens, dtype=np.float32)  # (m * buckets, dim)
            counts = np.bincount(block, minlength=m * buckets)
            if average:
                raw /= np.maximum(counts, 1)[:, None].astype(np.float32)
            if fill and k_sim and (counts == 0).any():
                if padded is None:
                    padded = self._padded_codes(above, owner, starts, lengths)
                self._fill(raw, counts == 0, padded[:, :, r], tokens, starts, lengths)
            projection = self.projection[:, r * self.d_proj : (r + 1) * self.d_proj]
            out[:, r] = (raw @ projection).reshape(m, buckets, self.d_proj)
        return out.reshape(m, self.output_dim)

    def _padded_codes(
        self, above: np.ndarray, owner: np.ndarray, starts: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """Every token's bucket in every repetition, as (matrices, longest, reps), 0 past the end."""
        t, reps, k_sim = len(above), self.reps, self.k_sim
        code = above.reshape(t, reps, k_sim).astype(np.int64) @ self._weights
        padded = np.zeros((len(lengths), int(lengths.max()), reps), dtype=np.int64)
        padded[owner, np.arange(t) - starts[owner]] = code
        return padded

    def _fill(
        self,
        raw: np.ndarray,
        empty: np.ndarray,
        codes: np.ndarray,
        tokens: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        """Each empty block of one repetition takes its matrix's token whose SimHash bits differ
        least from the bucket's (`codes`: (matrices, longest) buckets); on a tie, the first one."""
        blocks = np.flatnonzero(empty)
        matrix, bucket = np.divmod(blocks, self.buckets)
        distance = np.bitwise_count(codes[matrix] ^ bucket[:, None]).astype(np.int16)  # (blocks, longest)
        distance[np.arange(codes.shape[1])[None, :] >= lengths[matrix][:, None]] = self.k_sim + 1
        nearest = starts[matrix] + np.argmin(distance, axis=1)  # argmin: the first of the nearest
        raw[blocks] = tokens[nearest]
