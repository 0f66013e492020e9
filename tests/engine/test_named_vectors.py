"""Named vectors of three kinds in one collection: `vectors={"dense": vf.Dense(...), "splade":
vf.Sparse(modifier=None), "tokens": vf.Multi(...)}`; upserts by name (a point may lack the sparse
and multi ones), `search(..., using=...)` against brute-force oracles, `get`/`scroll` returning every
named vector, and all of it through seals, compaction, deletes, reopen, snapshots and restores, in
memory, on disk and over HTTP (binary and JSON wire forms)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf

DIM, TOKEN_DIM, N = 8, 4, 40


def _specs() -> dict[str, Any]:
    return {
        "dense": vf.Dense(dim=DIM, metric="cosine", index="flat"),
        "splade": vf.Sparse(modifier=None, analyzer=None),
        "tokens": vf.Multi(dim=TOKEN_DIM),
    }


def _points(seed: int = 0, n: int = N) -> tuple[np.ndarray, list[Any], list[Any]]:
    """Dense vectors; sparse ones (every third point has none); token matrices (every fourth none)."""
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n, DIM)).astype(np.float32)
    sparse: list[Any] = []
    tokens: list[Any] = []
    for i in range(n):
        terms = np.sort(rng.choice(30, size=int(rng.integers(1, 6)), replace=False))
        sparse.append(None if i % 3 == 0 else vf.SparseVector(terms, rng.uniform(0.1, 2, len(terms))))
        tokens.append(None if i % 4 == 0 else rng.normal(size=(int(rng.integers(1, 7)), TOKEN_DIM)))
    return dense, sparse, tokens


def _fill(col: vf.CollectionAPI, seed: int = 0, start: int = 0) -> tuple[np.ndarray, list[Any], list[Any]]:
    dense, sparse, tokens = _points(seed)
    ids = list(range(start, start + len(dense)))
    col.upsert(ids, {"dense": dense, "splade": sparse, "tokens": tokens}, [{"i": i} for i in ids])
    return dense, sparse, tokens


def _dot_oracle(points: dict[int, Any], query: vf.SparseVector, k: int) -> list[int]:
    q = dict(zip(np.asarray(query.indices).tolist(), np.asarray(query.values).tolist(), strict=True))
    scores = {}
    for pid, v in points.items():
        if v is None:
            continue
        s = sum(q.get(int(t), 0.0) * float(x) for t, x in zip(v.indices, v.values, strict=True))
        if s > 0:
            scores[pid] = s
    return [pid for pid, _ in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def _unit(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def _maxsim_oracle(points: dict[int, Any], query: np.ndarray, k: int) -> list[tuple[int, float]]:
    q = _unit(query)
    scores = {pid: float((q @ _unit(m).T).max(axis=1).sum()) for pid, m in points.items() if m is not None}
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def _check_searches(col: vf.CollectionAPI, sparse: dict[int, Any], tokens: dict[int, Any], seed: int) -> None:
    rng = np.random.default_rng(seed + 100)
    for _ in range(3):
        q = vf.SparseVector(np.array([1, 4, 7, 12, 20]), rng.uniform(0.5, 1.5, 5))
        assert [h.id for h in col.search(q, 10, using="splade")] == _dot_oracle(sparse, q, 10)
        qt = rng.normal(size=(3, TOKEN_DIM))
        hits = col.search(qt, 10, using="tokens")
        expected = _maxsim_oracle(tokens, qt, 10)
        assert [h.id for h in hits] == [pid for pid, _ in expected]
        assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-4)


def test_create_upsert_and_search_every_kind(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("docs", vectors=_specs())
    info = col.info()["vectors"]
    assert {name: spec["kind"] for name, spec in info.items()} == {
        "dense": "dense",
        "splade": "sparse",
        "tokens": "multi",
    }
    dense, sparse, tokens = _fill(col)
    _check_searches(col, dict(enumerate(sparse)), dict(enumerate(tokens)), 0)
    by_default = col.search(dense[5], 3)
    assert [h.id for h in col.search(dense[5], 3, using="dense")] == [h.id for h in by_default]
    assert by_default[0].id == 5
    # a filter gives the exact top-k of the matching points, for every kind
    q = vf.SparseVector([1, 4, 7, 12, 20], [1.0] * 5)
    even = {i: v for i, v in enumerate(sparse) if i % 2 == 0}
    flt = {"must": [{"key": "i", "range": {"lt": 20}}]}
    small = {i: v for i, v in even.items() if i < 20}
    hits = col.search(
        q,
        5,
        using="splade",
        filter={**flt, "must_not": [{"key": "i", "match_any": list(range(1, N, 2))}]},
    )
    assert [h.id for h in hits] == _dot_oracle(small, q, 5)


def test_get_and_scroll_return_every_named_vector(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("docs", vectors=_specs())
    _, sparse, tokens = _fill(col)
    records = col.get([0, 1, 2, 4, 5], with_vectors=True)
    for rec in records:
        pid = int(rec.id)
        named = rec.vectors or {}
        if sparse[pid] is None:
            assert "splade" not in named
        else:
            assert named["splade"].indices == np.asarray(sparse[pid].indices).tolist()
            assert named["splade"].values == pytest.approx(np.asarray(sparse[pid].values).tolist(), rel=1e-6)
        if tokens[pid] is None:
            assert "tokens" not in named
        else:
            assert np.allclose(named["tokens"], _unit(tokens[pid]), atol=1e-6)
    assert col.get([0], with_vectors=False)[0].vectors is None
    page = col.scroll(limit=100, with_vectors=True)
    assert [
        r.vectors == g.vectors
        for r, g in zip(page.records[:3], col.get([0, 1, 2], with_vectors=True), strict=True)
    ] == [True] * 3


def test_named_vectors_survive_seals_compaction_deletes_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "d"
    with vf.connect(path) as db:
        col = db.create_collection("docs", vectors=_specs(), max_segment_points=16)
        _, sparse, tokens = _fill(col)
        col.delete([2, 3, 9])
        _, sparse2, tokens2 = _points(seed=1, n=N)
        col.upsert(
            [5, 6], {"dense": np.ones((2, DIM)), "splade": [None, sparse2[1]], "tokens": [tokens2[1], None]}
        )
        col.flush()
        while col.optimize():
            pass
    live_sparse = {i: v for i, v in enumerate(sparse) if i not in (2, 3, 9)}
    live_tokens = {i: v for i, v in enumerate(tokens) if i not in (2, 3, 9)}
    live_sparse.update({5: None, 6: sparse2[1]})
    live_tokens.update({5: tokens2[1], 6: None})
    with vf.connect(path) as db:
        col = db.get_collection("docs")
        assert len(col.info()["segments"]) >= 2
        _check_searches(col, live_sparse, live_tokens, 1)
        col.snapshot(tmp_path / "s.tar")
        restored = db.restore(tmp_path / "s.tar", name="again")
        _check_searches(restored, live_sparse, live_tokens, 2)


def test_the_log_replays_named_vectors_after_a_crash(tmp_path: Path) -> None:
    """A child process writes and dies without closing: the points are only in its log."""
    path = tmp_path / "d"
    child = (
        "import os, sys, vectorforge as vf\n"
        "from tests.engine.test_named_vectors import _fill, _specs\n"
        "db = vf.connect(sys.argv[1])\n"
        "_fill(db.create_collection('docs', vectors=_specs()))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", child, str(path)], check=True, timeout=120)
    _, sparse, tokens = _points()
    with vf.connect(path) as again:
        _check_searches(again.get_collection("docs"), dict(enumerate(sparse)), dict(enumerate(tokens)), 3)


def test_the_unnamed_dense_vector_is_the_empty_name(db: vf.DatabaseAPI) -> None:
    col = db.create_collection(
        "docs", dim=DIM, index="flat", sparse={"splade": vf.Sparse(modifier=None, analyzer=None)}
    )
    col.upsert([1, 2], {"": np.eye(DIM)[:2], "splade": [vf.SparseVector([3], [1.0]), None]})
    assert [h.id for h in col.search(vf.SparseVector([3], [2.0]), 5, using="splade")] == [1]
    assert col.count() == 2


BAD_UPSERTS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"dense": np.ones((1, DIM)), "title": [None]}, vf.InvalidParameter, "no vector 'title'"),
    ({"dense": np.ones((1, DIM)), "splade": [None, None]}, vf.InvalidVector, "2 rows for 1 ids"),
    (
        {"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1, 1], [1.0, 2.0])]},
        vf.InvalidVector,
        "distinct",
    ),
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1], [-1.0])]}, vf.InvalidVector, "negative"),
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([-1], [1.0])]}, vf.InvalidVector, "0 to 2"),
    (
        {"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1], [float("nan")])]},
        vf.InvalidVector,
        "finite",
    ),
    (
        {"dense": np.ones((1, DIM)), "splade": [{"indices": [1, 2], "values": [1.0]}]},
        vf.InvalidVector,
        "same length",
    ),
    (
        {"dense": np.ones((1, DIM)), "tokens": [np.ones((2, TOKEN_DIM + 1))]},
        vf.DimensionMismatch,
        "tokens of 5 dimensions",
    ),
    ({"dense": np.ones((1, DIM)), "tokens": [np.ones((0, TOKEN_DIM))]}, vf.InvalidVector, "a token or more"),
    ({"dense": np.ones((1, DIM)), "tokens": [np.zeros((1, TOKEN_DIM))]}, vf.InvalidVector, "zero token"),
    ({"dense": np.ones((1, DIM)), "splade": np.ones((1, 3))}, vf.InvalidVector, "must be a list"),
    # the same refusals whichever path a value takes (the client sends what it cannot encode as JSON)
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1.7], [1.0])]}, vf.InvalidVector, "integers"),
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([True], [1.0])]}, vf.InvalidVector, "integers"),
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([2**64], [1.0])]}, vf.InvalidVector, "indices"),
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1], ["2"])]}, vf.InvalidVector, "numbers"),
    ({"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1], [True])]}, vf.InvalidVector, "numbers"),
    ({"dense": np.ones((1, DIM)), "splade": (vf.SparseVector([1], [-1.0]),)}, vf.InvalidVector, "negative"),
    ({"dense": np.ones((1, DIM)), "tokens": [np.ones(TOKEN_DIM)]}, vf.InvalidVector, "matrix"),
    (
        {"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1], [1e20])]},
        vf.InvalidVector,
        "from 1e-15 to",
    ),
    (
        {"dense": np.ones((1, DIM)), "splade": [vf.SparseVector([1], [1e-30])]},
        vf.InvalidVector,
        "from 1e-15 to",
    ),
    ({"dense": np.ones((1, DIM)), "tokens": [np.ones((2, TOKEN_DIM)) * 1j]}, vf.InvalidVector, "complex"),
]


def test_token_matrices_of_two_dims_in_one_batch_are_refused(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("docs", vectors=_specs())
    with pytest.raises(vf.DimensionMismatch, match="tokens of 5 dimensions"):
        col.upsert([1, 2], {"dense": np.ones((2, DIM)), "tokens": [np.ones((2, TOKEN_DIM)), np.ones((1, 5))]})
    assert col.count() == 0


@pytest.mark.parametrize(("vectors", "error", "message"), BAD_UPSERTS)
def test_bad_named_vectors_are_refused_and_change_nothing(
    db: vf.DatabaseAPI, vectors: dict[str, Any], error: type[Exception], message: str
) -> None:
    col = db.create_collection("docs", vectors=_specs())
    _fill(col)
    before = col.get([0], with_vectors=True)
    with pytest.raises(error, match=message):
        col.upsert([0], vectors)
    assert col.count() == N
    assert col.get([0], with_vectors=True) == before


def test_bad_searches_and_settings_say_what_is_wrong(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("docs", vectors=_specs())
    _fill(col)
    with pytest.raises(vf.InvalidParameter, match="no vector 'title'"):
        col.search([1.0] * DIM, using="title")
    with pytest.raises(vf.InvalidVector, match="SparseVector"):
        col.search([1.0] * DIM, using="splade")
    with pytest.raises(vf.InvalidVector, match=r"is text; .*query\(text, using=\.\.\.\)"):
        col.search("vitamin d", using="splade")
    with pytest.raises(vf.InvalidVector, match=r"vectors\['splade'\]\[0\] is text; .*add\(texts\)"):
        col.upsert([1], {"dense": np.ones((1, DIM)), "splade": ["some text"]})
    with pytest.raises(vf.InvalidVector, match=r"\(tokens, 4\) matrix"):
        col.search([1.0] * TOKEN_DIM, using="tokens")
    with pytest.raises(vf.InvalidParameter, match="vectors= takes a dict"):
        db.create_collection("none", vectors={})
    with pytest.raises(vf.InvalidParameter, match="not both"):
        db.create_collection("both", dim=4, vectors={"a": vf.Dense(dim=4)})
    with pytest.raises(vf.InvalidParameter, match="vector name"):
        db.create_collection("bad", vectors={"Dense": vf.Dense(dim=4)})
    with pytest.raises(vf.InvalidParameter, match="given twice"):
        db.create_collection("dup", vectors={"a": vf.Dense(dim=4)}, sparse={"a": vf.Sparse()})
    with pytest.raises(vf.InvalidParameter, match=r"vf\.Multi\(dim=...\)"):
        vf.Multi(dim=0)
    with pytest.raises(vf.InvalidParameter, match="given twice, in vectors= and in sparse="):
        db.create_collection(
            "dup2", vectors={"d": vf.Dense(dim=4), "bm25": vf.Sparse()}, sparse={"bm25": vf.Sparse()}
        )
    with pytest.raises(vf.InvalidParameter, match="kind"):
        db.create_collection("kind", vectors={"d": {"kind": ["dense"], "dim": 3}})
    with pytest.raises(vf.InvalidParameter, match="unknown for multi vectors; known: flat, muvera, plaid"):
        db.create_collection("hnsw", vectors={"d": vf.Dense(dim=4), "t": vf.Multi(dim=4, index="hnsw")})
    with pytest.raises(vf.InvalidParameter, match="nbits must be 1, 2 or 4, not 3"):
        db.create_collection("bits", vectors={"t": vf.Multi(dim=8, index="plaid", index_params={"nbits": 3})})
    with pytest.raises(vf.InvalidParameter, match=r"unknown parameters \['nlist'\] for index 'plaid'"):
        db.create_collection("nl", vectors={"t": vf.Multi(dim=8, index="plaid", index_params={"nlist": 3})})
    with pytest.raises(vf.DimensionMismatch, match=r"vf\.Dense\(dim=4\) but embedder 'minilm' makes 384"):
        db.create_collection("emb", vectors={"d": vf.Dense(dim=4)}, embedder="minilm")
    with pytest.raises(vf.InvalidParameter, match="using="):
        col.search(vf.SparseVector([1], [1.0]))
    with pytest.raises(vf.InvalidVector, match="finite"):
        col.search(vf.SparseVector([1], [float("nan")]), using="splade")
    with pytest.raises(vf.InvalidVector, match="from 1e-15 to"):
        col.search(vf.SparseVector([1], [1e20]), using="splade")
    with pytest.raises(vf.InvalidVector, match="matrix"):
        col.search([[1.0, 0, 0, 0], [1.0, 0]], using="tokens")
    assert db.list_collections() == ["docs"]


def test_the_json_wire_form_is_accepted_too(api_server: Any) -> None:
    """The client sends binary (base64) forms; a client of its own may send plain JSON."""
    with vf.connect(api_server.url) as db:
        db.create_collection("json", vectors=_specs())
        body = {
            "ids": [1, 2],
            "vectors": {
                "dense": [[1.0] * DIM, [0.5] * DIM],
                "splade": [{"indices": [3, 9], "values": [1.0, 2.0]}, None],
                "tokens": [None, [[1.0, 0, 0, 0], [0, 1.0, 0, 0]]],
            },
        }
        httpx.put(f"{api_server.url}/collections/json/points", json=body).raise_for_status()
        found = httpx.post(
            f"{api_server.url}/collections/json/points/search",
            json={"vector": {"indices": [9], "values": [1.0]}, "using": "splade"},
        ).json()["hits"]
        assert [h["id"] for h in found] == [1]
        found = httpx.post(
            f"{api_server.url}/collections/json/points/search",
            json={"vector": [[0, 1.0, 0, 0]], "using": "tokens"},
        ).json()["hits"]
        assert [h["id"] for h in found] == [2]
        got = httpx.post(
            f"{api_server.url}/collections/json/points/get", json={"ids": [1, 2], "with_vectors": True}
        )
        records = got.json()["records"]
        assert records[0]["vectors"] == {"splade": {"indices": [3, 9], "values": [1.0, 2.0]}}
        assert records[1]["vectors"] == {"tokens": [[1.0, 0, 0, 0], [0, 1.0, 0, 0]]}
        bad = httpx.put(
            f"{api_server.url}/collections/json/points",
            json={
                "ids": [3],
                "vectors": {
                    "dense": [[1.0] * DIM],
                    "splade": {"sparse_b64": "!!", "values_b64": "", "lengths": [0]},
                },
            },
        )
        assert bad.status_code == 422 and "base64" in bad.text
        blob = {"b64": "", "shape": [True, 2], "lengths": [0]}
        bad = httpx.put(
            f"{api_server.url}/collections/json/points",
            json={"ids": [3], "vectors": {"dense": [[1.0] * DIM], "tokens": blob}},
        )
        assert bad.status_code == 422 and "shape" in bad.text
        bad = httpx.put(
            f"{api_server.url}/collections/kind", json={"vectors": {"d": {"kind": ["dense"], "dim": 3}}}
        )
        assert bad.status_code == 422 and "kind" in bad.text
        db.delete_collection("json")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    segment=st.integers(3, 50),
    deleted=st.sets(st.integers(0, N - 1), max_size=10),
)
def test_searches_over_any_segments_equal_the_oracles(seed: int, segment: int, deleted: set[int]) -> None:
    """However the points fall into segments and whatever is deleted, each kind's search equals
    its brute-force oracle over the live points."""
    with vf.connect() as db:
        col = db.create_collection("p", vectors=_specs(), max_segment_points=segment)
        _, sparse, tokens = _fill(col, seed)
        if deleted:
            col.delete(sorted(deleted))
        col.optimize()
        live_sparse = {i: v for i, v in enumerate(sparse) if i not in deleted}
        live_tokens = {i: v for i, v in enumerate(tokens) if i not in deleted}
        _check_searches(col, live_sparse, live_tokens, seed)


def test_tied_scores_page_by_id_as_dense_search_does(db: vf.DatabaseAPI) -> None:
    """Ten points with the same terms and tokens score the same: pages go by id, with no repeats,
    across segments (ids written in descending order, so rows and ids disagree)."""
    col = db.create_collection("ties", vectors=_specs(), max_segment_points=4)
    ids = list(range(10, 0, -1))
    col.upsert(
        ids,
        {
            "dense": np.ones((10, DIM)),
            "splade": [vf.SparseVector([1], [1.0])] * 10,
            "tokens": [np.ones((2, TOKEN_DIM))] * 10,
        },
    )
    for using, query in (("splade", vf.SparseVector([1], [1.0])), ("tokens", np.ones((1, TOKEN_DIM)))):
        pages = [[h.id for h in col.search(query, 3, using=using, offset=off)] for off in (0, 3, 6, 9)]
        assert pages == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]], using


TITLE_DIM = 3


def _title_oracle(titles: dict[int, Any], query: np.ndarray, k: int) -> list[tuple[int, float]]:
    scores = {
        pid: -float(np.linalg.norm(np.asarray(v) - query)) for pid, v in titles.items() if v is not None
    }
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def test_a_second_dense_vector_is_optional_and_searched_exactly(db: vf.DatabaseAPI) -> None:
    specs = {
        "dense": vf.Dense(dim=DIM, index="hnsw"),
        "title": vf.Dense(dim=TITLE_DIM, metric="l2", index="flat"),
    }
    col = db.create_collection("two", vectors=specs, max_segment_points=7)
    rng = np.random.default_rng(4)
    titles: dict[int, Any] = {i: None if i % 4 == 0 else rng.normal(size=TITLE_DIM) for i in range(30)}
    col.upsert(list(titles), {"dense": rng.normal(size=(30, DIM)), "title": list(titles.values())})
    col.delete([5, 6])
    live = {i: v for i, v in titles.items() if i not in (5, 6)}
    for _ in range(3):
        q = rng.normal(size=TITLE_DIM)
        hits = col.search(q, 8, using="title")
        expected = _title_oracle(live, q, 8)
        assert [h.id for h in hits] == [pid for pid, _ in expected]
        assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)
    got = col.get([1, 4], with_vectors=True)
    assert np.allclose(got[0].vectors["title"], titles[1], atol=1e-6) and got[1].vectors is None
    everyone = rng.normal(size=(2, TITLE_DIM))
    col.upsert(
        [100, 101], {"dense": np.ones((2, DIM)), "title": everyone}
    )  # a 2-D array: every point has one
    assert col.search(everyone[0], 1, using="title")[0].id == 100
    info = col.info()["vectors"]
    assert info["title"] == {"kind": "dense", "dim": 3, "metric": "l2", "index": "flat", "index_params": {}}
    with pytest.raises(vf.DimensionMismatch, match="has 4 numbers; this dense vector has 3"):
        col.upsert([7], {"dense": np.ones((1, DIM)), "title": [np.ones(4)]})
    with pytest.raises(vf.InvalidVector, match="one vector of 3 numbers"):
        col.search(np.ones((2, 3)), using="title")
    with pytest.raises(vf.InvalidParameter, match="second dense vector is searched exactly"):
        db.create_collection("hnsw2", vectors={"a": vf.Dense(dim=2), "b": vf.Dense(dim=2)})


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), selectivity=st.integers(0, 100), k=st.integers(1, 20))
def test_filtered_bm25_is_the_exact_filtered_top_k_at_every_selectivity(
    seed: int, selectivity: int, k: int
) -> None:
    """The filter selects the points; the statistics stay the whole collection's."""
    from vectorforge.index.sparse import SparseIndex

    rng = np.random.default_rng(seed)
    n = 80
    rows = []
    for _ in range(n):
        terms = np.unique(rng.integers(0, 15, size=int(rng.integers(1, 6))))
        rows.append(vf.SparseVector(terms, rng.integers(1, 4, len(terms)).astype(np.float32)))
    with vf.connect() as db:
        col = db.create_collection(
            "f", vectors={"d": vf.Dense(dim=2), "bm25": vf.Sparse(analyzer=None)}, max_segment_points=25
        )
        col.upsert(list(range(n)), {"d": np.ones((n, 2)), "bm25": rows}, [{"b": i % 100} for i in range(n)])
        query = vf.SparseVector(np.array([1, 3, 7]), np.ones(3, np.float32))
        hits = col.search(
            query, k, using="bm25", filter={"must": [{"key": "b", "range": {"lt": selectivity}}]}
        )
        oracle = SparseIndex()
        oracle.add(rows)
        scores, found = oracle.bm25(query, oracle.stats([1, 3, 7]), n)
        expected = sorted(
            ((int(r), float(s)) for r, s in zip(found, scores, strict=True) if r % 100 < selectivity),
            key=lambda rs: (-rs[1], rs[0]),
        )[:k]
        assert [h.id for h in hits] == [pid for pid, _ in expected]
        assert [h.score for h in hits] == [score for _, score in expected]  # the same float32 sums


