"""The capacity planner: a workload, a price catalog and a calibration profile in; shards, replicas,
nodes, instance type, cost and what dominates it out.

Memory per point is each index's own `estimate_bytes` (the registry's), plus the payload and the
engine's own bytes per point (from the profile). CPU and latency come from the profile's cost
models: every query searches every shard, and within a shard every sealed segment (SEGMENT_POINTS
points each, at the cost of a segment of this corpus), so a query costs `shards x segments x
t(segment)` core-milliseconds (a selective filter's segments: an exact scan of what it keeps), plus
a rerank vector's MaxSim over its candidates, plus the fan-out's own cost; its p99 is one shard's
and the fan-out's. For each instance type the planner takes the fewest shards that meet the p99 SLO
and fit a node, then the nodes that hold `replicas` copies and give the cores the peak needs at the
catalog's target utilisation; the cheapest instance type wins. `index: auto` / `quantization: auto`
try every calibrated dense configuration and keep the cheapest that meets the SLO.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from vectorforge.engine.planner import use_exact
from vectorforge.errors import InvalidParameter
from vectorforge.planning.catalog import Catalog, Instance
from vectorforge.planning.profile import DATA_GENERATOR, RERANK, SEGMENT_POINTS, CostModel, Profile
from vectorforge.planning.workload import AUTO, VectorSpec, Workload
from vectorforge.types import IndexKind

__all__ = ["MAX_SHARDS", "Plan", "VectorChoice", "plan", "what_ifs"]

MAX_SHARDS = 4096
MAX_COMBINATIONS = 1000  # `auto` vectors' configurations tried together
GIB = 1024**3
QDRANT_FACTOR, WEAVIATE_FACTOR = 1.5, 2.0  # their guides: raw float vectors x 1.5 (Qdrant), x 2 (Weaviate)
SPARSE_INDEX, MULTI_INDEX = "inverted", "plaid"
DENSE_ANN = {k.value for k in IndexKind if k is not IndexKind.FLAT}


@dataclass(frozen=True)
class VectorChoice:
    """One vector's index, its parameters, and what a point of it takes in RAM and on disk."""

    name: str
    kind: str
    index: str
    quantization: str
    params: dict[str, Any]
    ram_bytes: int  # the whole corpus at the horizon, one copy
    disk_bytes: int
    calibrated: bool  # its search cost is in the profile (else: memory only)


@dataclass
class Plan:
    """A plan, with everything it was derived from named."""

    workload: str
    points: int  # at the horizon
    vectors: list[VectorChoice]
    catalog: dict[str, str]
    profile: dict[str, str]
    ram_bytes: int  # one copy of everything: indexes, payloads, the engine's bookkeeping
    disk_bytes: int
    rules_of_thumb: dict[str, int]  # Qdrant's and Weaviate's sizing of the same dense vectors
    shards: int
    replicas: int
    nodes: int
    instance: str
    memory_nodes: int  # nodes that memory alone needs
    cpu_nodes: int  # nodes that the peak's cores alone need
    core_ms_per_query: float
    p99_ms: float
    meets_slo: bool
    monthly: dict[str, float]  # nodes, storage, re-embedding, total
    cost_per_million_queries: float
    dominant: str  # "memory" or "cpu"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _disk(kind: str, dim: int, dtype: str, nnz: int, tokens: int) -> int:
    """Bytes a point's full vector takes on disk (segments keep them; a quantized index maps them)."""
    if kind == "sparse":
        return 8 * nnz
    width = 2 if dtype == "float16" else 4
    return width * dim * (tokens if kind == "multi" else 1)


def _segmented(kind: str, n: int, dim: int, params: dict[str, Any], vector_kind: str = "dense") -> int:
    """`estimate_bytes` per sealed segment (SEGMENT_POINTS points, as the engine seals them), summed:
    an index's fixed parts (centroids, codebooks) and regimes (PLAID's exact small segments) are a
    segment's."""
    from vectorforge.index import estimate_bytes

    full, rest = divmod(n, SEGMENT_POINTS)
    size = full * estimate_bytes(kind, SEGMENT_POINTS, dim, params, vector_kind) if full else 0
    return size + (estimate_bytes(kind, rest, dim, params, vector_kind) if rest else 0)


