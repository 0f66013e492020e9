"""BM25 against bm25s (the oracle: same tokenization, Lucene's formula) on SciFact, and the global
statistics property: an index split into parts, scored with the merged statistics, equals one index."""

from __future__ import annotations

import itertools
from functools import cache

import bm25s
import numpy as np
import pytest
import Stemmer
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import shared_path
from vectorforge.datasets.beir import load_beir
from vectorforge.embed.analyzer import get_analyzer
from vectorforge.index.sparse import BM25Params, CorpusStats, SparseIndex
from vectorforge.types import SparseVector

ANALYZER = get_analyzer("english")


@cache
def scifact() -> tuple[list[str], list[str], list[str]]:
    data = load_beir(shared_path() / "data" / "scifact", split="test")
    ids = list(data.corpus)
    return ids, [data.doc_text(i) for i in ids], list(data.queries.values())


def _index(texts: list[str]) -> tuple[SparseIndex, list[SparseVector]]:
    vectors = ANALYZER.encode(texts)
    index = SparseIndex()
    index.add(vectors)
    return index, vectors


def _scores(index: SparseIndex, query: str, k: int, stats: CorpusStats | None = None) -> dict[int, float]:
    q = ANALYZER.counts(query)
    stats = stats or index.stats(q.indices.tolist())
    scores, rows = index.bm25(q, stats, k, params=BM25Params(k1=1.2, b=0.75))
    return dict(zip(rows.tolist(), scores.tolist(), strict=True))


@pytest.mark.slow
def test_bm25_equals_bm25s_on_scifact() -> None:
    _, docs, queries = scifact()
    index, _ = _index(docs)
    stemmer = Stemmer.Stemmer("english")
    stop = sorted(ANALYZER.stopwords)
    reference = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    reference.index(
        bm25s.tokenize(docs, stopwords=stop, stemmer=stemmer, show_progress=False), show_progress=False
    )
    checked = 0
    for query in queries[:100]:
        ours = _scores(index, query, 10)
        tokens = bm25s.tokenize(
            [query], stopwords=stop, stemmer=stemmer, show_progress=False, return_ids=False
        )[0]
        theirs = reference.get_scores(tokens) if tokens else np.zeros(len(docs))
        top = np.argsort(-theirs, kind="stable")[:10]
        expected = {int(r): float(theirs[r]) for r in top if theirs[r] > 0}
        assert set(ours) == set(expected) or np.isclose(min(ours.values()), min(expected.values()), atol=1e-5)
        for row, score in ours.items():
            assert abs(score - float(theirs[row])) <= 1e-5 * max(1.0, score), (query, row, score, theirs[row])
        checked += 1
    assert checked == 100


corpora = st.lists(
    st.lists(st.sampled_from(["apple", "banana", "cherry", "date", "fig", "grape"]), max_size=8),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    docs=corpora,
    parts=st.integers(min_value=1, max_value=4),
    query=st.lists(st.sampled_from(["apple", "fig", "grape", "kiwi"]), min_size=1, max_size=4),
    dead=st.sets(st.integers(min_value=0, max_value=29)),
)
def test_scores_with_merged_statistics_equal_one_index(
    docs: list[list[str]], parts: int, query: list[str], dead: set[int]
) -> None:
    """The distributed BM25 property: split the documents over parts (segments, shards), gather
    the statistics from every part, score each part with the totals: one index's scores exactly."""
    texts = [" ".join(d) for d in docs]
    whole, _ = _index(texts)
    live = np.asarray([i not in dead for i in range(len(texts))])
    q = ANALYZER.counts(" ".join(query))
    terms = q.indices.tolist()
    one_scores, one_rows = whole.bm25(q, whole.stats(terms, live), len(texts), mask=live)
    expected = dict(zip(one_rows.tolist(), one_scores.tolist(), strict=True))
    bounds = np.linspace(0, len(texts), parts + 1).astype(int)
    pieces = []
    for lo, hi in itertools.pairwise(bounds):
        piece, _ = _index(texts[lo:hi])
        pieces.append((lo, piece, live[lo:hi]))
    stats = CorpusStats()
    for _, piece, piece_live in pieces:
        stats = stats.merged(piece.stats(terms, piece_live))
    found: dict[int, float] = {}
    for lo, piece, piece_live in pieces:
        scores, rows = piece.bm25(q, stats, len(texts), mask=piece_live)
        found.update({lo + r: s for r, s in zip(rows.tolist(), scores.tolist(), strict=True)})
    assert found.keys() == expected.keys()
    for row, score in expected.items():
        assert found[row] == pytest.approx(score, rel=1e-12)


def test_only_documents_sharing_a_term_are_returned_and_ties_go_by_row() -> None:
    index, _ = _index(["apple pie", "banana split", "apple pie", "cherry"])
    q = ANALYZER.counts("apple")
    scores, rows = index.bm25(q, index.stats(q.indices.tolist()), 10)
    assert rows.tolist() == [0, 2] and scores[0] == scores[1] > 0


def test_plain_dot_for_learned_sparse_vectors() -> None:
    index = SparseIndex()
    index.add(
        [
            SparseVector(np.array([1, 5]), np.array([0.5, 2.0])),
            None,
            SparseVector(np.array([5]), np.array([1.0])),
        ]
    )
    scores, rows = index.dot(SparseVector(np.array([5, 9]), np.array([2.0, 1.0])), 5)
    assert rows.tolist() == [0, 2] and scores.tolist() == [4.0, 2.0]