def test_identical_further_dense_vectors_tie_and_page_by_id(db: vf.DatabaseAPI) -> None:
    """Scores are computed row by row (not by a BLAS product whose rounding depends on a row's place)."""
    rng = np.random.default_rng(8)
    v, q = rng.normal(size=100), rng.normal(size=100)
    col = db.create_collection("same", vectors={"d": vf.Dense(dim=4), "t": vf.Dense(dim=100, index="flat")})
    col.upsert(list(range(143)), {"d": rng.normal(size=(143, 4)), "t": [v] * 143})
    assert [h.id for h in col.search(q, 3, using="t")] == [0, 1, 2]
    assert [h.id for h in col.search(q, 3, using="t", offset=140)] == [140, 141, 142]


def test_a_further_dense_row_some_points_lack_travels_and_is_checked(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("t", vectors={"d": vf.Dense(dim=2), "t": vf.Dense(dim=3, index="flat")})
    with pytest.raises(vf.InvalidVector, match="NaN"):
        col.upsert([1, 2], {"d": np.ones((2, 2)), "t": [np.array([np.nan, 0, 0]), None]})
    col.upsert([1, 2], {"d": np.ones((2, 2)), "t": [np.array([1.0, 0, 0]), None]})
    assert [h.id for h in col.search(np.array([1.0, 0, 0]), 5, using="t")] == [1]
    assert col.count() == 2


def test_a_restored_config_follows_the_rules_of_create() -> None:
    from vectorforge.engine.restore_check import check_config

    config = vf.CollectionConfig(name="x", dim=2, extra_dense={"t": vf.Dense(dim=3, index="hnsw")})
    with pytest.raises(vf.InvalidParameter, match="second dense vector is searched exactly"):
        check_config(config)


def test_a_further_dense_vector_given_as_one_array_is_checked_at_once(db: vf.DatabaseAPI) -> None:
    col = db.create_collection("arr", vectors={"d": vf.Dense(dim=2), "t": vf.Dense(dim=3, index="flat")})
    with pytest.raises(
        vf.DimensionMismatch, match=r"vectors\['t'\] has 4 numbers a row; this dense vector has 3"
    ):
        col.upsert([1, 2], {"d": np.ones((2, 2)), "t": np.ones((2, 4))})
    bad = np.ones((2, 3))
    bad[1, 0] = np.nan
    with pytest.raises(vf.InvalidVector, match=r"vectors\['t'\]: .*NaN"):
        col.upsert([1, 2], {"d": np.ones((2, 2)), "t": bad})
    assert col.count() == 0
    col.upsert([1, 2], {"d": np.ones((2, 2)), "t": np.eye(3)[:2]})
    assert [h.id for h in col.search([1.0, 0, 0], 1, using="t")] == [1]