def _choose_vector(spec: VectorSpec, n: int, index: str, quantization: str, profile: Profile) -> VectorChoice:
    if spec.kind == "dense":
        params: dict[str, Any] = {} if quantization in ("none", AUTO) else {"quantization": quantization}
        if index == "ivfflat":
            params["coarse"] = "hnsw"
        ram = _segmented(index, n, spec.dim, params)
    elif spec.kind == "sparse":
        params = {"vocabulary": spec.vocabulary}
        ram = _segmented(SPARSE_INDEX, n, spec.nnz, params, "sparse")
    else:
        import vectorforge.multivector  # noqa: F401  (registers plaid and muvera)

        params = {"tokens_per_point": spec.tokens_per_point}
        ram = _segmented(index, n, spec.dim, params, "multi")
    disk = n * _disk(spec.kind, spec.dim, spec.dtype, spec.nnz, spec.tokens_per_point)
    calibrated = _priced_by(spec, index, quantization) in profile.configurations()
    return VectorChoice(spec.name, spec.kind, index, quantization, params, int(ram), int(disk), calibrated)


def _priced_by(spec: VectorSpec, index: str, quantization: str) -> tuple[str, str]:
    """The profile's configuration that prices a vector's part of a query: its index's search, or
    for a rerank vector the MaxSim re-ranking of candidates (whatever index holds its tokens)."""
    return RERANK if spec.use == "rerank" else (index, quantization)


def _candidates(spec: VectorSpec, profile: Profile) -> list[tuple[str, str]]:
    """The (index, quantization) pairs to try for one vector."""
    if spec.kind == "sparse":
        return [(SPARSE_INDEX, "bm25")]
    if spec.kind == "multi":
        return [(MULTI_INDEX if spec.index == AUTO else spec.index, "none")]
    from vectorforge.index import index_kinds

    dense = set(index_kinds("dense"))
    calibrated = [(i, q) for i, q in profile.configurations() if i in dense]
    found = [(i, q) for i, q in calibrated if spec.index in (AUTO, i) and spec.quantization in (AUTO, q)]
    if not found:
        known = ", ".join(f"{i}/{q}" for i, q in calibrated) or "none"
        raise InvalidParameter(
            f"vector {spec.name!r}: profile {profile.name!r} has no measurement of index {spec.index!r} "
            f"with quantization {spec.quantization!r} for dense vectors; it has {known} "
            "(run `vectorforge plan calibrate`)"
        )
    return found


@dataclass(frozen=True)
class _Priced:
    """One vector's part of a query."""

    model: CostModel
    dim: int  # sparse: non-zeros
    tokens: int = 1
    depth: int = 0  # rerank: the candidates it re-scores, once a query (else: searched per segment)
    fixed_ms: float = 0.0  # rerank: what a shard's has_id search costs before its candidates
    per_candidate_ms: float = 0.0  # rerank: MaxSim over one candidate


def _priced(spec: VectorSpec, model: CostModel, profile: Profile) -> _Priced:
    dim = spec.nnz if spec.kind == "sparse" else spec.dim
    tokens = spec.tokens_per_point if spec.kind == "multi" else 1
    if spec.use != "rerank":
        return _Priced(model, dim, tokens)
    # MaxSim is linear in the candidates: a line through the calibrated depths, at this width.
    found = profile.measured(*RERANK)
    ms = [1000.0 / p.qps_per_core for p in found]
    fixed, each = (0.0, ms[0] / found[0].n) if len(found) < 2 else _line([p.n for p in found], ms)
    width = dim * tokens / (found[-1].dim * found[-1].tokens)
    return _Priced(model, dim, tokens, spec.rerank_depth, fixed * width, each * width)


def _line(xs: list[int], ys: list[float]) -> tuple[float, float]:
    """(intercept, slope) of the least-squares line, neither negative."""
    import numpy as np

    slope, intercept = np.polyfit(xs, ys, 1)
    return max(float(intercept), 0.0), max(float(slope), 0.0)


