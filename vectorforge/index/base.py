"""The interface every index implements, and the search-time parameters."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from vectorforge.errors import InvalidParameter
from vectorforge.index.exact import exact_topk
from vectorforge.storage import fsio
from vectorforge.types import IndexKind, Metric

__all__ = ["Allowed", "SearchParams", "VectorIndex", "bitmap_selector", "check_params", "write_faiss"]

MAX_EF = 32_768
MAX_OVERSAMPLE = 100.0


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Per-query knobs (`search(..., params={...})`). None means the collection's default."""

    exact: bool = False
    ef: int | None = None
    nprobe: int | None = None
    rerank: int | None = None
    oversample: float | None = None

    @classmethod
    def parse(cls, params: dict[str, Any] | None) -> SearchParams:
        if not params:
            return _DEFAULT_PARAMS
        if type(params) is dict and len(params) <= 2:  # the common cases ({"ef": 64}), cheaply
            try:
                # the type too: True == 1 and 64.0 == 64, but neither is a valid ef
                key = tuple((k, type(v), v) for k, v in params.items())
                found = _PARSED.get(key)
            except TypeError:  # an unhashable value: the full parse below names it
                found = None
            if found is not None:
                return found
            parsed = cls._parse(params)
            if len(_PARSED) < 4096:  # what was valid once is valid again: remember it
                _PARSED[key] = parsed
            return parsed
        return cls._parse(params)

    @classmethod
    def _parse(cls, params: Any) -> SearchParams:
        if not isinstance(params, dict):
            raise InvalidParameter(
                f"params must be a dict such as {{'ef': 128}}, not {type(params).__name__}"
            )
        unknown = set(params) - {"exact", "ef", "nprobe", "rerank", "oversample"}
        if unknown:
            raise InvalidParameter(
                f"unknown search params {sorted(unknown)}; known: exact, ef (hnsw), nprobe (ivf), "
                "rerank (ivfpq) and oversample (a quantized index)"
            )
        exact = params.get("exact", False)
        if not isinstance(exact, bool):
            raise InvalidParameter(f"params['exact'] must be true or false, not {exact!r}")
        return cls(
            exact=exact,
            ef=_int_param(params, "ef", 1, MAX_EF),
            nprobe=_int_param(params, "nprobe", 1, 1 << 20),
            rerank=_int_param(params, "rerank", 1, 1000),
            oversample=_float_param(params, "oversample", 1.0, MAX_OVERSAMPLE),
        )


_DEFAULT_PARAMS = SearchParams()
_PARSED: dict[tuple[tuple[str, type, Any], ...], SearchParams] = {}  # small dicts already parsed


def _int_param(params: dict[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidParameter(f"{key} must be an integer from {lo} to {hi}, not {value!r}")
    return value


def _float_param(params: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise InvalidParameter(f"{key} must be a number from {lo:g} to {hi:g}, not {value!r}")
    return float(value)


Allowed = tuple[int, int] | tuple[float, float] | tuple[str, ...]
"""An index parameter's values: an inclusive integer range, a range of numbers (float bounds),
or the names it may take."""


def check_params(kind: IndexKind, params: dict[str, Any], allowed: dict[str, Allowed]) -> dict[str, Any]:
    """Validate index build parameters against `allowed` (name -> what it may be)."""
    unknown = set(params) - set(allowed)
    if unknown:
        raise InvalidParameter(
            f"unknown parameters {sorted(unknown)} for index {kind.value!r}; known: {sorted(allowed)}"
        )
    for key, value in params.items():
        spec = allowed[key]
        if isinstance(spec[0], str):
            if value not in spec:
                names = ", ".join(repr(c) for c in spec)
                raise InvalidParameter(f"index parameter {key} must be one of {names}, not {value!r}")
            continue
        lo, hi = spec
        if isinstance(lo, float):
            if value is None:
                raise InvalidParameter(
                    f"index parameter {key} must be a number from {lo:g} to {hi:g}, not None"
                )
            _float_param(params, key, lo, float(hi))
        elif isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise InvalidParameter(
                f"index parameter {key} must be an integer from {lo} to {hi}, not {value!r}"
            )
    return dict(params)


def write_faiss(index: Any, path: Path) -> None:
    """Write a FAISS index to `path` through the storage seam (fsynced; fault tests can fail it)."""
    fsio.write_with(path, lambda target: faiss.write_index(index, str(target)))


def bitmap_selector(mask: np.ndarray) -> tuple[Any, np.ndarray]:
    """A FAISS selector over the rows where `mask` is True; keep the returned bitmap alive while searching."""
    bits = np.packbits(mask, bitorder="little")
    return faiss.IDSelectorBitmap(mask.shape[0], faiss.swig_ptr(bits)), bits


class VectorIndex(ABC):
    """An index over the rows of one segment; row numbers are the labels.

    Scores are always higher-is-better, and for every index they are exact (full precision) scores:
    a quantizing index re-scores its candidates, so that results of different segments and shards can
    be merged by score.
    """

    kind: ClassVar[IndexKind]
    allowed_params: ClassVar[dict[str, Allowed]] = {}
    # What the registry records of each kind (index/__init__.py).
    vector_kinds: ClassVar[frozenset[str]] = frozenset({"dense"})
    # full vectors memory-mapped from the segment, not in RAM (a quantized index's own choice)
    vectors_on_disk: bool = False
    faiss_types: ClassVar[tuple[str, ...]] = ()  # the FAISS classes its index.faiss may hold

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """RAM for `n` vectors of `dim` with `params` (the capacity planner reads it); full float32
        vectors unless the kind says otherwise."""
        return 4 * n * dim

    def __init__(self, dim: int, metric: Metric, params: dict[str, Any]) -> None:
        self.dim = dim
        self.metric = metric
        self.params = check_params(self.kind, params, self.allowed_params)

    @property
    def stored_metric(self) -> int:
        """The FAISS metric its `index.faiss` holds (a snapshot's is checked against it)."""
        return int(faiss.METRIC_L2 if self.metric is Metric.L2 else faiss.METRIC_INNER_PRODUCT)

    @property
    @abstractmethod
    def ntotal(self) -> int:
        """Rows added so far."""

    @abstractmethod
    def add(self, vectors: np.ndarray) -> None:
        """Append rows (float32, contiguous, already normalized for cosine)."""

    @abstractmethod
    def vectors(self) -> np.ndarray:
        """The full-precision vectors, row-aligned (a view where possible: do not keep it across adds)."""

    @abstractmethod
    def ann_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None, selectivity: float, params: SearchParams
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k among rows where `mask` is True (all rows if None): (scores, rows)."""

    def exact_search(
        self, queries: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k among rows where `mask` is True (all rows if None)."""
        rows = None if mask is None else np.flatnonzero(mask)
        return exact_topk(self.vectors(), queries, k, self.metric, rows)

    def seal(self) -> None:  # noqa: B027 - optional hook
        """Called once no more rows will be added (an IVF index trains here)."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the index into `folder` (which exists)."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, dim: int, metric: Metric, params: dict[str, Any]) -> VectorIndex:
        """Read an index written by `save`."""
