"""The PLAID index of multi vectors (Santhanam et al., "PLAID: an efficient engine for late
interaction retrieval", 2022), registered as index kind `plaid`.

A segment grows with full-precision tokens and is searched exactly; when it is sealed with at least
`exact_below_tokens` tokens it trains a residual codec (codec.py) and builds inverted lists centroid
-> passages (CSR arrays). Its file then holds the codes (36 bytes a 128-d token at 2 bits, the part
kept in RAM) and a sidecar .npy of the full tokens, memory-mapped. Search runs the four stages:

1. candidates: the passages in the `ncells` nearest cells of each query token;
2. centroid interaction with pruning: each passage scored by its centroids alone, centroids whose
   best query-token score is below `centroid_score_threshold` left out; keep `ndocs`;
3. centroid interaction without pruning over those; keep `ndocs / 4`;
4. decompress their tokens and rank by MaxSim.

Then the best `rescore` (at least k) are scored again from the full tokens: every score that leaves
the segment is the exact MaxSim, so segments and shards merge by score without loss. A filter that
leaves no more passages than `ndocs` is searched exactly among them. With `pool_factor` 2 or 3 each
document's tokens are pooled as they are added (Ward clustering, pooling.py), so the segment holds
a half or a third of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from vectorforge.errors import CorruptionError, InvalidParameter, InvalidVector
from vectorforge.index import register_index
from vectorforge.index.maxsim import MultiVectorIndex, spans, starts_of, tokens_path
from vectorforge.multivector.codec import ResidualCodec, num_centroids, sample_passages
from vectorforge.multivector.pooling import hierarchy, pool_tokens

__all__ = ["PLAIDIndex", "PLAIDParams", "centroid_scores", "default_search", "tokens_path"]

BUILD_PARAMS: dict[str, tuple[int, int]] = {
    "nbits": (1, 4),
    "kmeans_niters": (1, 100),
    "exact_below_tokens": (0, 1 << 40),
    "seed": (0, 1 << 31),
    "pool_factor": (1, 16),
}
DEFAULT_EXACT_BELOW = 2_000_000  # RAGatouille's rule: below a few million tokens exact MaxSim is fast


@dataclass(frozen=True, slots=True)
class PLAIDParams:
    """Search-time knobs (`params={...}`), defaults by k as the reference sets them."""

    ncells: int
    centroid_score_threshold: float
    ndocs: int
    rescore: int
    exact: bool = False


def default_search(k: int) -> tuple[int, float, int]:
    """(ncells, centroid_score_threshold, ndocs) for top-k (ColBERT's `configure` defaults)."""
    if k <= 10:
        return 1, 0.5, 256
    if k <= 100:
        return 2, 0.45, 1024
    return 4, 0.4, max(4 * k, 4096)


def parse_search(params: dict[str, Any] | None, k: int) -> PLAIDParams:
    """`params` of a search, checked, over the defaults for `k`."""
    ncells, threshold, ndocs = default_search(k)
    given = dict(params or {})
    unknown = set(given) - {"exact", "ncells", "centroid_score_threshold", "ndocs", "rescore"}
    if unknown:
        raise InvalidParameter(
            f"unknown search params {sorted(unknown)} for a plaid index; known: exact, ncells, "
            "centroid_score_threshold, ndocs, rescore"
        )
    exact = given.get("exact", False)
    if not isinstance(exact, bool):
        raise InvalidParameter(f"params['exact'] must be true or false, not {exact!r}")
    t = given.get("centroid_score_threshold", threshold)
    if isinstance(t, bool) or not isinstance(t, int | float) or math.isnan(t):
        raise InvalidParameter(f"centroid_score_threshold must be a number, not {t!r}")
    return PLAIDParams(
        ncells=_int(given, "ncells", ncells, 1, 1 << 20),
        centroid_score_threshold=float(t),
        ndocs=_int(given, "ndocs", ndocs, 1, 1 << 30),
        rescore=max(k, _int(given, "rescore", 4 * k, 1, 1 << 30)),
        exact=exact,
    )


def _int(params: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidParameter(f"{key} must be an integer from {lo} to {hi}, not {value!r}")
    return value


@dataclass(frozen=True)
class _Compressed:
    """What a sealed PLAID segment keeps in RAM: codes, and the inverted lists."""

    codec: ResidualCodec
    codes: np.ndarray  # centroid id of each token (int32)
    packed: np.ndarray  # each token's packed residual (uint8 rows)
    ivf_offsets: np.ndarray  # (K + 1,) int64: centroid c's passages are ivf_rows[off[c]:off[c+1]]
    ivf_rows: np.ndarray  # int32 row numbers, ascending within a list
    n_rows: int  # the segment's rows (those without tokens included)

    @classmethod
    def build(
        cls, tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, params: dict[str, Any]
    ) -> _Compressed:
        present = np.flatnonzero(lengths > 0)
        rng = np.random.default_rng(params["seed"])
        chosen = np.sort(rng.choice(present, size=sample_passages(len(present)), replace=False))
        sample = tokens[spans(starts[chosen], lengths[chosen])]
        k = num_centroids(len(tokens), len(sample))
        codec = ResidualCodec.train(sample, k, params["nbits"], params["kmeans_niters"], params["seed"])
        codes, packed = codec.encode(tokens)
        rows = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
        pairs = np.unique(codes.astype(np.int64) * len(lengths) + rows)  # (centroid, row), sorted
        cells, ivf_rows = np.divmod(pairs, len(lengths))
        offsets = np.zeros(len(codec.centroids) + 1, np.int64)
        np.cumsum(np.bincount(cells, minlength=len(codec.centroids)), out=offsets[1:])
        return cls(codec, codes, packed, offsets, ivf_rows.astype(np.int32), len(lengths))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            **self.codec.arrays(),
            "codes": self.codes,
            "packed": self.packed,
            "ivf_offsets": self.ivf_offsets,
            "ivf_rows": self.ivf_rows,
        }

    @classmethod
    def from_arrays(cls, data: Any, dim: int, n_tokens: int, rows: int) -> _Compressed:
        codec = ResidualCodec.from_arrays(data, dim)
        codes, packed = data["codes"], data["packed"]
        offsets, ivf_rows = data["ivf_offsets"], data["ivf_rows"]
        k = len(codec.centroids)
        well_formed = (
            codes.shape == (n_tokens,)
            and codes.dtype == np.int32
            and packed.shape == (n_tokens, dim * codec.nbits // 8)
            and packed.dtype == np.uint8
            and offsets.shape == (k + 1,)
            and ivf_rows.dtype == np.int32
            and int(offsets[0]) == 0
            and int(offsets[-1]) == len(ivf_rows)
            and bool(np.all(np.diff(offsets) >= 0))
            and (n_tokens == 0 or (int(codes.min()) >= 0 and int(codes.max()) < k))
            and (len(ivf_rows) == 0 or (int(ivf_rows.min()) >= 0 and int(ivf_rows.max()) < rows))
        )
        if not well_formed:
            raise CorruptionError("a PLAID index whose codes or inverted lists do not match its tokens")
        return cls(codec, codes, packed, offsets.astype(np.int64), ivf_rows, rows)


@register_index
class PLAIDIndex(MultiVectorIndex):
    """PLAID over one segment's token matrices (exact MaxSim until it is sealed large enough)."""

    kind: ClassVar[str] = "plaid"
    vectors_on_disk: ClassVar[bool] = True
    rebuild_below_live: ClassVar[float] = 0.95  # PLAID's rule: retrain once more than ~5% changed
    trains_on_seal: ClassVar[bool] = True  # minutes of k-means at scale: done off the write lock

    @classmethod
    def estimate_bytes(cls, n: int, dim: int, params: dict[str, Any]) -> int:
        """RAM of a sealed segment: each token's code (centroid id and packed residual), the
        inverted lists (about one entry a token) and the centroids; full tokens stay on disk. A
        segment under `exact_below_tokens` keeps its full tokens (memory-mapped, and every search
        reads them all: they count as RAM)."""
        checked = cls.check_build(params)
        tokens = n * int(params.get("tokens_per_point", 32))
        if tokens < checked["exact_below_tokens"]:
            return int(4 * tokens * dim + 16 * n)
        per_token = 4 + dim * checked["nbits"] // 8 + 4
        k = num_centroids(tokens, tokens)
        return int(tokens * per_token + 4 * k * dim + 16 * n)

    @classmethod
    def check_build(cls, params: dict[str, Any] | None) -> dict[str, Any]:
        """Build parameters, checked, over the defaults."""
        given = {key: v for key, v in (params or {}).items() if key != "tokens_per_point"}
        unknown = set(given) - set(BUILD_PARAMS)
        if unknown:
            raise InvalidParameter(
                f"unknown parameters {sorted(unknown)} for index 'plaid'; known: {sorted(BUILD_PARAMS)}"
            )
        out = {
            "nbits": 2,
            "kmeans_niters": 4,
            "exact_below_tokens": DEFAULT_EXACT_BELOW,
            "seed": 0,
            "pool_factor": 1,
        }
        for key, value in given.items():
            lo, hi = BUILD_PARAMS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise InvalidParameter(
                    f"index parameter {key} must be an integer from {lo} to {hi}, not {value!r}"
                )
            out[key] = value
        if out["nbits"] not in (1, 2, 4):
            raise InvalidParameter(f"index parameter nbits must be 1, 2 or 4, not {out['nbits']}")
        return out

    def __init__(self, dim: int, params: dict[str, Any] | None = None) -> None:
        super().__init__(dim)
        self.params = self.check_build(params)
        if (dim * self.params["nbits"]) % 8:
            raise InvalidParameter(
                f"a plaid index packs {dim}-d tokens into whole bytes: dim * nbits must be a multiple of 8"
            )
        if self.params["pool_factor"] > 1:
            hierarchy()  # scipy, now: a missing extra refuses the collection, never a write half-way
        self._compressed: _Compressed | None = None

    def describe(self) -> dict[str, Any]:
        tokens = self.token_count()
        if self._compressed is None:
            reason = (
                "the codec is trained in the background"
                if self.needs_training
                else f"fewer than {self.params['exact_below_tokens']} tokens"
            )
            return {"index": "plaid", "mode": "exact", "tokens": tokens, "reason": reason}
        codec = self._compressed.codec
        return {
            "index": "plaid",
            "mode": "plaid",
            "tokens": tokens,
            "centroids": len(codec.centroids),
            "nbits": codec.nbits,
            "bytes_per_token": codec.bytes_per_token,
        }

    def add(self, matrices: Any) -> None:
        """Rows of a growing segment (one whose seal failed grows on: its codes are dropped and
        built again at the next seal, and until then it is searched exactly)."""
        if self._mapped():
            raise InvalidVector("a sealed PLAID segment read from disk takes no more rows")
        self._compressed = None
        factor = self.params["pool_factor"]
        if factor > 1:  # index-time pooling: the rows keep their pooled tokens (Ward, pooling.py)
            matrices = [
                None if m is None else pool_tokens(np.asarray(m, np.float32), factor) for m in matrices
            ]
        super().add(matrices)

    def add_kept(self, matrices: Any) -> None:
        """Rows already pooled by an index like this one (compaction moving rows between segments):
        added as they are, so that they are not pooled twice."""
        if self._mapped():
            raise InvalidVector("a sealed PLAID segment read from disk takes no more rows")
        self._compressed = None
        super().add(matrices)

    @property
    def needs_training(self) -> bool:
        """Large enough for PLAID and not yet trained (until then it is searched exactly)."""
        return self._compressed is None and self.token_count() >= max(self.params["exact_below_tokens"], 1)

    def seal(self) -> None:
        """No more rows: train the codec and build the lists if the segment is large enough."""
        tokens, starts = self._matrix()
        if self.needs_training:
            lengths = self.lengths()
            self._compressed = _Compressed.build(tokens, starts, lengths, self.params)

    def save(self, path: Path) -> None:
        """`path` (npz): each row's token count, and the codec, codes and lists if it has them (a
        segment sealed under the write lock has not: compaction trains it in the background); beside
        it `tokens_path(path)`, the full tokens (memory-mapped when read)."""
        compressed = self._compressed
        self._save_with_tokens(path, compressed.arrays() if compressed else {})

    @classmethod
    def load(cls, path: Path, rows: int, dim: int, params: dict[str, Any] | None = None) -> PLAIDIndex:
        index = cls(dim, params)
        arrays = index._load_with_tokens(path, rows)
        if "codes" in arrays:
            index._compressed = _Compressed.from_arrays(arrays, dim, sum(index._lengths), rows)
        return index

    def search(
        self, query: np.ndarray, k: int, mask: np.ndarray | None = None, params: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = parse_search(params, k)
        compressed = self._compressed
        if compressed is None or p.exact:
            return super().search(query, k, mask, None)
        q = self.check_query(query)
        lengths = self.lengths()
        allowed = lengths > 0
        if mask is not None:
            allowed &= mask[: len(allowed)]
        rows = np.flatnonzero(allowed)
        if len(rows) <= p.ndocs:  # a selective filter: the exact answer costs no more than PLAID's
            return self._exact_among(q, rows, k)
        cs = centroid_scores(compressed, q)
        by_query = np.ascontiguousarray(cs.T)  # (query tokens, centroids): its rows reduce fast
        rows = _candidates(compressed, by_query, p.ncells, allowed)
        best = by_query.max(axis=0)  # each centroid's best query-token score
        rows = _centroid_top(compressed, cs, best, rows, p.ndocs, p.centroid_score_threshold)
        rows = self._centroid_exact_top(compressed, cs, rows, max(p.ndocs // 4, k))
        rows = self._decompressed_top(compressed, q, rows, p.rescore)
        return self._exact_among(q, rows, k)

    def _centroid_exact_top(
        self, compressed: _Compressed, cs: np.ndarray, rows: np.ndarray, keep: int
    ) -> np.ndarray:
        """Stage 3: every token of `rows` by its centroid's score, no pruning; the best `keep`."""
        if len(rows) <= keep:
            return rows
        positions, lengths = self._spans_of(rows)
        scores = _span_maxsum(cs[compressed.codes[positions]], lengths)
        return rows[np.argpartition(-scores, keep - 1)[:keep]]

    def _decompressed_top(
        self, compressed: _Compressed, q: np.ndarray, rows: np.ndarray, keep: int
    ) -> np.ndarray:
        """Stage 4: MaxSim over the decompressed tokens of `rows`; the best `keep`."""
        if len(rows) <= keep:
            return rows
        positions, lengths = self._spans_of(rows)
        tokens = compressed.codec.decode(compressed.codes[positions], compressed.packed[positions])
        scores = _span_maxsum(tokens @ q.T, lengths)
        return rows[np.argpartition(-scores, keep - 1)[:keep]]


def centroid_scores(compressed: _Compressed, q: np.ndarray) -> np.ndarray:
    """(centroids, query tokens): each centroid's score with each query token. Stored this way round
    so that gathering a passage's centroids takes whole rows (~2x faster than columns)."""
    cs: np.ndarray = compressed.codec.centroids @ q.T
    return cs


def _span_maxsum(sims: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`sims` (tokens, query tokens) in spans of rows (`lengths`, each > 0): per span, the sum over
    query tokens of the max within the span."""
    starts = starts_of(lengths)
    if len(lengths) == 0 or len(sims) >= 8 * len(lengths):
        best: np.ndarray = np.maximum.reduceat(sims, starts, axis=0).sum(axis=1, dtype=np.float64)
        return best
    # Short spans (stage 2's few listed centroids a passage): reduceat pays ~1 us a span, so take
    # the j-th row of every span longer than j at once instead (max length steps, not spans).
    top = sims[starts]
    order = np.argsort(-lengths, kind="stable")
    longest_first = -lengths[order]
    for j in range(1, int(lengths.max())):
        longer = order[: int(np.searchsorted(longest_first, -j, side="left"))]
        top[longer] = np.maximum(top[longer], sims[starts[longer] + j])
    summed: np.ndarray = top.sum(axis=1, dtype=np.float64)
    return summed


def _candidates(
    compressed: _Compressed, by_query: np.ndarray, ncells: int, allowed: np.ndarray
) -> np.ndarray:
    """Stage 1: the allowed rows listed in the `ncells` best cells of any query token (`by_query`:
    the centroid scores as (query tokens, centroids))."""
    ncells = min(ncells, by_query.shape[1])
    if ncells == 1:
        cells = np.unique(by_query.argmax(axis=1))
    else:
        cells = np.unique(np.argpartition(by_query, -ncells, axis=1)[:, -ncells:])
    off = compressed.ivf_offsets
    listed = compressed.ivf_rows[spans(off[cells], off[cells + 1] - off[cells])]
    hit = np.zeros(len(allowed), dtype=bool)
    hit[listed] = True
    return np.flatnonzero(hit & allowed)


def _centroid_top(
    compressed: _Compressed,
    cs: np.ndarray,
    best: np.ndarray,
    rows: np.ndarray,
    ndocs: int,
    threshold: float,
) -> np.ndarray:
    """Stage 2: score `rows` by the centroids they hold among those some query token scores at
    `threshold` or more (`best`: each centroid's best score; the others pruned), each query token's
    best summed; the best `ndocs`."""
    if len(rows) <= ndocs:
        return rows
    kept = np.flatnonzero(best >= threshold)
    off = compressed.ivf_offsets
    lens = off[kept + 1] - off[kept]
    listed = compressed.ivf_rows[spans(off[kept], lens)].astype(np.int64)
    cells = np.repeat(kept, lens)
    is_candidate = np.zeros(compressed.n_rows, bool)
    is_candidate[rows] = True
    chosen = is_candidate[listed]
    listed, cells = listed[chosen], cells[chosen]
    # a row none of whose centroids survives pruning ranks last, as in the reference (each query
    # token's max starts at -9999 there): 0 would put it above rows whose kept sum is negative
    scores = np.full(len(rows), -np.inf)
    if len(listed):
        order = np.argsort(listed, kind="stable")
        listed, cells = listed[order], cells[order]
        first = np.flatnonzero(np.concatenate(([True], listed[1:] != listed[:-1])))
        best = _span_maxsum(cs[cells], np.diff(np.append(first, len(listed))))
        scores[np.searchsorted(rows, listed[first])] = best
    return rows[np.argpartition(-scores, ndocs - 1)[:ndocs]]
