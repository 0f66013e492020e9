"""Chooses, per segment, between the ANN index and exact search.

A graph or IVF walk restricted to a small fraction of the rows loses recall (FAISS HNSW with an ID
selector: 0.89 recall@10 at 10% selectivity, 0.67 at 1%, measured here), while exact search over few
rows is both exact and cheap. Qdrant's query planner makes the same choice by cardinality.
"""

from __future__ import annotations

from vectorforge.types import IndexKind

__all__ = ["FULL_SCAN_POINTS", "MIN_ANN_SELECTIVITY", "use_exact"]

FULL_SCAN_POINTS = 10_000
"""At or below this many rows left by a filter (or deletes), scan them exactly."""

MIN_ANN_SELECTIVITY = 0.08
"""Below this fraction of a segment's rows, scan exactly (bench/filtered.py measures the curve)."""


def use_exact(kind: IndexKind, n_allowed: int, n_rows: int, filtered: bool) -> bool:
    """True if the segment should be searched exactly for this request."""
    if kind is IndexKind.FLAT:
        return True
    if not filtered:
        return False
    return n_allowed <= FULL_SCAN_POINTS or n_allowed < MIN_ANN_SELECTIVITY * n_rows
