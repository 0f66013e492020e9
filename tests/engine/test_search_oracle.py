"""Property tests: search, count, scroll and get against a brute-force numpy oracle.

Hypothesis builds small collections (int and str ids, payloads, several segments), applies random
upserts, re-upserts, deletes by id and by filter, flushes and merges, then compares every read with a
plain-Python model of the collection.

Vectors come in two kinds:
- "grid": small integers (dot, l2) or unit vectors with coordinates 0, ±1 or ±0.5 (cosine). Every
  score is computed exactly in float32, so ties are exact and common, and the ids must equal the
  oracle's exactly, including the tie-break by id (ints before strs, then ascending).
- "gauss": random floats. Scores must match to 1e-4; ids may differ from the oracle's only between
  two points whose true scores are within 1e-5 (a float32 near-tie).
"""

from __future__ import annotations

import itertools
import math
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.engine.filters import matches_everything, parse_filter

ID_POOL: list[int | str] = [*range(30), 2**40, "a", "b", "c", "1", "10", "zz", "é"]
MISSING_IDS: list[int | str] = [99, "nope"]
STRS = ["x", "y", "z"]

# ---------------------------------------------------------------------------------------------- strategies

scalars = st.one_of(st.integers(0, 4), st.sampled_from(STRS), st.booleans())
# Payload floats are never integral: whether 1.0 equals a filter's 1 is left open here.
floats = st.integers(-10, 50).map(lambda i: i / 10 + 0.05)
payload_values = st.one_of(scalars, st.lists(st.one_of(scalars, floats), max_size=3), floats)
payloads = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "n": payload_values,
            "s": payload_values,
            "m": st.fixed_dictionaries({}, optional={"k": payload_values}),
        },
    ),
)

KEYS = ["n", "s", "m.k", "missing"]
match_values = st.one_of(st.integers(0, 4), st.sampled_from(STRS), st.booleans())
bounds = st.one_of(st.integers(-1, 5), st.floats(-1, 5, allow_nan=False).map(lambda x: round(x, 2)))
leaf_conditions = st.one_of(
    st.builds(lambda k, v: {"key": k, "match": v}, st.sampled_from(KEYS), match_values),
    st.builds(
        lambda k, v: {"key": k, "match_any": v},
        st.sampled_from(KEYS),
        st.lists(match_values, min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, r: {"key": k, "range": r},
        st.sampled_from(KEYS),
        st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), bounds, min_size=1, max_size=3),
    ),
    st.builds(lambda ids: {"has_id": ids}, st.lists(st.sampled_from(ID_POOL + MISSING_IDS), max_size=5)),
)


