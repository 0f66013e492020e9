"""Inverted lists over sparse vectors: exact BM25 (Lucene's formula) and plain dot products.

One `SparseIndex` holds the rows of one segment: for each term the rows that hold it and their
values (term counts for BM25, weights for a learned sparse model), and each row's length (the sum of
its counts). BM25 scores depend on the whole collection (the number of documents, their average
length, each term's document frequency), never on one segment or shard: a caller gathers
`CorpusStats` from every segment and shard first (`stats`, then `merged`) and scores every segment
with the same totals, so that a sharded collection scores a document exactly as one collection
would (Elasticsearch's dfs_query_then_fetch, not its per-shard query_then_fetch).

    score(q, d) = sum over q's terms t (with repeats) of
                  idf(t) * tf(t, d) / (tf(t, d) + k1 * (1 - b + b * len(d) / avglen))
    idf(t)      = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

as Lucene (since 8.0) and bm25s's "lucene" method compute it.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vectorforge.errors import CorruptionError, InvalidParameter
from vectorforge.storage import fsio
from vectorforge.types import SparseVector

__all__ = ["BM25Params", "CorpusStats", "SparseIndex", "top_with_ties"]


@dataclass(frozen=True)
class BM25Params:
    """Lucene's defaults."""

    k1: float = 1.2
    b: float = 0.75

    def __post_init__(self) -> None:
        if not (0 <= self.k1 <= 10 and 0 <= self.b <= 1):
            raise InvalidParameter(f"BM25 needs 0 <= k1 <= 10 and 0 <= b <= 1, not k1={self.k1}, b={self.b}")


@dataclass
class CorpusStats:
    """What BM25 scores depend on, summed over every segment and shard that holds documents."""

    docs: int = 0
    total_length: float = 0.0
    df: dict[int, int] = field(default_factory=dict)

    def merged(self, other: CorpusStats) -> CorpusStats:
        df = dict(self.df)
        for term, n in other.df.items():
            df[term] = df.get(term, 0) + n
        return CorpusStats(self.docs + other.docs, self.total_length + other.total_length, df)

    @property
    def avg_length(self) -> float:
        return self.total_length / self.docs if self.docs else 0.0

    def idf(self, term: int) -> float:
        df = self.df.get(term, 0)
        return math.log(1 + (self.docs - df + 0.5) / (df + 0.5))


@dataclass(frozen=True)
class _Lists:
    """Term-major postings of every row at one moment: built whole, then published at once, so that
    readers running side by side never mix two builds."""

    rows: np.ndarray  # the posting rows (int64, as numpy indexes), term by term
    values: np.ndarray  # their values (float32: term counts, exact below 2**24)
    lengths: np.ndarray  # each row's length (sum of its values)
    has: np.ndarray  # rows that hold a vector
    where: dict[int, tuple[int, int]]  # term -> its postings' (start, end)
    docs: int  # rows that hold a vector, and the sum of their lengths (the stats of all rows)
    total_length: float

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        span = self.where.get(term)
        if span is None:
            return self.rows[:0], self.values[:0]
        return self.rows[span[0] : span[1]], self.values[span[0] : span[1]]


@dataclass(frozen=True)
class _Rows:
    """Every row of a segment, row-major: its length (-1: no vector), where it starts, and all the
    rows' indices and values end to end."""

    lengths: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    starts: np.ndarray


