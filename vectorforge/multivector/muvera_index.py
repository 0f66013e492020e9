"""MUVERA as a first stage for multi vectors (Dhulipala et al., 2024), registered as index kind
`muvera`: each document's fixed-dimensional encoding (muvera.FDE) in a FAISS HNSW graph by inner
product, then exact MaxSim over the full tokens of the graph's best `candidates`.

A segment grows with full-precision tokens and is searched exactly; once it is sealed with at least
`exact_below_tokens` tokens, compaction encodes every document and builds the graph beside reads
and writes (`trains_on_seal`, as PLAID's k-means: a seal under the write lock leaves it exact).
Its file then holds the serialized graph (the encodings and links, kept in RAM) and a sidecar
.npy of the full tokens, memory-mapped, as PLAID's does. Every score that leaves the segment is
the exact MaxSim, so segments and shards merge by score without loss. A filter goes to FAISS as a
bitmap selector (the walk widened by 1/sqrt(share allowed), as the dense `hnsw` index does); one
that leaves no more rows than `candidates`, or under 5% of them, is searched exactly among them.

Unlike PLAID's codec the encoder is data-independent (random hyperplanes and projections from
`seed`), so deletes never call for a retrain: the segment is compacted by the usual 70% rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import faiss
import numpy as np

from vectorforge.errors import CorruptionError, InvalidParameter, InvalidVector
from vectorforge.index import register_index
from vectorforge.index.base import MAX_EF, bitmap_selector
from vectorforge.index.maxsim import MultiVectorIndex
from vectorforge.multivector.muvera import FDE, sparse_matrix

__all__ = ["MUVERAIndex", "MUVERAParams", "default_candidates"]

# key -> (low, high): integers; fill_empty is a bool, checked apart
BUILD_PARAMS: dict[str, tuple[int, int]] = {
    "k_sim": (0, 10),
    "reps": (1, 256),
    "d_proj": (1, 1024),
    "seed": (0, 1 << 31),
    "M": (4, 256),
    "ef_construction": (8, 4096),
    "exact_below_tokens": (0, 1 << 40),
}
DEFAULTS: dict[str, Any] = {
    # the FDE's (and Weaviate's documented) defaults: 20 x 2**4 x 16 = 5,120 numbers a document
    "k_sim": 4,
    "reps": 20,
    "d_proj": 16,
    "seed": 0,
    "fill_empty": True,
    # Weaviate's HNSW defaults (maxConnections 32, efConstruction 128)
    "M": 32,
    "ef_construction": 128,
    # a search costs ~20 ms whatever the size (encoding the query, the walk, re-ranking); one exact
    # scan costs that at ~200k tokens of 64 numbers (4.6 ms for 48k): below it, exact is faster
    "exact_below_tokens": 250_000,
}
MAX_OUTPUT_DIM = 65_536  # reps * 2**k_sim * d_proj: 256 KB a document at most
MIN_SHARE = 0.05  # a filter allowing fewer rows than this share is searched exactly among them


@dataclass(frozen=True, slots=True)
class MUVERAParams:
    """Search-time knobs (`params={...}`)."""

    candidates: int  # graph neighbours re-ranked by exact MaxSim
    ef_search: int  # the graph walk's list (at least `candidates`)
    exact: bool = False


def default_candidates(k: int) -> int:
    """How many FDE neighbours get exact MaxSim: max(40 k, 400). The paper re-ranks hundreds to
    thousands of candidates; measured here (tests/multivector/test_muvera_index.py, 3,000
    clustered documents), the exact top 10 is found at 0.69 among 100 candidates, 0.88 among 200
    and 0.975 among 400, whether the graph or a brute-force scan of the encodings finds them: the
    encoding, not the graph, is what costs recall. Re-ranking 400 documents is cheap next to the
    walk and the query's encoding (~6 ms of ~20 ms)."""
    return max(40 * k, 400)


def parse_search(params: dict[str, Any] | None, k: int) -> MUVERAParams:
    """`params` of a search, checked, over the defaults for `k`."""
    given = dict(params or {})
    unknown = set(given) - {"exact", "candidates", "ef_search"}
    if unknown:
        raise InvalidParameter(
            f"unknown search params {sorted(unknown)} for a muvera index; known: exact, candidates, ef_search"
        )
    exact = given.get("exact", False)
    if not isinstance(exact, bool):
        raise InvalidParameter(f"params['exact'] must be true or false, not {exact!r}")
    candidates = max(k, _int(given, "candidates", default_candidates(k), 1, MAX_EF))
    ef_search = max(candidates, _int(given, "ef_search", candidates, 1, MAX_EF))
    return MUVERAParams(candidates=candidates, ef_search=ef_search, exact=exact)


