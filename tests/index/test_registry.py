"""The index registry: every kind is there with what the engine and the planner need of it, and each
kind's memory estimate is close to what FAISS really holds."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from vectorforge.errors import InvalidParameter
from vectorforge.index import estimate_bytes, index_class, index_kinds, new_index
from vectorforge.types import Metric


def test_every_dense_kind_is_registered_with_its_traits() -> None:
    assert index_kinds("dense") == ["flat", "hnsw", "ivfflat", "ivfpq"]
    assert index_kinds("multi") == []
    on_disk = [index_class(k).vectors_on_disk for k in ("flat", "hnsw", "ivfflat", "ivfpq")]
    assert on_disk == [  # the IVF kinds map their full vectors from the segment files
        False,
        False,
        True,
        True,
    ]
    with pytest.raises(InvalidParameter, match="index 'plaid' is unknown"):
        index_class("plaid")


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("flat", {}),
        ("hnsw", {"M": 16}),
        ("hnsw", {"M": 48}),
        ("ivfflat", {}),
        ("ivfpq", {"m": 8}),
        ("ivfpq", {"m": 16, "nbits": 8}),
    ],
)
def test_the_memory_estimate_is_within_a_quarter_of_faiss(kind: str, params: dict[str, int]) -> None:
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