@dataclass(frozen=True)
class _Search:
    """What one query searches: each vector's cost model, the corpus, and its filter."""

    costs: list[_Priced]
    corpus: int
    selectivity: float = 1.0  # the share of points a typical filter keeps
    flat: CostModel | None = None  # prices the exact scans a selective filter turns segments into
    fanout_p99_ms: float = 0.0  # what going to several shards adds (the profile's measurement)
    fanout_core_ms: float = 0.0

    def allowed(self, points: int) -> int:
        return max(1, round(points * self.selectivity))

    def scans(self, model: CostModel, points: int) -> bool:
        """The engine's own rule (engine/planner.py): a dense ANN search that a filter leaves few
        points is an exact scan of those."""
        return (
            self.selectivity < 1
            and model.index in DENSE_ANN
            and use_exact(IndexKind(model.index), self.allowed(points), points, filtered=True)
        )

    def segment_ms(self, v: _Priced, points: int) -> float:
        """A segment's mean ms: an exact scan of the points a filter keeps (`scans`), priced by flat;
        otherwise the filter costs about nothing more (FAISS's ID selector: bench/filtered.py
        measured it flat across selectivities). Never more than an exact scan of the segment
        (`exact_beats_ann`): past that, `params={"exact": True}` is the cheaper search."""
        if self.flat is not None and self.scans(v.model, points):
            return self.flat.mean_ms(self.allowed(points), v.dim)
        ann = v.model.mean_ms(points, v.dim, self.corpus, v.tokens)
        if self.flat is not None and v.model.index in DENSE_ANN:
            return min(ann, self.flat.mean_ms(points, v.dim))
        return ann

    def exact_beats_ann(self, v: _Priced, points: int) -> bool:
        """The setting that holds the recall in a dense ANN segment of this corpus costs more than
        scanning it (on data with little structure for the index to use): `segment_ms` takes the scan."""
        return (
            self.flat is not None
            and v.model.index in DENSE_ANN
            and self.flat.mean_ms(points, v.dim) < v.model.mean_ms(points, v.dim, self.corpus, v.tokens)
        )

    def shard_ms(self, points: int, shards: int) -> tuple[float, float]:
        """(mean, p99) ms of one query on one of `shards` shards of `points`: the engine seals a
        segment every SEGMENT_POINTS points and searches each, one after the other, and a query
        searches each of its vectors (a hybrid query: dense and sparse; their p99s add, an upper
        bound); a rerank vector then re-scores its candidates, spread over the shards."""
        full, rest = divmod(points, SEGMENT_POINTS)
        mean = p99 = 0.0
        for v in self.costs:
            if v.depth:  # every shard pays its search's fixed part, and MaxSim over its candidates
                one = v.fixed_ms + v.per_candidate_ms * v.depth / shards
            else:
                one = full * self.segment_ms(v, SEGMENT_POINTS)
                one += self.segment_ms(v, rest) if rest else 0.0
            mean, p99 = mean + one, p99 + one * v.model.p99_over_mean(self.corpus)
        return mean, p99


