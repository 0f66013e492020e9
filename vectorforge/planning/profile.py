"""A calibration profile: what vectorforge measured on one machine (QPS per core and latency at the
recall target, by index, quantization, dimensions and size), and the cost model fitted to it.

The model: a query's single-core cost grows as a power of the points searched, `t(n) = t0 * (n /
n0) ** b`, with `b` fitted (least squares in log-log) to the sizes measured for that index and
quantization, and in proportion to the dimensions (distance computations dominate). Sizes beyond the
measured ones are extrapolated with the fitted exponent; a plan says which profile it used.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.errors import InvalidParameter

__all__ = ["BUNDLED_PROFILE", "CostModel", "Measured", "Profile", "load_profile"]

BUNDLED_PROFILE = Path(__file__).parent / "profiles" / "reference.json"
# Exponents for a kind measured at one size only: HNSW walks ~log n hops (a small power fits it), an
# IVF scan at a fixed nprobe reads n / nlist points with nlist ~ sqrt(n), flat reads them all.
DEFAULT_EXPONENT = {"hnsw": 0.25, "ivfflat": 0.5, "ivfpq": 0.5, "flat": 1.0, "inverted": 1.0, "plaid": 0.5}


@dataclass(frozen=True)
class Measured:
    """One calibrated configuration at one size."""

    index: str
    quantization: str
    dim: int
    n: int
    setting: dict[str, Any]  # the search parameter that reached the recall target
    recall: float
    qps_per_core: float  # one query at a time, one FAISS thread
    p50_ms: float
    p99_ms: float
    index_bytes_per_point: float  # the sealed segment's index file


@dataclass(frozen=True)
class CostModel:
    """Single-core cost of one query of `index`/`quantization`, fitted to `points`."""

    index: str
    quantization: str
    t0_ms: float
    n0: int
    dim0: int
    exponent: float
    p99_over_mean: float
    setting: dict[str, Any]
    recall: float = 1.0  # what the setting reached where it was measured

    def mean_ms(self, n: int, dim: int) -> float:
        return float(self.t0_ms * (max(n, 1) / self.n0) ** self.exponent * (dim / self.dim0))


@dataclass
class Profile:
    """Measurements of one machine, and where they came from."""

    name: str
    date: str
    machine: dict[str, Any]
    recall_target: float
    points: list[Measured] = field(default_factory=list)
    engine_bytes_per_point: float = 220.0  # ids, payload offsets, bookkeeping (bench/quantized.py)

    def configurations(self) -> list[tuple[str, str]]:
        return sorted({(p.index, p.quantization) for p in self.points})

    def model(self, index: str, quantization: str) -> CostModel:
        """The cost model of one configuration (`InvalidParameter` if it was not calibrated)."""
        found = [p for p in self.points if p.index == index and p.quantization == quantization]
        if not found:
            known = ", ".join(f"{i}/{q}" for i, q in self.configurations())
            raise InvalidParameter(
                f"profile {self.name!r} has no measurement of index {index!r} with quantization "
                f"{quantization!r}; it has {known} (run `vectorforge plan calibrate`)"
            )
        found.sort(key=lambda p: p.n)
        dim0 = found[-1].dim
        same_dim = [p for p in found if p.dim == dim0]
        xs = [math.log(p.n) for p in same_dim]
        ys = [math.log(1000.0 / p.qps_per_core) for p in same_dim]
        if len(set(xs)) >= 2:
            slope = float(np.polyfit(xs, ys, 1)[0])
            exponent = min(max(slope, 0.0), 1.0)  # more points never cost less; never worse than a scan
        else:
            exponent = DEFAULT_EXPONENT.get(index, 0.5)
        last = same_dim[-1]
        mean = 1000.0 / last.qps_per_core
        return CostModel(
            index,
            quantization,
            t0_ms=mean,
            n0=last.n,
            dim0=dim0,
            exponent=exponent,
            p99_over_mean=max(1.0, last.p99_ms / mean),
            setting=last.setting,
            recall=last.recall,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return file

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        points = [Measured(**p) for p in data.get("points", [])]
        return cls(
            name=data["name"],
            date=data["date"],
            machine=data.get("machine", {}),
            recall_target=float(data["recall_target"]),
            points=points,
            engine_bytes_per_point=float(data.get("engine_bytes_per_point", 220.0)),
        )


def load_profile(path: str | Path | None = None) -> Profile:
    """A profile file (None: the one bundled with vectorforge, measured on its reference machine)."""
    file = BUNDLED_PROFILE if path is None else Path(path)
    if not file.is_file():
        raise InvalidParameter(
            f"calibration profile {file} does not exist (run `vectorforge plan calibrate`)"
        )
    try:
        return Profile.from_json(json.loads(file.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameter(f"calibration profile {file} is not a profile: {exc}") from None
