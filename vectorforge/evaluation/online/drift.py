"""Query and corpus drift on fixed-size windows of embeddings, and PSI on one-dimensional signals.

`detect_drift(reference, current)` compares two windows of embeddings (rows) with four tests:

- `classifier_auc`: a logistic regression told to separate the two windows, scored by the AUC of its
  cross-validated probabilities (0.5: it cannot tell them apart). Alarm above `auc_threshold` (0.55);
  with `auc_permutations`, above the permutation null's 1 - alpha quantile if that is higher (small
  windows, where 0.55 is inside the noise).
- `mmd`: squared maximum mean discrepancy with an RBF kernel (median-heuristic bandwidth) on the
  embeddings reduced by a PCA fitted on the reference; p-value from a permutation test.
- `ks`: a two-sample Kolmogorov-Smirnov test per PCA component, Holm-corrected; reported.
- `centroid`: cosine distance between the windows' means, with a permutation p-value; reported.

The overall alarm is `classifier_auc` OR `mmd` (the two tests calibrated in bench/drift.py). Corpus
drift is the same call on the embeddings of inserted documents. `signal_drift` applies `psi` to the
one-dimensional signals of a search (top-1 score, distance to the nearest corpus vector, query length,
zero-result rate). Windows are small by design: a p-value over a huge sample flags any difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from scipy.spatial.distance import cosine
from scipy.special import rel_entr
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.multitest import multipletests

from vectorforge.errors import InvalidParameter

__all__ = ["DriftConfig", "DriftReport", "DriftTest", "detect_drift", "psi", "signal_drift"]

OVERALL_RULE = "classifier_auc or mmd"
SIGNALS = ("top1_score", "nearest_distance", "query_length", "zero_result")

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class DriftConfig:
    """Window size, thresholds and the randomness of the tests.

    Args:
        window: the most rows a window may have (windows are meant to be fixed-size; cut yours).
        min_rows: the fewest rows a window may have.
        auc_threshold: the classifier alarms when its AUC exceeds this (and the critical value).
        alpha: significance level of the MMD and centroid permutation tests and of the AUC's
            critical value.
        ks_alpha: family-wise level of the per-component KS tests (Holm).
        n_permutations: resamples of each permutation test.
        pca_components: components kept for MMD and KS (at most rows - 1 and the dimension).
        cv_folds: folds of the classifier's cross-validated predictions.
        auc_permutations: when > 0, the classifier also refits on this many label permutations
            (5 fits each) for a p-value, and alarms above the higher of `auc_threshold` and the
            null's 1 - alpha quantile. The fixed 0.55 is calibrated for windows of about 500 rows
            (bench/drift.py); on smaller windows it false-alarms more often, so use this there.
        psi_bins: quantile bins of the reference for PSI.
        psi_warn, psi_alarm: the conventional PSI levels (0.1 moderate, 0.25 significant shift).
        psi_epsilon: floor of a bin's share, so that an empty bin does not make PSI infinite.
        seed: seeds the folds, the PCA and the permutations; same seed, same report.
    """

    window: int = 500
    min_rows: int = 20
    auc_threshold: float = 0.55
    alpha: float = 0.01
    ks_alpha: float = 0.05
    n_permutations: int = 200
    pca_components: int = 20
    cv_folds: int = 5
    auc_permutations: int = 0
    psi_bins: int = 10
    psi_warn: float = 0.1
    psi_alarm: float = 0.25
    psi_epsilon: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("window", "min_rows", "n_permutations", "pca_components", "psi_bins"):
            if getattr(self, name) < 1:
                raise InvalidParameter(f"DriftConfig.{name} must be >= 1, not {getattr(self, name)}")
        if self.auc_permutations < 0:
            raise InvalidParameter(f"DriftConfig.auc_permutations must be >= 0, not {self.auc_permutations}")
        if self.cv_folds < 2:
            raise InvalidParameter(f"DriftConfig.cv_folds must be >= 2, not {self.cv_folds}")
        if self.min_rows < max(self.cv_folds, 3):
            raise InvalidParameter(
                f"DriftConfig.min_rows ({self.min_rows}) must be >= cv_folds and >= 3 "
                "(each fold needs rows of both windows)"
            )
        if self.window < self.min_rows:
            raise InvalidParameter(f"DriftConfig.window ({self.window}) is below min_rows ({self.min_rows})")
        for name in ("alpha", "ks_alpha"):
            if not 0 < getattr(self, name) < 1:
                raise InvalidParameter(f"DriftConfig.{name} must be in (0, 1), not {getattr(self, name)}")
        if not 0.5 <= self.auc_threshold < 1:
            raise InvalidParameter(f"DriftConfig.auc_threshold must be in [0.5, 1), not {self.auc_threshold}")
        if not 0 < self.psi_warn <= self.psi_alarm:
            raise InvalidParameter("DriftConfig needs 0 < psi_warn <= psi_alarm")
        if not 0 < self.psi_epsilon < 1:
            raise InvalidParameter(f"DriftConfig.psi_epsilon must be in (0, 1), not {self.psi_epsilon}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftTest:
    """One test's outcome. `p_value` is None for tests without one (PSI); `threshold` is what the
    statistic (or, when `threshold_on` is "p_value", the p-value) is compared with."""

    name: str
    statistic: float
    p_value: float | None
    threshold: float
    alarm: bool
    threshold_on: str = "statistic"
    warning: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "threshold_on": self.threshold_on,
            "alarm": self.alarm,
            "warning": self.warning,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class DriftReport:
    """The tests of one comparison and the overall alarm (`rule` says which tests it combines)."""

    tests: tuple[DriftTest, ...]
    alarm: bool
    rule: str
    n_reference: int
    n_current: int

    def test(self, name: str) -> DriftTest:
        for t in self.tests:
            if t.name == name:
                return t
        raise InvalidParameter(f"no drift test named {name!r}; have {[t.name for t in self.tests]}")

    def to_json(self) -> dict[str, Any]:
        return {
            "alarm": self.alarm,
            "rule": self.rule,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "tests": [t.to_json() for t in self.tests],
        }


def detect_drift(reference: ArrayLike, current: ArrayLike, config: DriftConfig | None = None) -> DriftReport:
    """Compare a reference window of embeddings with a current one (rows are vectors)."""
    cfg = config or DriftConfig()
    ref = _window(reference, "reference", cfg)
    cur = _window(current, "current", cfg)
    if ref.shape[1] != cur.shape[1]:
        raise InvalidParameter(
            f"reference and current windows differ in dimension: {ref.shape[1]} and {cur.shape[1]}"
        )
    # One PCA over both windows. Fitted on the reference alone it would overfit the reference (its
    # top components carry more of the reference's variance than of any other sample's), and the
    # permutation and KS tests would see that as drift: 3 false alarms in 3 same-distribution
    # SciFact window pairs at 500 rows. Pooled, it treats both windows alike, as the tests assume.
    pooled = np.vstack([ref, cur])
    n_comp = min(cfg.pca_components, pooled.shape[0] - 1, ref.shape[1])
    z = PCA(n_components=n_comp, svd_solver="full").fit_transform(pooled)
    z_ref, z_cur = z[: len(ref)], z[len(ref) :]
    tests = (
        _classifier(ref, cur, cfg),
        _mmd(z_ref, z_cur, cfg),
        _ks(z_ref, z_cur, cfg),
        _centroid(ref, cur, cfg),
    )
    alarm = any(t.alarm for t in tests if t.name in ("classifier_auc", "mmd"))
    return DriftReport(tests, alarm, OVERALL_RULE, ref.shape[0], cur.shape[0])


def psi(
    reference_values: ArrayLike, current_values: ArrayLike, *, bins: int = 10, epsilon: float = 1e-4
) -> float:
    """Population stability index of a 1-D signal: sum over bins of (c - r) * ln(c / r), the bins the
    reference's quantiles (right-closed, the outer ones open-ended), each share floored at `epsilon`.

    Ties collapse quantile edges, so a signal with few values (a 0/1 rate) gets one bin per value.
    """
    ref = _values(reference_values, "reference_values")
    cur = _values(current_values, "current_values")
    if bins < 1:
        raise InvalidParameter(f"bins must be >= 1, not {bins}")
    if not 0 < epsilon < 1:
        raise InvalidParameter(f"epsilon must be in (0, 1), not {epsilon}")
    # i / bins exactly (linspace rounds 3/10 up): an edge that lands on a value keeps it below
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins)) if bins > 1 else np.array([])
    r = _shares(ref, edges, epsilon)
    c = _shares(cur, edges, epsilon)
    # (c - r) ln(c / r) is KL(c || r) + KL(r || c): scipy's rel_entr, both ways.
    return float(np.sum(rel_entr(c, r) + rel_entr(r, c)))


def signal_drift(
    reference: Mapping[str, ArrayLike], current: Mapping[str, ArrayLike], config: DriftConfig | None = None
) -> DriftReport:
    """PSI of each named 1-D signal (e.g. "top1_score", "nearest_distance", "query_length",
    "zero_result"), warning at `psi_warn`, alarm at `psi_alarm`; the report alarms if any signal does."""
    cfg = config or DriftConfig()
    if set(reference) != set(current):
        raise InvalidParameter(
            f"reference and current name different signals: {sorted(reference)} and {sorted(current)}"
        )
    if not reference:
        raise InvalidParameter("signal_drift needs at least one signal")
    tests = []
    for name in sorted(reference):
        value = psi(reference[name], current[name], bins=cfg.psi_bins, epsilon=cfg.psi_epsilon)
        tests.append(
            DriftTest(
                f"psi:{name}",
                value,
                None,
                cfg.psi_alarm,
                value >= cfg.psi_alarm,
                warning=value >= cfg.psi_warn,
            )
        )
    n_ref = min(len(np.asarray(v)) for v in reference.values())
    n_cur = min(len(np.asarray(v)) for v in current.values())
    return DriftReport(tuple(tests), any(t.alarm for t in tests), "any psi", n_ref, n_cur)


def _window(x: ArrayLike, name: str, cfg: DriftConfig) -> Matrix:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidParameter(f"{name} window must be 2-D (rows x dim), not shape {arr.shape}")
    if arr.shape[1] < 2:
        raise InvalidParameter(f"{name} window needs at least 2 columns, not {arr.shape[1]}")
    if not cfg.min_rows <= arr.shape[0] <= cfg.window:
        raise InvalidParameter(
            f"{name} window has {arr.shape[0]} rows; it needs between min_rows={cfg.min_rows} and "
            f"window={cfg.window} (cut a stream to its last {cfg.window} rows)"
        )
    if not np.isfinite(arr).all():
        raise InvalidParameter(f"{name} window contains NaN or infinite values")
    return arr


def _values(x: ArrayLike, name: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidParameter(f"{name} must be 1-D, not shape {arr.shape}")
    if arr.size == 0:
        raise InvalidParameter(f"{name} is empty")
    if not np.isfinite(arr).all():
        raise InvalidParameter(f"{name} contains NaN or infinite values")
    return arr


def _shares(x: NDArray[np.float64], edges: NDArray[np.float64], epsilon: float) -> NDArray[np.float64]:
    # side="left": bin i holds edges[i-1] < x <= edges[i]; past the last edge is the open top bin.
    counts = np.bincount(np.searchsorted(edges, x, side="left"), minlength=edges.size + 1)
    return np.maximum(counts / x.size, epsilon, dtype=np.float64)


def _classifier(ref: Matrix, cur: Matrix, cfg: DriftConfig) -> DriftTest:
    x = np.vstack([ref, cur])
    y = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)]
    folds = StratifiedKFold(cfg.cv_folds, shuffle=True, random_state=cfg.seed)

    def cv_auc(labels: NDArray[np.int_]) -> float:
        # Out-of-fold probabilities: each row is scored by a model that never saw it, so overfitting
        # pulls the AUC down (toward or below 0.5), never up.
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        scores = cross_val_predict(model, x, labels, cv=folds, method="predict_proba")[:, 1]
        return float(roc_auc_score(labels, scores))

    auc = cv_auc(y)
    if not cfg.auc_permutations:
        return DriftTest("classifier_auc", auc, None, cfg.auc_threshold, auc > cfg.auc_threshold)
    # The cross-validated AUC's null spread is about 1.4 times Mann-Whitney's (the fold models
    # differ), so its critical value comes from refitting on permuted labels, not from a formula.
    idx = np.arange(len(y), dtype=float)

    def permuted_auc(first: NDArray[Any], _second: NDArray[Any]) -> float:
        labels = np.ones(len(y), dtype=int)
        labels[first.astype(int)] = 0
        return cv_auc(labels)

    result = stats.permutation_test(
        (idx[: len(ref)], idx[len(ref) :]),
        permuted_auc,
        permutation_type="independent",
        n_resamples=cfg.auc_permutations,
        alternative="greater",
        random_state=cfg.seed,
    )
    critical = float(np.quantile(result.null_distribution, 1 - cfg.alpha))
    threshold = max(cfg.auc_threshold, critical)
    return DriftTest(
        "classifier_auc",
        auc,
        float(result.pvalue),
        threshold,
        auc > threshold,
        details={"critical_auc": critical, "auc_permutations": cfg.auc_permutations},
    )


def _permutation_p(statistic: Any, n_ref: int, n_total: int, cfg: DriftConfig) -> tuple[float, float]:
    """Observed statistic and permutation p-value (scipy's permutation_test over row indices, so the
    statistic can use a precomputed kernel or matrix; "greater" is the drift side)."""
    idx = np.arange(n_total, dtype=float)
    result = stats.permutation_test(
        (idx[:n_ref], idx[n_ref:]),
        statistic,
        permutation_type="independent",
        vectorized=True,
        n_resamples=cfg.n_permutations,
        alternative="greater",
        random_state=cfg.seed,
        batch=50,
    )
    return float(result.statistic), float(result.pvalue)


def _masks(first: NDArray[Any], n_total: int) -> NDArray[np.float64]:
    """Rows of 0/1 membership in the first sample, one row per resample."""
    first = np.atleast_2d(first).astype(int)
    mask = np.zeros((first.shape[0], n_total))
    np.put_along_axis(mask, first, 1.0, axis=1)
    return mask


def _mmd(z_ref: Matrix, z_cur: Matrix, cfg: DriftConfig) -> DriftTest:
    z = np.vstack([z_ref, z_cur])
    n, m, total = len(z_ref), len(z_cur), len(z_ref) + len(z_cur)
    dist = euclidean_distances(z)
    median = float(np.median(dist[np.triu_indices(total, k=1)]))
    gamma = 1.0 / (2.0 * median**2) if median > 0 else 1.0
    kernel = rbf_kernel(z, gamma=gamma)
    np.fill_diagonal(kernel, 0.0)  # the unbiased estimate leaves out k(x, x)
    row_sums = kernel.sum(axis=1)
    grand = row_sums.sum()

    def unbiased_mmd2(first: NDArray[Any], _second: NDArray[Any], axis: int = -1) -> NDArray[np.float64]:
        s = _masks(first, total)
        within = np.einsum("bi,bi->b", s @ kernel, s)  # sum over pairs inside the first sample
        cross = s @ row_sums - within
        second = grand - 2 * cross - within
        out = within / (n * (n - 1)) + second / (m * (m - 1)) - 2 * cross / (n * m)
        return np.asarray(out if np.ndim(first) > 1 else out[0])

    stat, p = _permutation_p(unbiased_mmd2, n, total, cfg)
    return DriftTest(
        "mmd",
        stat,
        p,
        cfg.alpha,
        p < cfg.alpha,
        threshold_on="p_value",
        details={"gamma": gamma, "pca_components": z.shape[1]},
    )


def _ks(z_ref: Matrix, z_cur: Matrix, cfg: DriftConfig) -> DriftTest:
    # The asymptotic distribution: the exact one costs 0.3 s a detection at 500 rows, and differs
    # from it by little at these sizes.
    results = [stats.ks_2samp(z_ref[:, j], z_cur[:, j], method="asymp") for j in range(z_ref.shape[1])]
    raw = np.array([r.pvalue for r in results])
    reject, corrected, _, _ = multipletests(raw, alpha=cfg.ks_alpha, method="holm")
    worst = int(np.argmin(corrected))
    return DriftTest(
        "ks",
        float(max(r.statistic for r in results)),
        float(corrected[worst]),
        cfg.ks_alpha,
        bool(reject.any()),
        threshold_on="p_value",
        details={
            "correction": "holm",
            "components": len(results),
            "rejected": int(reject.sum()),
            "p_values_corrected": [float(v) for v in corrected],
        },
    )


def _centroid(ref: Matrix, cur: Matrix, cfg: DriftConfig) -> DriftTest:
    x = np.vstack([ref, cur])
    n, total = len(ref), len(ref) + len(cur)
    column_sums = x.sum(axis=0)

    def distance(first: NDArray[Any], _second: NDArray[Any], axis: int = -1) -> NDArray[np.float64]:
        s = _masks(first, total)
        a = s @ x / n
        b = (column_sums - s @ x) / (total - n)
        out = np.array([cosine(u, v) for u, v in zip(a, b, strict=True)])
        return out if np.ndim(first) > 1 else out[0]

    stat, p = _permutation_p(distance, n, total, cfg)
    return DriftTest("centroid", stat, p, cfg.alpha, p < cfg.alpha, threshold_on="p_value")
