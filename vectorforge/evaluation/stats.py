"""Statistics over per-query scores: bootstrap intervals, paired tests between two runs, Holm's
correction, effect sizes. scipy does the work; this module fixes the conventions.

Two runs are compared on the same queries, so the tests are paired: the unit is a query's
difference `b - a`. Scores come as {qid: score} dicts (paired by query id; runs over different
queries are refused) or as arrays already in the same query order. The effect size is Cohen's d
of those differences (d_z = mean / sd), reported beside the p-value because with many queries a
negligible change can be "significant".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from vectorforge.errors import InvalidParameter

__all__ = ["PairedTest", "bootstrap_ci", "compare", "holm", "paired_test"]

TESTS = ("t", "randomization")


def bootstrap_ci(
    values: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` (a sequence, or {qid: score});
    equal values, or one, give a zero-width one."""
    arr = _array(values)
    if not 0 < confidence < 1:
        raise InvalidParameter(f"confidence must be between 0 and 1, got {confidence}")
    if len(arr) == 0:
        return 0.0, 0.0
    if len(arr) < 2 or np.all(arr == arr[0]):
        return float(arr.mean()), float(arr.mean())
    res = stats.bootstrap(
        (arr,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass(frozen=True)
class PairedTest:
    """Run b against run a on the same n queries."""

    test: str
    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean of b - a
    ci_low: float | None  # bootstrap interval of the mean difference (None: not asked for)
    ci_high: float | None
    p_value: float  # two-sided
    effect_size: float | None  # Cohen's d of the paired differences; None if they have no spread

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def paired_test(
    a: Any,
    b: Any,
    *,
    test: str = "t",
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    interval: bool = True,
) -> PairedTest:
    """Paired two-sided test of "b and a have the same mean": Student's paired t-test ("t"), or
    Fisher's randomization test ("randomization": the sign of each query's difference flipped at
    random; exact when 2**n <= n_resamples). `a` and `b`: {qid: score} dicts of the same queries,
    or sequences in the same query order. `interval=False` leaves out the bootstrap interval of
    the difference (ci_low, ci_high are None)."""
    x, y = _paired(a, b)
    if len(x) != len(y):
        raise InvalidParameter(f"paired samples need equal lengths, got {len(x)} and {len(y)}")
    if test not in TESTS:
        raise InvalidParameter(f"test {test!r} is not one of {', '.join(TESTS)}")
    diff = y - x
    n = len(diff)
    mean = float(diff.mean()) if n else 0.0
    sd = float(diff.std(ddof=1)) if n > 1 else 0.0
    flat = sd <= 1e-12 * max(1.0, abs(mean))  # rounding noise is no spread
    if np.all(diff == 0) or n < 2:
        p = 1.0  # identical runs; or one query, which no test can tell from chance
    elif test == "t" and flat:
        # Every query moved by the same amount: t is infinite, but with few queries that proves
        # little. The exact sign-flip p (2 of 2**n flips are as extreme) is what n queries can show.
        p = min(1.0, 2.0 / 2.0**n)
    elif test == "t":
        p = float(stats.ttest_rel(y, x).pvalue)
    else:
        p = float(
            stats.permutation_test(
                (x, y),
                _mean_difference,
                permutation_type="samples",
                vectorized=True,
                n_resamples=n_resamples,
                alternative="two-sided",
                rng=np.random.default_rng(seed),
            ).pvalue
        )
    # The interval costs ~30x the t-test (2,000 resamples): callers that only decide skip it.
    low, high = bootstrap_ci(diff, confidence=confidence, seed=seed) if interval else (None, None)
    return PairedTest(
        test,
        n,
        float(x.mean()) if n else 0.0,
        float(y.mean()) if n else 0.0,
        mean,
        low,
        high,
        min(p, 1.0),
        0.0 if mean == 0 else None if flat else mean / sd,
    )


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(y - x, axis=axis)  # type: ignore[no-any-return]


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order:
    reject where adjusted < alpha and the family-wise error stays at most alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare(
    per_query_a: Mapping[str, Mapping[str, float]],
    per_query_b: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    test: str = "t",
    seed: int = 0,
) -> PairedTest:
    """Two runs' per-query scores (`evaluate(..., per_query=True)`) compared on `metric`. Both must
    hold the same queries: a paired test pairs each query with itself."""
    _same_queries(per_query_a, per_query_b)
    qids = sorted(per_query_a)
    try:
        a = [per_query_a[q][metric] for q in qids]
        b = [per_query_b[q][metric] for q in qids]
    except KeyError:
        raise InvalidParameter(f"metric {metric!r} is not in both runs' scores") from None
    return paired_test(a, b, test=test, seed=seed)


def _same_queries(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    if set(a) != set(b):
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise InvalidParameter(
            f"the runs scored different queries ({len(only_a)} only in a, e.g. {only_a[:3]}; "
            f"{len(only_b)} only in b, e.g. {only_b[:3]}); evaluate both on the same qrels"
        )


def _paired(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two score arrays in one query order: dicts are paired by query id."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        _same_queries(a, b)
        qids = sorted(a)
        return _array([a[q] for q in qids]), _array([b[q] for q in qids])
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        raise InvalidParameter(
            "pair two {qid: score} dicts, or two sequences in the same query order, not one of each"
        )
    return _array(a), _array(b)


def _array(values: Any) -> np.ndarray:
    if isinstance(values, Mapping):
        values = list(values.values())
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidParameter(f"expected a flat sequence of scores, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidParameter("scores must be finite numbers")
    return arr