def _int(params: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidParameter(f"{key} must be an integer from {lo} to {hi}, not {value!r}")
    return value


@register_index
class MUVERAIndex(MultiVectorIndex):
    """MUVERA encodings in an HNSW graph over one segment's token matrices, re-ranked by exact
    MaxSim (searched exactly until it is sealed large enough)."""

    kind: ClassVar[str] = "muvera"
    vectors_on_disk: ClassVar[bool] = True
    faiss_arrays: ClassVar[tuple[str, ...]] = ("graph",)  # read in a child first by a snapshot's check
    trains_on_seal: ClassVar[bool] = True  # encoding and linking take minutes at scale: off the lock

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """RAM of a sealed segment: each document's encoding (float32) and graph links (about
        2M + M^2/(M-1) of 4 bytes, as `hnsw`), and its row number; full tokens stay on disk."""
        checked = cls.check_build(params)
        out_dim = checked["reps"] * 2 ** checked["k_sim"] * checked["d_proj"]
        m = checked["M"]
        links = 2 * m + m / (m - 1) * m
        return int(n * (4 * out_dim + 4 * links + 9 + 8 + 16))

    @classmethod
    def check_build(cls, params: dict[str, Any] | None) -> dict[str, Any]:
        """Build parameters, checked, over the defaults."""
        given = {key: v for key, v in (params or {}).items() if key != "tokens_per_point"}
        known = sorted([*BUILD_PARAMS, "fill_empty"])
        unknown = set(given) - set(known)
        if unknown:
            raise InvalidParameter(f"unknown parameters {sorted(unknown)} for index 'muvera'; known: {known}")
        out = dict(DEFAULTS)
        for key, value in given.items():
            if key == "fill_empty":
                if not isinstance(value, bool):
                    raise InvalidParameter(f"index parameter fill_empty must be true or false, not {value!r}")
            else:
                lo, hi = BUILD_PARAMS[key]
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    raise InvalidParameter(
                        f"index parameter {key} must be an integer from {lo} to {hi}, not {value!r}"
                    )
            out[key] = value
        out_dim = out["reps"] * 2 ** out["k_sim"] * out["d_proj"]
        if out_dim > MAX_OUTPUT_DIM:
            raise InvalidParameter(
                f"index parameters reps * 2**k_sim * d_proj give {out_dim} numbers a document; "
                f"at most {MAX_OUTPUT_DIM}"
            )
        return out

    def __init__(self, dim: int, params: dict[str, Any] | None = None) -> None:
        super().__init__(dim)
        self.params = self.check_build(params)
        sparse_matrix()  # scipy, now: a missing extra refuses the collection, never a write half-way
        p = self.params
        self.fde = FDE(dim, p["k_sim"], p["reps"], p["d_proj"], p["seed"], fill_empty=p["fill_empty"])
        self._graph: Any = None  # faiss.IndexHNSWFlat over the encodings of `_graph_rows`
        self._graph_rows = np.empty(0, np.int64)  # the row of each graph entry (rows with tokens)

    def describe(self) -> dict[str, Any]:
        tokens = self.token_count()
        if self._graph is None:
            reason = (
                "the graph is built in the background"
                if self.needs_training
                else f"fewer than {self.params['exact_below_tokens']} tokens, or still growing"
            )
            return {"index": "muvera", "mode": "exact", "tokens": tokens, "reason": reason}
        return {
            "index": "muvera",
            "mode": "muvera",
            "tokens": tokens,
            "fde_dim": self.fde.output_dim,
            "M": self.params["M"],
            "bytes_per_document": 4 * self.fde.output_dim,
        }

    def add(self, matrices: Any) -> None:
        """Rows of a growing segment (one whose seal failed grows on: its graph is dropped and
        built again at the next seal, and until then it is searched exactly)."""
        if self._mapped():
            raise InvalidVector("a sealed MUVERA segment read from disk takes no more rows")
        self._graph = None
        self._graph_rows = np.empty(0, np.int64)
        super().add(matrices)

    @property
    def needs_training(self) -> bool:
        """Large enough for a graph and without one yet (until then it is searched exactly)."""
        return self._graph is None and self.token_count() >= max(self.params["exact_below_tokens"], 1)

    def seal(self) -> None:
        """No more rows: encode the documents and build the graph if the segment is large enough."""
        if not self.needs_training:
            return
        tokens, starts = self._matrix()
        lengths = self.lengths()
        rows = np.flatnonzero(lengths > 0)
        graph = faiss.IndexHNSWFlat(self.fde.output_dim, self.params["M"], faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.params["ef_construction"]
        batch = 4096  # documents encoded at once: bounds the encodings held outside the graph
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            graph.add(self.fde.encode_documents([tokens[starts[r] : starts[r] + lengths[r]] for r in chunk]))
        self._graph, self._graph_rows = graph, rows

    def save(self, path: Path) -> None:
        """`path` (npz): each row's token count, and the serialized graph and its rows once the
        segment has it (one sealed under the write lock has not: compaction builds it in the
        background); beside it `tokens_path(path)`, the full tokens."""
        arrays = {}
        if self._graph is not None:
            arrays = {"graph": faiss.serialize_index(self._graph), "graph_rows": self._graph_rows}
        self._save_with_tokens(path, arrays)

    @classmethod
    def load(cls, path: Path, rows: int, dim: int, params: dict[str, Any] | None = None) -> MUVERAIndex:
        index = cls(dim, params)
        arrays = index._load_with_tokens(path, rows)
        if "graph" in arrays or "graph_rows" in arrays:
            index._graph, index._graph_rows = index._read_graph(path, arrays)
        return index

    def _read_graph(self, path: Path, arrays: dict[str, np.ndarray]) -> tuple[Any, np.ndarray]:
        raw, graph_rows = arrays.get("graph"), arrays.get("graph_rows")
        if raw is None or graph_rows is None or raw.dtype != np.uint8 or raw.ndim != 1:
            raise CorruptionError(f"muvera index {path.name} lacks its graph or the graph's rows")
        try:
            graph = faiss.deserialize_index(raw)
        except RuntimeError as exc:
            raise CorruptionError(f"muvera index {path.name}: the graph cannot be read: {exc}") from exc
        lengths = self.lengths()
        present = np.flatnonzero(lengths > 0)
        well_formed = (
            isinstance(graph, faiss.IndexHNSWFlat)
            and graph.d == self.fde.output_dim
            and graph.metric_type == faiss.METRIC_INNER_PRODUCT
            and graph_rows.dtype == np.int64
            and graph_rows.shape == present.shape
            and bool(np.array_equal(graph_rows, present))
            and graph.ntotal == len(graph_rows)
        )
        if not well_formed:
            raise CorruptionError(
                f"muvera index {path.name}: the graph does not match the segment's rows or the "
                f"index parameters ({self.fde.output_dim}-d encodings)"
            )
        return graph, graph_rows

    def search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None = None, params: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = parse_search(params, k)
        graph, graph_rows = self._graph, self._graph_rows
        if graph is None or p.exact:
            return super().search(query, k, mask, None)
        q = self.check_query(query)
        allowed = self.lengths() > 0
        if mask is not None:
            allowed &= mask[: len(allowed)]
        rows = np.flatnonzero(allowed)
        share = len(rows) / max(len(graph_rows), 1)
        if len(rows) <= p.candidates or share < MIN_SHARE:  # exact costs no more than the graph walk
            return self._exact_among(q, rows, k)
        encoded = self.fde.encode_queries([q])
        want = min(p.candidates, len(rows))
        if mask is None or share >= 1:
            found = graph.search(encoded, want, params=faiss.SearchParametersHNSW(efSearch=p.ef_search))[1]
        else:
            ef = min(MAX_EF, math.ceil(p.ef_search / math.sqrt(share)))
            selector, bits = bitmap_selector(allowed[graph_rows])
            found = graph.search(encoded, want, params=faiss.SearchParametersHNSW(efSearch=ef, sel=selector))[
                1
            ]
            del bits
        positions = found[0]
        return self._exact_among(q, graph_rows[positions[positions >= 0]], k)
