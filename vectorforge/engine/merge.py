"""Top-k merging of ranked lists: segments within a collection, and (later) shards within a cluster.

One function serves both so that the rules are the same everywhere: each source returns its own
top `k + offset`; the merge keeps each id once (its best score), orders by score (higher is better)
with the id as a deterministic tie-break, and only then skips `offset`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from vectorforge.types import Hit, PointId

__all__ = ["hit_order", "merge_topk"]


def hit_order(hit: Hit) -> tuple[float, bool, PointId]:
    """Sort key: best score first, then ints before strs, then by id (the same tie-break everywhere)."""
    return (-hit.score, isinstance(hit.id, str), hit.id)


def merge_topk(
    sources: Sequence[Iterable[Hit]], k: int, offset: int = 0, *, disjoint: bool = False
) -> list[Hit]:
    """The global hits `offset .. offset + k` of several sources, each id at most once.

    Args:
        sources: each source's own best `k + offset` hits, in any order, scores comparable across sources.
        k: how many hits to return.
        offset: how many of the best hits to skip (applied after the merge, never per source).
        disjoint: the caller guarantees that no id appears twice (segments of one collection), which
            skips de-duplication. Shards during resharding are not disjoint.
    """
    if disjoint:
        if len(sources) == 1:
            only = sources[0] if isinstance(sources[0], list) else list(sources[0])
            if _strictly_descending(only):  # already in final order
                return only[offset : offset + k]
            return sorted(only, key=hit_order)[offset : offset + k]
        return sorted(itertools.chain.from_iterable(sources), key=hit_order)[offset : offset + k]
    best: dict[PointId, Hit] = {}
    for source in sources:
        for hit in source:
            seen = best.get(hit.id)
            if seen is None or hit.score > seen.score:
                best[hit.id] = hit
    ranked = sorted(best.values(), key=hit_order)
    return ranked[offset : offset + k]


def _strictly_descending(hits: list[Hit]) -> bool:
    prev = float("inf")
    for hit in hits:
        if not hit.score < prev:
            return False
        prev = hit.score
    return True