def _wheres(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Non-empty filters with non-empty clauses.

    Left out on purpose, as their meaning is a choice: `should: []` (no constraint, or nothing
    matches?) and a nested `{}` (refused as a condition, though `{}` at the top means no filter).
    """
    return st.dictionaries(
        st.sampled_from(["must", "should", "must_not"]),
        st.lists(children, min_size=1, max_size=2),
        min_size=1,
    )


conditions = st.recursive(leaf_conditions, _wheres, max_leaves=5)
filters = st.one_of(st.none(), st.sampled_from([{}, {"must": []}]), _wheres(conditions))
nonempty_filters = _wheres(conditions)


@dataclass
class Scenario:
    metric: str
    index: str
    kind: str  # "grid" or "gauss"
    dim: int
    max_segment_points: int
    seed: int
    ops: list[tuple[Any, ...]] = field(default_factory=list)
    queries: list[tuple[int, int, dict[str, Any] | None, bool]] = field(default_factory=list)


@st.composite
def scenarios(draw: st.DrawFn, max_ops: int = 14) -> Scenario:
    metric = draw(st.sampled_from(["cosine", "dot", "l2"]))
    kind = draw(st.sampled_from(["grid", "gauss"]))
    sc = Scenario(
        metric=metric,
        index=draw(st.sampled_from(["flat", "hnsw"])),
        kind=kind,
        dim=draw(st.integers(4, 6) if kind == "grid" else st.integers(2, 8)),
        max_segment_points=draw(st.sampled_from([7, 8, 10, 13, 20, 50])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    n_ops = draw(st.integers(1, max_ops))
    for i in range(n_ops):
        op = (
            "upsert"
            if i == 0
            else draw(st.sampled_from(["upsert"] * 4 + ["delete", "delete_filter", "flush", "optimize"]))
        )
        if op == "upsert":
            size = (10, 30) if i == 0 else (1, 16)  # start with enough points for several segments
            ids = draw(st.lists(st.sampled_from(ID_POOL), min_size=size[0], max_size=size[1], unique=True))
            sc.ops.append(("upsert", ids, draw(st.lists(payloads, min_size=len(ids), max_size=len(ids)))))
        elif op == "delete":
            ids = draw(st.lists(st.sampled_from(ID_POOL + MISSING_IDS), min_size=1, max_size=5))
            sc.ops.append(("delete", ids))
        elif op == "delete_filter":
            sc.ops.append(("delete_filter", draw(nonempty_filters)))
        else:
            sc.ops.append((op,))
    for _ in range(draw(st.integers(1, 4))):
        sc.queries.append(
            (draw(st.integers(1, 20)), draw(st.integers(0, 10)), draw(filters), draw(st.booleans()))
        )
    return sc


# ---------------------------------------------------------------------------------------------- oracle


class Missing:
    pass


MISSING = Missing()


def get_path(payload: dict[str, Any] | None, key: str) -> Any:
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def elements(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def same(a: Any, b: Any) -> bool:
    """JSON equality: True is not 1, 1 is not "1"."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return type(a) is type(b) and a == b  # ints match ints; a float payload never equals an int filter


def in_range(v: Any, r: dict[str, float]) -> bool:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    checks = {"gt": v > r.get("gt", -math.inf), "gte": v >= r.get("gte", -math.inf)}
    checks |= {"lt": v < r.get("lt", math.inf), "lte": v <= r.get("lte", math.inf)}
    return all(checks[op] for op in r)


def oracle_match(cond: dict[str, Any], pid: int | str, payload: dict[str, Any] | None) -> bool:
    if not set(cond) - {"must", "should", "must_not"}:  # a nested filter (or {})
        ok = all(oracle_match(c, pid, payload) for c in cond.get("must", []))
        if cond.get("should"):
            ok = ok and any(oracle_match(c, pid, payload) for c in cond["should"])
        return ok and not any(oracle_match(c, pid, payload) for c in cond.get("must_not", []))
    if "has_id" in cond:
        return any(pid == h and type(pid) is type(h) for h in cond["has_id"])
    value = get_path(payload, cond["key"])
    if value is MISSING or value is None:
        return False
    if "match" in cond:
        return any(same(v, cond["match"]) for v in elements(value))
    if "match_any" in cond:
        return any(same(v, m) for v in elements(value) for m in cond["match_any"])
    return any(in_range(v, cond["range"]) for v in elements(value))


def id_key(pid: int | str) -> tuple[bool, int | str]:
    return (isinstance(pid, str), pid)


class Oracle:
    """The collection as a dict, with vectors stored the way the engine stores them (float32, normalized)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.points: dict[int | str, tuple[np.ndarray, dict[str, Any] | None]] = {}

    def prepare(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if self.metric == "cosine":
            v = v / np.linalg.norm(v, axis=-1, keepdims=True)
        return v.astype(np.float32)

    def upsert(self, ids: list[int | str], vectors: np.ndarray, payloads: list[Any]) -> None:
        for pid, vec, p in zip(ids, self.prepare(vectors), payloads, strict=True):
            self.points[pid] = (vec, p)

    def matching(self, flt: dict[str, Any] | None) -> list[int | str]:
        return [pid for pid, (_, p) in self.points.items() if flt is None or oracle_match(flt, pid, p)]

    def delete(self, ids: list[int | str]) -> int:
        gone = [pid for pid in dict.fromkeys(ids) if pid in self.points]
        for pid in gone:
            del self.points[pid]
        return len(gone)

    def scores(self, query: np.ndarray, ids: list[int | str]) -> dict[int | str, float]:
        q = self.prepare(query).astype(np.float64)
        out = {}
        for pid in ids:
            v = self.points[pid][0].astype(np.float64)
            out[pid] = -float(np.sqrt(((v - q) ** 2).sum())) if self.metric == "l2" else float(v @ q)
        return out


# ---------------------------------------------------------------------------------------------- vectors


def make_vectors(rng: np.random.Generator, kind: str, metric: str, n: int, dim: int) -> np.ndarray:
    if kind == "gauss":
        return rng.normal(size=(n, dim)).astype(np.float32)
    if metric != "cosine":
        return rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    out = np.zeros((n, dim), dtype=np.float32)
    for row in out:  # norm 1 or 2 before scaling: normalization and every dot product stay exact
        width = 1 if rng.random() < 0.4 else 4
        cols = rng.choice(dim, size=width, replace=False)
        row[cols] = rng.choice([-1.0, 1.0], size=width)
        row *= rng.choice([0.5, 1.0, 2.0, 4.0])
    return out


def make_query(rng: np.random.Generator, sc: Scenario, oracle: Oracle) -> np.ndarray:
    if oracle.points and rng.random() < 0.3:  # exactly a stored vector: a tie at the very top
        pid = list(oracle.points)[rng.integers(len(oracle.points))]
        return oracle.points[pid][0].copy()
    return make_vectors(rng, sc.kind, sc.metric, 1, sc.dim)[0]


# ---------------------------------------------------------------------------------------------- checks


def check_search(
    hits: list[vf.Hit],
    oracle: Oracle,
    query: np.ndarray,
    k: int,
    offset: int,
    flt: dict[str, Any] | None,
    exact_ties: bool,
    with_vectors: bool = False,
) -> None:
    allowed = oracle.matching(flt)
    truth = oracle.scores(query, allowed)
    ranked = sorted(truth.items(), key=lambda kv: (-kv[1], *id_key(kv[0])))
    expected = ranked[offset : offset + k]
    got = [h.id for h in hits]
    assert len(hits) == len(expected), (got, expected)
    assert len(set(got)) == len(got)
    for h, (_, escore) in zip(hits, expected, strict=True):
        assert h.id in truth, f"{h.id!r} is deleted or outside the filter"
        assert h.score == pytest.approx(truth[h.id], abs=1e-4)
        assert h.score == pytest.approx(escore, abs=1e-4)
        assert h.payload == oracle.points[h.id][1]
        if with_vectors:
            assert h.vector == pytest.approx(oracle.points[h.id][0].tolist(), abs=1e-6)
        else:
            assert h.vector is None
    for a, b in itertools.pairwise(hits):
        assert a.score >= b.score
        if a.score == b.score:
            assert id_key(a.id) < id_key(b.id), f"tie between {a.id!r} and {b.id!r} not broken by id"
    if exact_ties:
        assert got == [e[0] for e in expected]
    else:
        for g, (eid, escore) in zip(got, expected, strict=True):
            if g != eid:
                assert abs(truth[g] - escore) <= 1e-5, (g, eid, truth[g], escore)


def check_reads(
    col: vf.Collection, oracle: Oracle, rng: np.random.Generator, flt: dict[str, Any] | None
) -> None:
    assert col.count() == len(oracle.points)
    assert col.count(filter=flt) == len(oracle.matching(flt))
    for scroll_filter in (None, flt):
        expected = sorted(oracle.matching(scroll_filter), key=id_key)
        seen: list[int | str] = []
        cursor = None
        limit = int(rng.integers(1, 8))
        for _ in range(200):
            page = col.scroll(limit=limit, cursor=cursor, filter=scroll_filter)
            assert len(page.records) <= limit
            for r in page.records:
                assert r.payload == oracle.points[r.id][1]
            seen.extend(r.id for r in page.records)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected
    asked = [ID_POOL[i] for i in rng.integers(0, len(ID_POOL), 6)] + MISSING_IDS
    got = col.get(asked, with_vectors=True)
    assert [r.id for r in got] == [pid for pid in asked if pid in oracle.points]
    for r in got:
        assert r.payload == oracle.points[r.id][1]
        assert r.vector == pytest.approx(oracle.points[r.id][0].tolist(), abs=1e-6)


def run_ops(col: vf.Collection, oracle: Oracle, sc: Scenario, rng: np.random.Generator) -> None:
    for op in sc.ops:
        if op[0] == "upsert":
            vectors = make_vectors(rng, sc.kind, sc.metric, len(op[1]), sc.dim)
            col.upsert(op[1], vectors, op[2])
            oracle.upsert(op[1], vectors, op[2])
        elif op[0] == "delete":
            assert col.delete(ids=op[1]).count == oracle.delete(op[1])
        elif op[0] == "delete_filter":
            where = parse_filter(op[1])
            if where is None or matches_everything(where):  # refused, whatever the points: nothing changes
                with pytest.raises(vf.InvalidParameter, match="would delete every point"):
                    col.delete(filter=op[1])
            else:
                assert col.delete(filter=op[1]).count == oracle.delete(oracle.matching(op[1]))
        elif op[0] == "flush":
            col.flush()
        else:
            col.optimize()
        assert col.count() == len(oracle.points)


def check_queries(col: vf.Collection, oracle: Oracle, sc: Scenario, rng: np.random.Generator) -> None:
    exact_ties = sc.kind == "grid"
    queries = [make_query(rng, sc, oracle) for _ in sc.queries]
    for q, (k, offset, flt, exact) in zip(queries, sc.queries, strict=True):
        params = {"exact": True} if exact or sc.index == "hnsw" else None  # flat is exact either way
        with_vectors = bool(rng.random() < 0.3)
        hits = col.search(q, k=k, offset=offset, filter=flt, params=params, with_vectors=with_vectors)
        check_search(hits, oracle, q, k, offset, flt, exact_ties, with_vectors)
    k, offset, flt, _ = sc.queries[0]
    batch = col.search_batch(np.stack(queries), k=k, offset=offset, filter=flt, params={"exact": True})
    assert len(batch) == len(queries)
    for q, hits in zip(queries, batch, strict=True):
        check_search(hits, oracle, q, k, offset, flt, exact_ties)
    check_reads(col, oracle, rng, flt)


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(sc=scenarios())
def test_search_matches_oracle(sc: Scenario) -> None:
    rng = np.random.default_rng(sc.seed)
    oracle = Oracle(sc.metric)
    with vf.connect() as db:
        col = db.create_collection(
            "c", dim=sc.dim, metric=sc.metric, index=sc.index, max_segment_points=sc.max_segment_points
        )
        run_ops(col, oracle, sc, rng)
        n_segments = len(col.info()["segments"])
        event(f"segments: {min(n_segments, 4)}{'+' if n_segments >= 4 else ''}")
        event(f"points: {len(oracle.points) // 10 * 10}+")
        check_queries(col, oracle, sc, rng)
        if rng.random() < 0.5:  # and once more after sealing and merging everything
            col.flush()
            col.optimize()
            check_queries(col, oracle, sc, rng)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenarios(max_ops=8), more=scenarios(max_ops=4))
def test_oracle_holds_across_reopen(sc: Scenario, more: Scenario) -> None:
    """The same on disk: the state rebuilt from segments, tombstones and the log equals the model."""
    rng = np.random.default_rng(sc.seed)
    oracle = Oracle(sc.metric)
    more.kind, more.metric, more.dim = sc.kind, sc.metric, sc.dim
    with tempfile.TemporaryDirectory() as root:
        with vf.connect(root, sync=False) as db:
            col = db.create_collection(
                "c", dim=sc.dim, metric=sc.metric, index=sc.index, max_segment_points=sc.max_segment_points
            )
            run_ops(col, oracle, sc, rng)
            if rng.random() < 0.5:  # merged segments carry the tombstones of what they replaced
                col.flush()
                col.optimize()
        with vf.connect(root, sync=False) as db:
            col = db.get_collection("c")
            check_queries(col, oracle, sc, rng)
            run_ops(col, oracle, more, rng)  # continue on the reopened collection, then reopen again
        with vf.connect(root, sync=False) as db:
            check_queries(db.get_collection("c"), oracle, sc, rng)


def test_ties_are_broken_by_id_within_a_segment(mem_db: vf.Database) -> None:
    """Hand-made: five equal vectors written in descending id order into one segment."""
    col = mem_db.create_collection("t", dim=4, metric="dot", index="flat")
    col.upsert(["b", 5, "a", 4, 3, 2, 1], np.ones((7, 4)))
    assert [h.id for h in col.search(np.ones(4), k=2)] == [1, 2]
    assert [h.id for h in col.search(np.ones(4), k=3, offset=4)] == [5, "a", "b"]
    col.flush()
    col.upsert([0], np.ones((1, 4)))
    assert [h.id for h in col.search(np.ones(4), k=2)] == [0, 1]
    assert [h.id for h in col.search(np.ones(4), k=2, filter={"must_not": [{"has_id": [0, 1]}]})] == [2, 3]
