"""Fusion of ranked lists from several vectors of one query (dense and BM25, say): pure functions
over plain `{id: score}` runs, applied after each vector's global merge (never per segment or
shard, where a score means less).

- `rrf`: reciprocal rank fusion (Cormack et al. 2009): sum of 1 / (k + rank), k = 60; scores are
  ignored, only ranks count, so lists of any scale mix.
- `dbsf`: distribution-based score fusion (Qdrant's DBSF): each list's scores normalized by its
  mean +- 3 standard deviations into [0, 1], then summed.
- `weighted`: min-max normalized scores, summed with weights.

Each returns `{id: fused score}` best first (ties by id, ints before strs, as everywhere else).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from vectorforge.errors import InvalidParameter
from vectorforge.types import PointId

__all__ = ["FUSIONS", "check_weights", "dbsf", "fuse", "rrf", "weighted"]

Run = Mapping[PointId, float]


def _ranked(run: Run) -> list[PointId]:
    return sorted(run, key=lambda pid: (-run[pid], isinstance(pid, str), pid))


def _ordered(scores: dict[PointId, float]) -> dict[PointId, float]:
    return {pid: scores[pid] for pid in _ranked(scores)}


def rrf(runs: Sequence[Run], k: int = 60) -> dict[PointId, float]:
    if k < 1:
        raise InvalidParameter(f"rrf needs k >= 1, not {k}")
    fused: dict[PointId, float] = {}
    for run in runs:
        for rank, pid in enumerate(_ranked(run), start=1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return _ordered(fused)


def dbsf(runs: Sequence[Run]) -> dict[PointId, float]:
    fused: dict[PointId, float] = {}
    for run in runs:
        if not run:
            continue
        values = list(run.values())
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        low, high = mean - 3 * std, mean + 3 * std
        for pid, score in run.items():
            normalized = 0.5 if high == low else min(1.0, max(0.0, (score - low) / (high - low)))
            fused[pid] = fused.get(pid, 0.0) + normalized
    return _ordered(fused)


def weighted(runs: Sequence[Run], weights: Sequence[float] | None = None) -> dict[PointId, float]:
    weights = list(weights) if weights is not None else [1.0] * len(runs)
    if len(weights) != len(runs) or any(w < 0 for w in weights):
        raise InvalidParameter(f"weighted fusion needs one non-negative weight per list, not {weights}")
    fused: dict[PointId, float] = {}
    for run, weight in zip(runs, weights, strict=True):
        if not run:
            continue
        low, high = min(run.values()), max(run.values())
        for pid, score in run.items():
            normalized = 1.0 if high == low else (score - low) / (high - low)
            fused[pid] = fused.get(pid, 0.0) + weight * normalized
    return _ordered(fused)


FUSIONS = ("rrf", "dbsf", "weighted")


def check_weights(weights: object) -> None:
    """Fusion weights as a caller gives them: None, or a list of finite non-negative numbers."""
    if weights is not None and not (
        isinstance(weights, list | tuple)
        and all(type(w) in (int, float) and math.isfinite(w) and w >= 0 for w in weights)
    ):
        raise InvalidParameter(f"weights must be a list of finite non-negative numbers, not {weights!r}")


def fuse(
    runs: Sequence[Run], method: str = "rrf", *, k: int = 60, weights: Sequence[float] | None = None
) -> dict[PointId, float]:
    """Fuse `runs` with `method` ("rrf", "dbsf" or "weighted")."""
    if method == "rrf":
        return rrf(runs, k)
    if method == "dbsf":
        return dbsf(runs)
    if method == "weighted":
        return weighted(runs, weights)
    raise InvalidParameter(f"fusion {method!r} is unknown; use one of {', '.join(FUSIONS)}")