class SparseIndex:
    """The inverted lists of one segment's sparse vectors; rows without one hold nothing."""

    kind: ClassVar[str] = "inverted"
    vector_kinds: ClassVar[frozenset[str]] = frozenset({"sparse"})
    vectors_on_disk: ClassVar[bool] = False

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """RAM for `n` rows of `dim` non-zero entries each over `params["vocabulary"]` distinct terms
        (default: n * dim): the rows' entries (12 bytes each: term id, count), the term-major
        postings (12 bytes each: row, count), ~33 bytes a row and ~200 bytes a term (the term
        table); the tf parts that queries cache add up to 4 bytes a posting."""
        vocabulary = int(params.get("vocabulary", n * dim))
        return 24 * n * dim + 33 * n + 200 * min(vocabulary, n * dim)

    def __init__(self) -> None:
        # The rows, row-major and flat (no object per row): chunks as added, joined on first use.
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (lengths, indices, values)
        self._flat: _Rows | None = None
        self._compiled: _Lists | None = None
        self._build = threading.Lock()
        self._parts: _TermParts | None = None
        self._n = 0

    @property
    def ntotal(self) -> int:
        return self._n

    def add(self, vectors: Sequence[SparseVector | None]) -> None:
        lengths = np.asarray([-1 if v is None else len(v) for v in vectors], dtype=np.int64)
        present = [v for v in vectors if v is not None]
        indices = np.concatenate(
            [np.asarray(v.indices, np.int64) for v in present] or [np.empty(0, np.int64)]
        )
        values = np.concatenate(
            [np.asarray(v.values, np.float32) for v in present] or [np.empty(0, np.float32)]
        )
        with self._build:
            self._chunks.append((lengths, indices, values))
            self._n += len(vectors)
            self._flat = None
            self._compiled = None

    def _rows(self) -> _Rows:
        """Every row, flat (built on first use after a change, published whole)."""
        found = self._flat
        if found is not None:
            return found
        with self._build:
            return self._rows_locked()

    def _rows_locked(self) -> _Rows:
        if self._flat is None:
            if len(self._chunks) == 1:  # as loaded, or joined before: no copy
                lengths, indices, values = self._chunks[0]
            else:
                lengths = np.concatenate([c[0] for c in self._chunks] or [np.empty(0, np.int64)])
                indices = np.concatenate([c[1] for c in self._chunks] or [np.empty(0, np.int64)])
                values = np.concatenate([c[2] for c in self._chunks] or [np.empty(0, np.float32)])
                self._chunks = [(lengths, indices, values)] if len(lengths) else []
            starts = np.concatenate(([0], np.cumsum(np.clip(lengths, 0, None))[:-1])).astype(np.int64)
            self._flat = _Rows(lengths, indices, values, starts[: len(lengths)])
        return self._flat

    def add_kept(self, vectors: Sequence[SparseVector | None]) -> None:
        """Rows as another sparse index keeps them (`add` transforms nothing here)."""
        self.add(vectors)

    def row(self, row: int) -> SparseVector | None:
        rows = self._rows()
        n = int(rows.lengths[row])
        if n < 0:
            return None
        start = int(rows.starts[row])
        return SparseVector(rows.indices[start : start + n], rows.values[start : start + n])

    def save(self, path: Path) -> None:
        """One file: each row's length (-1: no vector), then every row's indices and values."""
        rows = self._rows()
        write = functools.partial(np.savez, lengths=rows.lengths, indices=rows.indices, values=rows.values)
        fsio.write_with(path, lambda target: write(target))  # the name ends in .npz, so numpy keeps it

    @classmethod
    def load(cls, path: Path, rows: int) -> SparseIndex:
        """Read `save`'s file (every sealed segment of a collection with this vector has one)."""
        index = cls()
        try:
            with np.load(path, allow_pickle=False) as data:
                lengths, indices, values = data["lengths"], data["indices"], data["values"]
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptionError(f"sparse vectors {path.name} cannot be read: {exc}") from exc
        well_formed = (
            lengths.ndim == indices.ndim == values.ndim == 1
            and lengths.dtype == np.int64
            and indices.dtype == np.int64
            and values.dtype == np.float32
            and bool(np.all(lengths >= -1))
            and bool(np.all(np.isfinite(values)))
            and bool(np.all(values > 0))
        )
        total = int(np.clip(lengths, 0, None).sum()) if well_formed else -1
        if not well_formed or len(lengths) != rows or total != len(indices) or len(indices) != len(values):
            raise CorruptionError(f"sparse vectors {path.name} do not match the segment's {rows} rows")
        index._chunks = [(lengths, indices, values)] if rows else []
        index._n = rows
        return index

    def _lists(self) -> _Lists:
        """The postings, built on first use after a change (one build at a time, published whole)."""
        found = self._compiled
        if found is not None:
            return found
        with self._build:  # the rows and the lists they make, of one moment
            if self._compiled is not None:
                return self._compiled
            flat = self._rows_locked()
            counts = np.clip(flat.lengths, 0, None)
            nnz = int(counts.sum())
            row_of = np.repeat(
                np.arange(len(counts), dtype=np.int64), counts
            )  # intp: numpy indexes with it as is
            lengths = np.zeros(len(counts), dtype=np.float64)
            np.add.at(lengths, row_of, flat.values.astype(np.float64))  # each row's sum of counts
            order = np.argsort(flat.indices, kind="stable")
            terms, rows, values = flat.indices[order], row_of[order], flat.values[order]
            unique, starts = np.unique(terms, return_index=True)
            ends = np.append(starts[1:], nnz) if len(starts) else starts
            where = dict(zip(unique.tolist(), zip(starts.tolist(), ends.tolist(), strict=True), strict=True))
            has = counts > 0
            built = _Lists(rows, values, lengths, has, where, int(has.sum()), float(lengths[has].sum()))
            self._compiled = built
            return built

    def stats(self, terms: Sequence[int], live: np.ndarray | None = None) -> CorpusStats:
        """This segment's share of the corpus statistics, counting live rows only (all if None: then
        nothing is counted per query, the totals are the lists')."""
        lists = self._lists()
        df: dict[int, int] = {}
        if live is None:
            for term in set(int(t) for t in terms):
                start, end = lists.where.get(term, (0, 0))
                df[term] = end - start
            return CorpusStats(lists.docs, lists.total_length, df)
        has = lists.has & live[: len(lists.has)]
        for term in set(int(t) for t in terms):
            rows, _ = lists.postings(term)
            df[term] = int(np.count_nonzero(has[rows])) if len(rows) else 0
        return CorpusStats(int(np.count_nonzero(has)), float(lists.lengths[has].sum()), df)

    def bm25(
        self,
        query: SparseVector,
        stats: CorpusStats,
        k: int,
        mask: np.ndarray | None = None,
        params: BM25Params = BM25Params(),
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` rows by BM25 against the corpus `stats`, among `mask` (all if None), and every
        row tied with the k-th: (scores, rows), best first; only rows that share a term with the query."""
        lists = self._lists()
        n = len(lists.has)
        # float32 sums, as FAISS's scores: half the memory traffic of the scatter, the slow part
        scores = np.zeros(n, dtype=np.float32)
        if stats.docs == 0 or n == 0:
            return scores[:0], np.empty(0, dtype=np.int64)
        parts = self._term_parts(lists, stats.avg_length, params)
        for term, weight in zip(query.indices.tolist(), query.values.tolist(), strict=True):
            span = lists.where.get(int(term))
            if span is not None:
                factor = np.float32(weight * stats.idf(int(term)))
                np.add.at(scores, lists.rows[span[0] : span[1]], parts.of(int(term), span) * factor)
        return _top(scores, k, mask)

    def _term_parts(self, lists: _Lists, avg_length: float, params: BM25Params) -> _TermParts:
        """The per-posting tf parts under these totals, kept while the lists and totals stay."""
        key = (avg_length, params.k1, params.b)
        found = self._parts
        if found is not None and found.lists is lists and found.key == key:
            return found
        norm = params.k1 * (1 - params.b + params.b * lists.lengths / avg_length)
        found = self._parts = _TermParts(lists, key, norm)
        return found

    def dot(
        self, query: SparseVector, k: int, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` rows by dot product with `query` (a learned sparse model's scores), and ties."""
        lists = self._lists()
        scores = np.zeros(len(lists.has), dtype=np.float32)
        for term, weight in zip(query.indices.tolist(), query.values.tolist(), strict=True):
            rows, values = lists.postings(int(term))
            if len(rows):
                np.add.at(scores, rows, (values * weight).astype(np.float32))
        return _top(scores, k, mask)


class _TermParts:
    """tf / (tf + k1 * (1 - b + b * len / avglen)) of each posting, by term, computed the first time
    a query has the term and kept while the lists and the totals stay (at most as many values as
    there are postings: the cache never more than doubles the lists)."""

    def __init__(self, lists: _Lists, key: tuple[float, float, float], norm: np.ndarray) -> None:
        self.lists, self.key, self.norm = lists, key, norm
        self._by_term: dict[int, np.ndarray] = {}
        self._room = len(lists.rows)

    def of(self, term: int, span: tuple[int, int]) -> np.ndarray:
        found = self._by_term.get(term)
        if found is None:
            rows, tf = self.lists.rows[span[0] : span[1]], self.lists.values[span[0] : span[1]]
            found = (tf / (tf + self.norm[rows])).astype(np.float32)
            if len(found) <= self._room:  # dict writes are atomic: two readers at worst compute twice
                self._by_term[term] = found
                self._room -= len(found)
        return found


def _top(scores: np.ndarray, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows that score above 0 among `mask`, the best `k` and every tie with the k-th: the k-th
    best score is found among the scoring rows only (a partition of the whole array, most of it
    zeros, is several times slower: bench/case_studies.py's filtered BM25), then only the rows at or
    above it are sorted."""
    if mask is not None:
        scores = np.where(mask[: len(scores)], scores, 0.0)
    chosen = np.flatnonzero(scores > 0)
    if len(chosen) > k:
        scoring = scores[chosen]
        kth = float(np.partition(scoring, len(scoring) - k)[len(scoring) - k])
        chosen = chosen[scoring >= kth]
    order = np.lexsort((chosen, -scores[chosen]))
    chosen = chosen[order]
    return scores[chosen], chosen


def top_with_ties(scores: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `k` of `candidates` by score, and every other one tied with the k-th: which of the
    tied rows make the cut is the caller's to decide, by point id (the merge's order), never by row.
    Best first; ties by row."""
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        threshold = scores[candidates[part]].min()
        candidates = candidates[scores[candidates] >= threshold]
    order = np.lexsort((candidates, -scores[candidates]))
    chosen = candidates[order]
    return scores[chosen], chosen
