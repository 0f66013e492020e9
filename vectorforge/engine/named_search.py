"""Searches of the named sparse and multi vectors of an engine collection: BM25 (with the whole
collection's statistics, or a sharded collection's, passed in) or a dot product over each
segment's inverted lists, and exact MaxSim over its token matrices; merged over segments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vectorforge.engine.filters import Where, parse_filter
from vectorforge.engine.merge import merge_topk
from vectorforge.engine.named import check_dense, check_sparse, check_tokens
from vectorforge.engine.parts import CollectionState
from vectorforge.engine.segment import Segment
from vectorforge.engine.validate import check_k_offset
from vectorforge.errors import InvalidParameter
from vectorforge.index.dense_rows import DenseRows
from vectorforge.index.maxsim import MultiVectorIndex
from vectorforge.index.sparse import BM25Params, CorpusStats, SparseIndex
from vectorforge.types import Hit, check_consistency

__all__ = ["NamedSearch"]


class NamedSearch(CollectionState):
    """Mixed into `Collection` (see engine/parts.py)."""

    def search_sparse(
        self,
        using: str,
        vector: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
        stats: CorpusStats | None = None,
    ) -> list[Hit]:
        """The top `k` points of sparse vector `using` for `vector`: BM25 with the statistics of the
        whole collection (every segment's live points; a sharded collection passes every shard's
        as `stats`), or a dot product; `filter` as in `search`."""
        spec = self.sparse_spec(using)
        check_consistency(consistency)
        k, offset = check_k_offset(k, offset)
        where = parse_filter(filter)
        query = check_sparse(vector, spec, "the sparse query")
        bm25 = BM25Params(spec.k1, spec.b)
        with self._lock.read():
            self._check_open()
            if stats is None and spec.modifier == "idf":
                stats = self._sparse_stats(using, query.indices.tolist())

            def score(seg: Segment, mask: np.ndarray | None, fetch: int) -> tuple[np.ndarray, np.ndarray]:
                if stats is not None:
                    return _sparse(seg, using).bm25(query, stats, fetch, mask, bm25)
                return _sparse(seg, using).dot(query, fetch, mask)

            return self._search_named(score, k, offset, where, with_payload, with_vectors)

    def sparse_stats(self, using: str, terms: Sequence[int]) -> CorpusStats:
        """This collection's share of BM25's statistics for `terms` (its live points only)."""
        self.sparse_spec(using)
        with self._lock.read():
            self._check_open()
            return self._sparse_stats(using, [int(t) for t in terms])

    def _sparse_stats(self, using: str, terms: list[int]) -> CorpusStats:
        stats = CorpusStats()
        for seg in self._segments:
            if seg.n_live:  # every row live: the lists' own totals, nothing counted per query
                live = None if seg.n_live == seg.n else seg.live
                stats = stats.merged(_sparse(seg, using).stats(terms, live))
        return stats

    def _search_named(
        self,
        score: Callable[[Segment, np.ndarray | None, int], tuple[np.ndarray, np.ndarray]],
        k: int,
        offset: int,
        where: Where | None,
        with_payload: bool,
        with_vectors: bool,
    ) -> list[Hit]:
        """The top `k` after `offset` of `score` (each segment's best rows among a mask) over every
        segment, merged; read lock held."""
        sources = []
        for seg, mask, allowed in self._masks(where):
            if allowed:  # mask None: every row of the segment is live and allowed
                scores, rows = score(seg, mask, k + offset)
                sources.append(seg.hits([float(x) for x in scores.tolist()], rows.tolist()))
        hits = merge_topk(sources, k, offset, disjoint=True)
        for hit in hits:
            seg, row = self._where[hit.id]
            if with_payload:
                hit.payload = seg.payload(row)
            if with_vectors:
                hit.vector = seg.vector(row)
        return hits

    def search_multi(
        self,
        using: str,
        query: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """The top `k` points of multi vector `using` by MaxSim with `query` (tokens x dim), exact
        or through its PLAID index (`params`: ncells, centroid_score_threshold, ndocs, rescore,
        exact) or MUVERA first stage (candidates, ef_search, exact); points without that vector are
        left out; `filter` as in `search`."""
        tokens = check_tokens(query, self.multi_spec(using), "the multi-vector query")

        def score(seg: Segment, mask: np.ndarray | None, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            index = seg.named[using]
            assert isinstance(index, MultiVectorIndex)
            return index.search(tokens, fetch, mask, params)

        return self._search_rows(score, k, offset, filter, with_payload, with_vectors, consistency)

    def search_dense(
        self,
        using: str,
        query: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """The top `k` points of dense vector `using` (not the first one) by exact search; points
        without that vector are left out; `filter` as in `search`."""
        spec = self.config.extra_dense.get(using)
        if spec is None:
            raise InvalidParameter(f"collection {self.name!r} has no second dense vector {using!r}")
        vector = check_dense(query, spec, "the query")

        def score(seg: Segment, mask: np.ndarray | None, fetch: int) -> tuple[np.ndarray, np.ndarray]:
            return _dense(seg, using).search(vector, fetch, mask)

        return self._search_rows(score, k, offset, filter, with_payload, with_vectors, consistency)

    def _search_rows(
        self,
        score: Callable[[Segment, np.ndarray | None, int], tuple[np.ndarray, np.ndarray]],
        k: int,
        offset: int,
        filter: dict[str, Any] | None,
        with_payload: bool,
        with_vectors: bool,
        consistency: str | None,
    ) -> list[Hit]:
        """`_search_named` under the read lock, after the arguments' checks."""
        check_consistency(consistency)
        k, offset = check_k_offset(k, offset)
        where = parse_filter(filter)
        with self._lock.read():
            self._check_open()
            return self._search_named(score, k, offset, where, with_payload, with_vectors)


def _dense(seg: Segment, using: str) -> DenseRows:
    index = seg.named[using]
    assert isinstance(index, DenseRows)
    return index


def _sparse(seg: Segment, using: str) -> SparseIndex:
    index = seg.named[using]
    assert isinstance(index, SparseIndex)
    return index
