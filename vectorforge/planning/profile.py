"""A calibration profile: what vectorforge measured on one machine (QPS per core and latency at the
recall target, by index, quantization, dimensions and size), and the cost model fitted to it.

The model: a query's single-core cost in one segment grows as a power of the points searched, `t(n)
= t0 * (n / n0) ** b`, with `b` fitted (least squares in log-log) to the sizes measured for that
index and quantization, and in proportion to the dimensions (distance computations dominate). A
segment of a larger corpus costs more than a corpus of that size when the search setting that holds
the recall target grows with the corpus (it does on the calibration's generator, whose clusters stay
200 points whatever n): calibration measures full segments drawn from larger corpora, and the model
interpolates their cost in log-log over the corpus (beyond the last one: the last slope). A plan says
which profile it used.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.errors import InvalidParameter
from vectorforge.types import CollectionConfig

__all__ = [
    "BUNDLED_PROFILE",
    "DATA_GENERATOR",
    "RERANK",
    "SEGMENT_POINTS",
    "CostModel",
    "Measured",
    "Profile",
    "load_profile",
]

BUNDLED_PROFILE = Path(__file__).parent / "profiles" / "reference.json"
SEGMENT_POINTS: int = CollectionConfig.model_fields["max_segment_points"].default  # the engine's seal size
RERANK = ("rerank", "maxsim")  # the configuration of re-ranking candidates by MaxSim (n: candidates)
DATA_GENERATOR = "the calibration's generator (a mixture of corpus/200 Gaussians)"
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
    corpus: int = 0  # the corpus the segment's n points were drawn from (0: n, the whole corpus)
    tokens: int = 1  # vectors per point (late interaction: token vectors)

    @property
    def corpus_points(self) -> int:
        return self.corpus or self.n


@dataclass(frozen=True)
class CostModel:
    """Single-core cost of one query of `index`/`quantization` in one segment, fitted to a
    profile's measurements: `anchor` (the largest whole corpus measured) and `larger` (segments of
    anchor's size drawn from larger corpora, by corpus)."""

    index: str
    quantization: str
    exponent: float
    anchor: Measured
    larger: tuple[Measured, ...] = ()

    def steps(self) -> list[Measured]:
        return [self.anchor, *self.larger]

    def mean_ms(self, n: int, dim: int, corpus: int = 0, tokens: int = 1) -> float:
        """Mean ms of a query in a segment of `n` points (of `tokens` vectors of `dim`) from a
        corpus of `corpus`."""
        width = dim * tokens / (self.anchor.dim * self.anchor.tokens)
        size = (max(n, 1) / self.anchor.n) ** self.exponent * width
        return float(
            _loglog(corpus, [(s.corpus_points, 1000.0 / s.qps_per_core) for s in self.steps()]) * size
        )

    def p99_over_mean(self, corpus: int = 0) -> float:
        nearest = self.at(corpus)
        return max(1.0, nearest.p99_ms * nearest.qps_per_core / 1000.0)

    def at(self, corpus: int = 0) -> Measured:
        """The measurement nearest `corpus` in log scale (its setting and recall stand for it)."""
        return min(self.steps(), key=lambda s: abs(math.log(s.corpus_points / max(corpus, 1))))


def _loglog(x: float, known: list[tuple[int, float]]) -> float:
    """y at x, piecewise linear in log-log through `known` (x ascending; y made non-decreasing: a
    larger corpus never costs less), flat below the first, the last piece's slope beyond the last."""
    if len(known) == 1 or x <= known[0][0]:
        return known[0][1]
    lx, ly = np.log([k[0] for k in known]), np.maximum.accumulate(np.log([k[1] for k in known]))
    if x <= known[-1][0]:
        return float(np.exp(np.interp(math.log(x), lx, ly)))
    slope = max(0.0, float((ly[-1] - ly[-2]) / (lx[-1] - lx[-2])))
    return float(np.exp(ly[-1] + slope * (math.log(x) - lx[-1])))


@dataclass
class Profile:
    """Measurements of one machine, and where they came from."""

    name: str
    date: str
    machine: dict[str, Any]
    recall_target: float
    points: list[Measured] = field(default_factory=list)
    engine_bytes_per_point: float = 220.0  # ids, payload offsets, bookkeeping (bench/quantized.py)
    data: str = DATA_GENERATOR  # what the dense configurations were measured on
    # What a query pays for going to several shards instead of one (measured embedded, shards as
    # threads of one process: across nodes add the network's round trip).
    fanout_p99_ms: float = 0.0
    fanout_core_ms: float = 0.0
    data_corpus: int = 0  # with a sample of your data: the corpus its recall was weighted for

    def configurations(self) -> list[tuple[str, str]]:
        return sorted({(p.index, p.quantization) for p in self.points})

    def measured(self, index: str, quantization: str) -> list[Measured]:
        """One configuration's measurements, by size (and corpus)."""
        found = [p for p in self.points if p.index == index and p.quantization == quantization]
        return sorted(found, key=lambda p: (p.n, p.corpus_points))

    def model(self, index: str, quantization: str) -> CostModel:
        """The cost model of one configuration (`InvalidParameter` if it was not calibrated)."""
        found = self.measured(index, quantization)
        if not found:
            known = ", ".join(f"{i}/{q}" for i, q in self.configurations())
            raise InvalidParameter(
                f"profile {self.name!r} has no measurement of index {index!r} with quantization "
                f"{quantization!r}; it has {known} (run `vectorforge plan calibrate`)"
            )
        dim0 = found[-1].dim
        whole = [p for p in found if p.dim == dim0 and p.corpus_points == p.n]
        if not whole:
            raise InvalidParameter(
                f"profile {self.name!r} measured {index}/{quantization} only as segments of larger "
                "corpora; it needs one whole corpus to anchor the model (run `vectorforge plan calibrate`)"
            )
        xs = [math.log(p.n) for p in whole]
        ys = [math.log(1000.0 / p.qps_per_core) for p in whole]
        if len(set(xs)) >= 2:
            slope = float(np.polyfit(xs, ys, 1)[0])
            exponent = min(max(slope, 0.0), 1.0)  # more points never cost less; never worse than a scan
        else:
            exponent = DEFAULT_EXPONENT.get(index, 0.5)
        anchor = whole[-1]
        larger = sorted(
            (p for p in found if p.dim == dim0 and p.n == anchor.n and p.corpus_points > p.n),
            key=lambda p: p.corpus_points,
        )
        return CostModel(index, quantization, exponent=exponent, anchor=anchor, larger=tuple(larger))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return file

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        # Profiles written before `tokens` existed measured PLAID at 32 tokens a document.
        points = [
            Measured(**({"tokens": 32, **p} if p.get("index") == "plaid" else p))
            for p in data.get("points", [])
        ]
        return cls(
            name=data["name"],
            date=data["date"],
            machine=data.get("machine", {}),
            recall_target=float(data["recall_target"]),
            points=points,
            engine_bytes_per_point=float(data.get("engine_bytes_per_point", 220.0)),
            data=str(data.get("data", DATA_GENERATOR)),
            fanout_p99_ms=float(data.get("fanout_p99_ms", 0.0)),
            fanout_core_ms=float(data.get("fanout_core_ms", 0.0)),
            data_corpus=int(data.get("data_corpus", 0)),
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
