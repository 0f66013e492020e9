"""Placeholder until the statistics module lands (the metrics branch replaces this file)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def bootstrap_ci(
    values: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if len(arr) < 2 or np.all(arr == arr[0]):
        m = float(arr.mean()) if len(arr) else 0.0
        return m, m
    res = stats.bootstrap(
        (arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile", rng=seed
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


class _Test:
    def __init__(self, p: float, d: float) -> None:
        self.p_value, self.effect_size = p, d


def paired_test(a: Any, b: Any, test: str = "t") -> _Test:
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = b - a
    if len(diff) < 2 or np.all(diff == diff[0]):
        return _Test(1.0 if np.all(diff == 0) else 0.0, 0.0)
    p = float(stats.ttest_rel(b, a).pvalue)
    return _Test(p, float(diff.mean() / diff.std(ddof=1)))


def holm(p: list[float]) -> list[float]:
    order = sorted(range(len(p)), key=lambda i: p[i])
    out = [0.0] * len(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out
