"""Exact late interaction (ColBERT's MaxSim) over token matrices: the `flat` index of `multi` vectors.

A document is a matrix of token vectors, of any number of rows; a segment keeps them ragged, as one
token matrix and the offsets where each document starts (no padding to store or to mask). A query
is a matrix too, and

    score(q, d) = sum over q's tokens i of  max over d's tokens j of  <q_i, d_j>

computed for every document at once: one matrix product of the query with all tokens, then a
maximum over each document's span (`np.maximum.reduceat`). A document with no tokens never scores
(it is left out, as padding would be with -inf, never 0). The PLAID index (issue 13) compresses and
prunes; this one is its oracle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vectorforge.errors import CorruptionError, DimensionMismatch, InvalidParameter, InvalidVector
from vectorforge.index.sparse import top_with_ties
from vectorforge.storage import fsio

__all__ = ["MultiVectorIndex", "maxsim_scores", "spans", "starts_of", "tokens_path"]


class MultiVectorIndex:
    """The token matrices of one segment's rows (None: the row has none)."""

    kind: ClassVar[str] = "flat"
    vector_kinds: ClassVar[frozenset[str]] = frozenset({"multi"})
    vectors_on_disk: ClassVar[bool] = False
    # a sealed segment with this index is rebuilt once its share of live rows falls below this
    # (compaction's rule; an index that trains on its rows asks for a rebuild sooner)
    rebuild_below_live: ClassVar[float] = 0.7

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """RAM for `n` rows of `params["tokens_per_point"]` (default 32) tokens of `dim` float32s
        (and each row's length and start)."""
        tokens = int(params.get("tokens_per_point", 32))
        return n * (4 * tokens * dim + 16)

    def __init__(self, dim: int, params: dict[str, Any] | None = None) -> None:
        if params:
            raise InvalidParameter(
                f"unknown parameters {sorted(params)} for index 'flat' of multi vectors; it takes none"
            )
        self.dim = dim
        self._parts: list[np.ndarray] = []
        self._lengths: list[int] = []
        self._lengths_array: np.ndarray | None = None  # `_lengths` as an array, rebuilt when it grows
        self._token_total = 0  # their sum, rebuilt with it
        # (tokens, starts) of every row, built on first use after a change and published as one
        # tuple, so that two readers building side by side never pair one's tokens with other starts.
        self._compiled: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def ntotal(self) -> int:
        return len(self._lengths)

    def add(self, matrices: Sequence[np.ndarray | None]) -> None:
        for m in matrices:
            if m is None:
                self._lengths.append(0)
                continue
            arr = np.asarray(m, dtype=np.float32)
            if arr.ndim != 2:
                raise InvalidVector(f"a multi vector is a (tokens, {self.dim}) matrix, not shape {arr.shape}")
            if arr.shape[1] != self.dim:
                raise DimensionMismatch(expected=self.dim, got=int(arr.shape[1]))
            if not np.isfinite(arr).all():
                raise InvalidVector("a multi vector holds NaN or infinite values")
            self._parts.append(arr)
            self._lengths.append(arr.shape[0])
        self._compiled = None

    def add_kept(self, matrices: Sequence[np.ndarray | None]) -> None:
        """Rows as another index of this kind keeps them (`add` transforms nothing here)."""
        self.add(matrices)

    def _matrix(self) -> tuple[np.ndarray, np.ndarray]:
        found = self._compiled
        if found is None:
            tokens = np.concatenate(self._parts) if self._parts else np.empty((0, self.dim), np.float32)
            starts = starts_of(self._lengths)
            self._parts = [tokens] if len(tokens) else []  # one part from now on: no copy next time
            found = self._compiled = (tokens, starts)
        return found

    def lengths(self) -> np.ndarray:
        """Each row's token count (int64; rows only ever append, so the cache is valid while the
        count of rows is the same)."""
        found = self._lengths_array
        if found is None or len(found) != len(self._lengths):
            found = self._lengths_array = np.asarray(self._lengths, dtype=np.int64)
            self._token_total = int(found.sum())
        return found

    def token_count(self) -> int:
        """How many tokens the rows hold (asked on every write of a collection: kept, not summed)."""
        self.lengths()
        return self._token_total

    def row(self, row: int) -> np.ndarray | None:
        """Row `row`'s token matrix (a view), or None."""
        tokens, starts = self._matrix()
        n = self._lengths[row]
        return tokens[starts[row] : starts[row] + n] if n else None

    def save(self, path: Path) -> None:
        """One file: each row's token count (0: none) and every token, row after row."""
        tokens, _ = self._matrix()
        lengths = self.lengths()
        fsio.write_with(path, lambda target: np.savez(target, lengths=lengths, tokens=tokens))

    def describe(self) -> dict[str, Any]:
        """How the segment's rows are searched (`info()` shows it)."""
        return {"index": self.kind, "mode": "exact", "tokens": self.token_count()}

    @classmethod
    def load(cls, path: Path, rows: int, dim: int, params: dict[str, Any] | None = None) -> MultiVectorIndex:
        """Read `save`'s file (every sealed segment of a collection with this vector has one)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                lengths, tokens = data["lengths"], data["tokens"]
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptionError(f"multi vectors {path.name} cannot be read: {exc}") from exc
        well_formed = (
            lengths.ndim == 1
            and lengths.dtype == np.int64
            and tokens.dtype == np.float32
            and tokens.ndim == 2
            and tokens.shape[1] == dim
            and len(lengths) == rows
            and bool(np.all(lengths >= 0))
            and int(lengths.sum()) == len(tokens)
            and bool(np.all(np.isfinite(tokens)))
        )
        if not well_formed:
            raise CorruptionError(
                f"multi vectors {path.name} do not match the segment's {rows} rows of {dim}"
            )
        index = cls(dim, params)
        index._parts = [tokens] if len(tokens) else []
        index._lengths = lengths.tolist()
        return index

    def search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None = None, params: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` rows by MaxSim with `query` (tokens x dim), among `mask`, and every row tied
        with the k-th (the merge breaks ties by point id): (scores, rows), best first; rows without
        tokens are never returned. `params`: {"exact": True} at most (this index is exact)."""
        if params and (set(params) != {"exact"} or not isinstance(params["exact"], bool)):
            raise InvalidParameter(
                f"search params {params!r} do not apply to index 'flat' of multi vectors; it takes "
                "{'exact': true} at most (plaid takes ncells, centroid_score_threshold, ndocs, rescore; "
                "muvera takes candidates, ef_search)"
            )
        scores = self.scores(query)
        allowed = self.lengths() > 0
        if mask is not None:
            allowed &= mask[: len(allowed)]
        return top_with_ties(scores, np.flatnonzero(allowed), k)

    def _spans_of(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token positions of `rows`, row after row, and each row's length."""
        _, starts = self._matrix()
        lengths = self.lengths()[rows]
        return spans(starts[rows], lengths), lengths

    def _exact_among(self, q: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact MaxSim of `rows` from the full tokens: the top k and every row tied with the k-th
        (what an approximate first stage returns, so that segments and shards merge by score)."""
        if len(rows) == 0:
            return np.empty(0, np.float64), np.empty(0, np.int64)
        rows = np.sort(rows)
        positions, lengths = self._spans_of(rows)
        tokens, _ = self._matrix()
        local = starts_of(lengths)
        exact = maxsim_scores(q, np.asarray(tokens[positions]), local, lengths)
        scores = np.full(len(self._lengths), -np.inf)
        scores[rows] = exact
        return top_with_ties(scores, rows, k)

    def _mapped(self) -> bool:
        """Whether the tokens are the memory map of a sealed segment's file (no more rows then)."""
        return isinstance(self._compiled, tuple) and isinstance(self._compiled[0], np.memmap)

    def _save_with_tokens(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        """`path` (npz): each row's token count and `arrays`; beside it `tokens_path(path)`, the
        full tokens (memory-mapped when read back by `_load_with_tokens`)."""
        tokens, _ = self._matrix()
        lengths = self.lengths()
        fsio.write_with(tokens_path(path), lambda target: np.save(target, np.ascontiguousarray(tokens)))
        fsio.write_with(path, lambda target: np.savez(target, allow_pickle=False, lengths=lengths, **arrays))

    def _load_with_tokens(self, path: Path, rows: int) -> dict[str, np.ndarray]:
        """Read `_save_with_tokens`'s files into this empty index, the tokens memory-mapped; returns
        the other arrays (CorruptionError if a file cannot be read or does not match)."""
        try:
            tokens = np.load(tokens_path(path), mmap_mode="r", allow_pickle=False)
            with np.load(path, allow_pickle=False) as data:
                lengths = data["lengths"]
                arrays = {key: data[key] for key in data.files if key != "lengths"}
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptionError(f"{self.kind} index {path.name} cannot be read: {exc}") from exc
        well_formed = (
            lengths.ndim == 1
            and lengths.dtype == np.int64
            and tokens.dtype == np.float32
            and tokens.ndim == 2
            and tokens.shape[1] == self.dim
            and len(lengths) == rows
            and bool(np.all(lengths >= 0))
            and int(lengths.sum()) == len(tokens)
        )
        if not well_formed:
            raise CorruptionError(
                f"{self.kind} index {path.name} does not match the segment's {rows} rows of {self.dim}"
            )
        self._lengths = lengths.tolist()
        starts = starts_of(lengths)
        self._compiled = (tokens, starts)  # the memory map itself: never copied into RAM
        self._parts = []
        return arrays

    def check_query(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim or q.shape[0] == 0:
            raise InvalidVector(f"a multi-vector query is a (tokens, {self.dim}) matrix, not shape {q.shape}")
        return q

    def scores(self, query: np.ndarray) -> np.ndarray:
        """MaxSim of `query` with every row (-inf for rows without tokens)."""
        q = self.check_query(query)
        tokens, starts = self._matrix()
        return maxsim_scores(q, tokens, starts, self.lengths())


def tokens_path(path: Path) -> Path:
    """The full tokens' file beside an index's file (multi-NAME.npz -> multi-NAME.tokens.npy)."""
    return path.with_name(path.name.removesuffix(".npz") + ".tokens.npy")


def starts_of(lengths: Any) -> np.ndarray:
    """Where each of consecutive spans of `lengths` starts (int64)."""
    starts: np.ndarray = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return starts


def spans(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ranges starts[i] .. starts[i] + lengths[i]."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.repeat(starts - starts_of(lengths), lengths)
    positions: np.ndarray = offsets + np.arange(total, dtype=np.int64)
    return positions


def maxsim_scores(
    query: np.ndarray, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    """Sum over query tokens of the max dot product over each document's token span."""
    out = np.full(len(lengths), -np.inf, dtype=np.float64)
    present = lengths > 0
    if not present.any():
        return out
    sims = query @ tokens.T  # (query tokens, all document tokens)
    # reduceat over the spans of documents that have tokens (an empty span would read its neighbour)
    best = np.maximum.reduceat(sims, starts[present], axis=1)  # (query tokens, documents with tokens)
    out[present] = best.sum(axis=0, dtype=np.float64)
    return out
