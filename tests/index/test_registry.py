"""The index registry: every kind is there with what the engine and the planner need of it, and each
kind's memory estimate is close to what FAISS really holds."""

from __future__ import annotations

import tracemalloc
from typing import Any

import faiss
import numpy as np
import pytest

from vectorforge.errors import InvalidParameter
from vectorforge.index import (
    MultiVectorIndex,
    SparseIndex,
    estimate_bytes,
    index_class,
    index_kinds,
    new_index,
)
from vectorforge.types import Metric, SparseVector


def test_every_dense_kind_is_registered_with_its_traits() -> None:
    assert index_kinds("dense") == ["flat", "hnsw", "ivfflat", "ivfpq"]
    assert index_kinds("sparse") == ["inverted"]
    assert index_kinds("multi") == ["flat", "muvera", "plaid"]  # muvera, plaid: registered by multivector/
    assert index_class("flat", "multi") is MultiVectorIndex and index_class("flat") is not MultiVectorIndex
    on_disk = [index_class(k).vectors_on_disk for k in ("flat", "hnsw", "ivfflat", "ivfpq")]
    assert on_disk == [  # the IVF kinds map their full vectors from the segment files
        False,
        False,
        True,
        True,
    ]
    with pytest.raises(InvalidParameter, match="unknown for multi vectors; known: flat, muvera, plaid"):
        index_class("hnsw", "multi")


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("flat", {}),
        ("hnsw", {"M": 16}),
        ("hnsw", {"M": 48}),
        ("ivfflat", {}),
        ("ivfpq", {"m": 8}),
        ("ivfpq", {"m": 16, "nbits": 8}),
        ("hnsw", {"quantization": "fp16"}),
        ("hnsw", {"quantization": "sq8"}),
        ("hnsw", {"quantization": "rabitq"}),
        ("ivfflat", {"quantization": "sq8"}),
        ("ivfflat", {"quantization": "rabitq"}),
        ("ivfflat", {"quantization": "sq8", "coarse": "hnsw"}),
    ],
)
def test_the_memory_estimate_is_within_a_quarter_of_faiss(kind: str, params: dict[str, Any]) -> None:
    n, dim = 6_000, 64
    data = np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)
    index = new_index(kind, dim, Metric.L2, dict(params))
    index.add(data)
    index.seal()
    held = len(faiss.serialize_index(index.index))  # what FAISS keeps in memory, as bytes
    estimate = estimate_bytes(kind, n, dim, params)
    assert 0.75 <= estimate / held <= 1.33, (kind, params, estimate, held)


def test_the_estimate_parses_the_parameters_as_the_index_does() -> None:
    with pytest.raises(InvalidParameter, match="unknown parameters"):
        estimate_bytes("hnsw", 10, 8, {"Mm": 3})


@pytest.mark.parametrize(("n", "nnz", "vocabulary"), [(20_000, 40, 100_000), (40_000, 8, 2_000)])
def test_the_sparse_estimate_is_within_a_quarter_of_what_python_holds(
    n: int, nnz: int, vocabulary: int
) -> None:
    rng = np.random.default_rng(1)
    tracemalloc.start()
    index = SparseIndex()
    index.add(
        [
            SparseVector(np.sort(rng.choice(vocabulary, nnz, replace=False)), np.ones(nnz, np.float32))
            for _ in range(n)
        ]
    )
    index.stats([1])  # builds the postings
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    estimate = estimate_bytes("inverted", n, nnz, {"vocabulary": vocabulary}, vector_kind="sparse")
    assert 0.75 <= estimate / held <= 1.33, (estimate, held)


def test_the_multi_estimate_counts_every_token() -> None:
    rng = np.random.default_rng(2)
    index = MultiVectorIndex(32)
    index.add([rng.normal(size=(20, 32)) for _ in range(500)])
    tokens, starts = index._matrix()
    held = tokens.nbytes + starts.nbytes + 8 * index.ntotal
    estimate = estimate_bytes("flat", 500, 32, {"tokens_per_point": 20}, vector_kind="multi")
    assert 0.9 <= estimate / held <= 1.1