def _topology(
    workload: Workload, catalog: Catalog, instance: Instance, ram: int, search: _Search
) -> tuple[int, int, int, int, float, float] | None:
    """(shards, nodes, memory nodes, cpu nodes, core-ms a query, p99 ms) on `instance`, or None if
    no shard count up to MAX_SHARDS fits it and meets the SLO."""
    n = workload.corpus.points_at_horizon()
    usable = instance.memory_gib * GIB * catalog.usable_memory
    replicas = workload.availability.replicas
    shards = max(1, math.ceil(ram / usable))  # one shard's copy must fit a node
    while shards <= MAX_SHARDS:
        mean, p99 = search.shard_ms(math.ceil(n / shards), shards)
        if shards > 1:  # the fan-out and the merge
            mean, p99 = mean + search.fanout_core_ms / shards, p99 + search.fanout_p99_ms
        if p99 <= workload.latency_p99_ms:
            break
        shards *= 2
    else:
        return None
    core_ms = shards * mean
    cores = workload.qps.peak * core_ms / 1000.0 / catalog.target_cpu
    copies_per_node = max(1, int(usable // math.ceil(ram / shards)))  # whole shard copies only
    memory_nodes = math.ceil(shards * replicas / copies_per_node)
    cpu_nodes = math.ceil(cores / instance.vcpus)
    nodes = max(memory_nodes, cpu_nodes, replicas, workload.availability.zones)
    return shards, nodes, memory_nodes, cpu_nodes, core_ms, p99


def _plan_with(
    workload: Workload, catalog: Catalog, profile: Profile, choice: dict[str, tuple[str, str]]
) -> Plan:
    n = workload.corpus.points_at_horizon()
    vectors = [_choose_vector(spec, n, *choice[spec.name], profile) for spec in workload.vectors]
    costs = [
        _priced(spec, profile.model(*_priced_by(spec, *choice[spec.name])), profile)
        for spec, v in zip(workload.vectors, vectors, strict=True)
        if v.calibrated
    ]
    flat = profile.model("flat", "none") if ("flat", "none") in profile.configurations() else None
    search = _Search(
        costs, n, workload.filter_selectivity, flat, profile.fanout_p99_ms, profile.fanout_core_ms
    )
    ram = sum(v.ram_bytes for v in vectors) + n * (
        workload.payload_bytes + int(profile.engine_bytes_per_point)
    )
    disk = sum(v.ram_bytes + v.disk_bytes for v in vectors) + n * workload.payload_bytes
    best: tuple[float, Instance, tuple[int, int, int, int, float, float]] | None = None
    for instance in catalog.instances:
        shape = _topology(workload, catalog, instance, ram, search)
        if shape is None:
            continue
        cost = shape[1] * instance.hourly
        if best is None or (cost, shape[1]) < (best[0], best[2][1]):
            best = (cost, instance, shape)
    notes: list[str] = []
    if best is None:  # nothing meets the SLO: the largest instance, the most shards, and say so
        instance = max(catalog.instances, key=lambda i: (i.memory_gib, i.vcpus))
        relaxed = workload.model_copy(update={"latency_p99_ms": float("inf")})
        shape = _topology(relaxed, catalog, instance, ram, search)
        if shape is None:
            raise InvalidParameter(
                f"workload {workload.name!r} does not fit {MAX_SHARDS} shards of {instance.name}"
            )
        best = (shape[1] * instance.hourly, instance, shape)
    _, instance, (shards, nodes, memory_nodes, cpu_nodes, core_ms, p99) = best
    regions = workload.regions
    node_month = nodes * instance.hourly * catalog.hours_per_month * regions
    storage = workload.availability.replicas * regions * disk / 1e9 * catalog.storage_per_gb_month
    # Blue/green re-embedding: a second full copy for its days, `model_releases_per_year` times a year.
    reembed = node_month * workload.model_releases_per_year * workload.reembed_days / 365.0
    total = node_month + storage + reembed
    queries_month = workload.qps.average * 3600 * catalog.hours_per_month
    meets = p99 <= workload.latency_p99_ms
    if not meets:
        notes.append(
            f"no instance type meets the p99 SLO of {workload.latency_p99_ms:g} ms: {p99:.2f} ms at best"
        )
    if workload.filter_selectivity < 1:
        scanned = [
            v.model.index for v in costs if flat is not None and search.scans(v.model, min(n, SEGMENT_POINTS))
        ]
        notes.append(
            f"a typical filter keeps {workload.filter_selectivity:.0%} of the points: "
            + (f"{', '.join(scanned)} segments are scanned exactly among the points it keeps (the engine's "
               "rule below 8% or 10,000 points; priced by flat)" if scanned else
               "ANN search with the filter as an ID selector, priced as unfiltered")
        )  # fmt: skip
    segment = min(n, SEGMENT_POINTS)
    if profile.data_corpus and n < profile.data_corpus:
        notes.append(
            f"profile {profile.name!r} weighted its recall for a corpus of {profile.data_corpus:,}; this "
            f"one ({n:,}) needs more of a segment's best: its settings may fall short of the target"
        )
    for priced in costs:
        if priced.depth and priced.depth > priced.model.anchor.n:
            notes.append(
                f"re-ranking {priced.depth:,} candidates: extrapolated along a line from the "
                f"{priced.model.anchor.n:,} profile {profile.name!r} measured"
            )
        name = f"{priced.model.index}/{priced.model.quantization}"
        biggest = max(s.corpus_points for s in priced.model.steps())
        if priced.model.index in DENSE_ANN and n > 2 * biggest and profile.data == DATA_GENERATOR:
            notes.append(
                f"{name}: a segment's cost at a corpus of {n:,} is extrapolated from the largest corpus "
                f"profile {profile.name!r} measured a segment of, {biggest:,} points; on your data a "
                f"uniform sample of {segment:,} points is such a segment: calibrate on one"
            )
        if search.exact_beats_ann(priced, segment):
            notes.append(
                f"{name}: at this corpus the setting that holds the recall costs more than an exact scan "
                "of a segment; priced as the scan (search with exact=True)"
            )
    for model in (v.model for v in costs):
        nearest = model.at(n)
        if nearest.recall < workload.recall:
            notes.append(
                f"{model.index}/{model.quantization} reached recall@10 {nearest.recall:.3f} where profile "
                f"{profile.name!r} measured it (setting {nearest.setting or 'default'}): below the "
                f"workload's {workload.recall:g}, so its cost here is a lower bound (calibrate with "
                f"--recall {workload.recall:g} for this target)"
            )
    for v in vectors:
        if not v.calibrated:
            notes.append(
                f"vector {v.name!r} ({v.kind}, {v.index}): memory from estimate_bytes; its search "
                f"cost is not in profile {profile.name!r} (it is left out of the CPU and the p99)"
            )
    raw_dense = sum(n * s.dim * 4 for s in workload.vectors if s.kind == "dense")
    return Plan(
        workload=workload.name,
        points=n,
        vectors=vectors,
        catalog={"name": catalog.name, "as_of": catalog.as_of, "source": catalog.source},
        profile={
            "name": profile.name,
            "date": profile.date,
            "cpus": str(profile.machine.get("cpus", "?")),
            "data": profile.data,
        },
        ram_bytes=int(ram),
        disk_bytes=int(disk),
        rules_of_thumb={
            "qdrant_1.5x": int(QDRANT_FACTOR * raw_dense),
            "weaviate_2x": int(WEAVIATE_FACTOR * raw_dense),
        },
        shards=shards,
        replicas=workload.availability.replicas,
        nodes=nodes * regions,
        instance=instance.name,
        memory_nodes=memory_nodes,
        cpu_nodes=cpu_nodes,
        core_ms_per_query=core_ms,
        p99_ms=p99,
        meets_slo=meets,
        monthly={"nodes": node_month, "storage": storage, "reembedding": reembed, "total": total},
        cost_per_million_queries=total / (queries_month / 1e6),
        dominant="memory" if memory_nodes >= cpu_nodes else "cpu",
        notes=notes,
    )


def plan(workload: Workload, catalog: Catalog, profile: Profile) -> Plan:
    """The cheapest plan that meets the workload's SLO (index and quantization chosen where `auto`;
    at the same cost, the one with the fewest core-ms a query)."""
    import itertools

    options = [[(spec.name, c) for c in _candidates(spec, profile)] for spec in workload.vectors]
    combinations = math.prod(len(o) for o in options)
    if combinations > MAX_COMBINATIONS:
        raise InvalidParameter(
            f"vectors: {combinations:,} combinations of index and quantization to try (at most "
            f"{MAX_COMBINATIONS:,}); name the index or quantization of some vectors instead of auto"
        )
    plans = [_plan_with(workload, catalog, profile, dict(combo)) for combo in itertools.product(*options)]
    # At the same cost (small corpora all fit the smallest node), the fastest: the most headroom.
    return min(plans, key=lambda p: (not p.meets_slo, p.monthly["total"], p.nodes, p.core_ms_per_query))


def what_ifs(workload: Workload, catalog: Catalog, profile: Profile) -> list[tuple[str, Plan]]:
    """The same workload with one thing changed: quantized, half the dimensions, one replica less,
    pooled tokens (half), twice the peak, twice the corpus."""
    changes: list[tuple[str, Workload]] = []
    dense = [v for v in workload.vectors if v.kind == "dense"]
    if dense and any(v.quantization not in ("sq8", AUTO) for v in dense):
        changes.append(("quantize (sq8)", workload.model_copy(update={"vectors": [
            v.model_copy(update={"quantization": "sq8"}) if v.kind == "dense" else v for v in workload.vectors
        ]})))  # fmt: skip
    if dense:
        halved = [v.model_copy(update={"dim": max(1, v.dim // 2)}) if v.kind == "dense" else v
                  for v in workload.vectors]  # fmt: skip
        changes.append(("half the dimensions", workload.model_copy(update={"vectors": halved})))
    if any(v.kind == "multi" for v in workload.vectors):
        pooled = [v.model_copy(update={"tokens_per_point": max(1, v.tokens_per_point // 2)})
                  if v.kind == "multi" else v for v in workload.vectors]  # fmt: skip
        changes.append(("pool tokens (half)", workload.model_copy(update={"vectors": pooled})))
    if workload.availability.replicas > 1:
        fewer = workload.availability.model_copy(
            update={"replicas": workload.availability.replicas - 1,
                    "zones": min(workload.availability.zones, workload.availability.replicas - 1)}
        )  # fmt: skip
        changes.append(("one replica less", workload.model_copy(update={"availability": fewer})))
    peak = workload.qps.model_copy(update={"peak": 2 * workload.qps.peak})
    changes.append(("twice the peak QPS", workload.model_copy(update={"qps": peak})))
    corpus = workload.corpus.model_copy(update={"points": 2 * workload.corpus.points})
    changes.append(("twice the corpus", workload.model_copy(update={"corpus": corpus})))
    return [(label, plan(changed, catalog, profile)) for label, changed in changes]
