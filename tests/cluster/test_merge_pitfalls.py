"""The ways a sharded top-k merge silently goes wrong, one test each.

Every test builds a data layout on which the naive approach gives a wrong answer, computes that
naive answer from the shards' own answers (so the layout provably exercises the pitfall), and then
checks that `ShardedCollection` answers like the oracle: one unsharded `flat` collection holding the
same points, compared on ids and scores.

Key sharding (`sharding="key", shard_key="shard"`) places each point on the shard we choose.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import faiss
import numpy as np
import pytest

import vectorforge as vf
from vectorforge.cluster import ShardedCollection, stable_hash
from vectorforge.engine.merge import hit_order, merge_topk
from vectorforge.index.exact import distances_to_scores
from vectorforge.types import Hit, Metric

DIM = 8


# ---------------------------------------------------------------------------------------------- helpers
def shard_keys(n_shards: int) -> list[str]:
    """For each shard, a value of the `shard` payload field that key sharding places on it."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < n_shards:
        found.setdefault(stable_hash(f"s{i}") % n_shards, f"s{i}")
        i += 1
    return [found[s] for s in range(n_shards)]


def pair(
    metric: str, n_shards: int, *, index: str = "flat", **extra: Any
) -> tuple[Any, ShardedCollection, list[str]]:
    """(unsharded flat oracle, key-sharded collection, the shard-key value of each shard)."""
    db = vf.connect()
    one = db.create_collection("one", dim=extra.pop("dim", DIM), metric=metric, index="flat")
    many = db.create_collection(
        "many",
        dim=one.dim,
        metric=metric,
        index=index,
        shards=n_shards,
        sharding="key",
        shard_key="shard",
        **extra,
    )
    assert isinstance(many, ShardedCollection)
    return one, many, shard_keys(n_shards)


def upsert_both(cols: Sequence[Any], ids: list[Any], vectors: np.ndarray, payloads: list[dict]) -> None:
    for col in cols:
        col.upsert(ids, vectors, payloads)


def engine(col: ShardedCollection, shard_no: int) -> Any:
    """The engine Collection of shard `shard_no`'s first replica."""
    return col.shards[shard_no].replicas[0].collection


def shard_answers(col: ShardedCollection, query: np.ndarray, k: int, **search_args: Any) -> list[list[Hit]]:
    """Each shard's own answer (from its replica's engine collection)."""
    return [engine(col, s).search(query, k=k, **search_args) for s in range(len(col.shards))]


def ids_of(hits: Sequence[Hit]) -> list[Any]:
    return [h.id for h in hits]


def scores_of(hits: Sequence[Hit]) -> np.ndarray:
    return np.array([h.score for h in hits], dtype=np.float64)


def assert_same_hits(got: Sequence[Hit], want: Sequence[Hit]) -> None:
    assert ids_of(got) == ids_of(want)
    np.testing.assert_allclose(scores_of(got), scores_of(want), rtol=1e-5)


def around(rng: np.random.Generator, center: np.ndarray, radii: Sequence[float]) -> np.ndarray:
    """Points at exactly the given euclidean distances from `center`, in random directions."""
    dirs = rng.standard_normal((len(radii), center.shape[0]))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return (center + dirs * np.asarray(radii)[:, None]).astype(np.float32)


@pytest.fixture
def one_faiss_thread() -> Iterator[None]:
    """FAISS training with OpenMP threads spins for seconds on a busy 2-core machine; one thread is fast."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


# ------------------------------------------------------------------------------------- 1. k, not k / N
def test_each_shard_is_asked_for_k_not_k_over_n() -> None:
    """All of the true top-k sit on one shard: asking each shard for k // N loses most of them."""
    rng = np.random.default_rng(10)
    n_shards, k = 3, 9
    one, many, keys = pair("l2", n_shards)
    query = np.zeros(DIM, np.float32)
    near = around(rng, query, np.linspace(1.0, 2.0, 15))  # the 15 nearest points: all on shard 0
    far = around(rng, query, rng.uniform(3.0, 6.0, 60))
    vectors = np.concatenate([near, far])
    shard_of = [0] * 15 + [1 + i % 2 for i in range(60)]
    ids = list(range(len(vectors)))
    upsert_both((one, many), ids, vectors, [{"shard": keys[s]} for s in shard_of])

    want = one.search(query, k=k)
    assert {shard_of[pid] for pid in ids_of(want)} == {0}  # the layout: the whole top-k on one shard

    naive = merge_topk(shard_answers(many, query, k // n_shards), k)
    assert ids_of(naive) != ids_of(want)
    assert len(set(ids_of(naive)) & set(ids_of(want))) == k // n_shards  # only shard 0's share survives

    assert_same_hits(many.search(query, k=k), want)
    batch = many.search_batch(np.stack([query, query + 0.01]), k=k)
    assert_same_hits(batch[0], want)
    assert_same_hits(batch[1], one.search(query + 0.01, k=k))


# ---------------------------------------------------------------------------- 2. offset after the merge
def test_offset_is_applied_after_the_merge_not_per_shard() -> None:
    """The best hits alternate between shards: skipping `offset` on every shard skips N * offset."""
    rng = np.random.default_rng(11)
    n_shards, k, offset = 3, 4, 5
    one, many, keys = pair("cosine", n_shards)
    query = rng.standard_normal(DIM).astype(np.float32)
    unit_q = query / np.linalg.norm(query)
    # 30 points whose cosine to the query falls from 0.99 by equal steps, dealt round-robin to the shards
    cosines = np.linspace(0.99, 0.40, 30)
    ortho = rng.standard_normal((30, DIM))
    ortho -= (ortho @ unit_q)[:, None] * unit_q
    ortho /= np.linalg.norm(ortho, axis=1, keepdims=True)
    vectors = (cosines[:, None] * unit_q + np.sqrt(1 - cosines**2)[:, None] * ortho).astype(np.float32)
    vectors *= rng.uniform(0.5, 3.0, (30, 1)).astype(np.float32)  # cosine ignores the norm
    shard_of = [i % n_shards for i in range(30)]
    ids = [f"p{i:02d}" for i in range(30)]
    upsert_both((one, many), ids, vectors, [{"shard": keys[s]} for s in shard_of])

    want = one.search(query, k=k, offset=offset)
    assert ids_of(want) == [f"p{i:02d}" for i in range(offset, offset + k)]
    np.testing.assert_allclose(scores_of(want), cosines[offset : offset + k], rtol=1e-5)

    naive = merge_topk(shard_answers(many, query, k, offset=offset), k)  # offset per shard, then merge
    assert ids_of(naive) != ids_of(want)
    assert not set(ids_of(naive)) & set(ids_of(want))

    assert_same_hits(many.search(query, k=k, offset=offset), want)
    for off in (0, 1, 7, 26, 29, 30, 40):  # and every other window, up to past the end
        assert_same_hits(many.search(query, k=k, offset=off), one.search(query, k=k, offset=off))


# ----------------------------------------------------------------------- 3. quantized scores re-scored
IVF_PARAMS = {"nlist": 4, "m": 4, "nbits": 4, "nprobe": 4}  # nprobe = nlist: every list is visited
IVF_DIM = 16
PER_SHARD = 2_000  # ivfpq searches a segment exactly below MIN_TRAIN_ROWS (2,000) rows


def test_quantized_shard_scores_are_rescored_before_the_merge(one_faiss_thread: None) -> None:
    """Two ivfpq shards trained on different data have different codebooks, so their approximate
    (PQ) scores do not compare; each shard re-scores its candidates at full precision, and the merge
    of exact scores is the exact top-k."""
    rng = np.random.default_rng(12)
    k = 10
    one, many, keys = pair("l2", 2, index="ivfpq", index_params=IVF_PARAMS, dim=IVF_DIM)
    query = np.full(IVF_DIM, 2.5, np.float32)  # |query| = 10: far from both backgrounds
    # 20 planted points at distances 1.00, 1.02, ... 1.38 from the query, alternating shards: the
    # true top-10 is the first ten, five on each shard, separated by less than the PQ error.
    radii = 1.0 + 0.02 * np.arange(20)
    planted = around(rng, query, radii)
    # Different distributions, so different codebooks: isotropic noise on shard 0; on shard 1 a
    # stretched, shifted cloud that lives mostly in four dimensions.
    back0 = rng.standard_normal((PER_SHARD - 10, IVF_DIM)).astype(np.float32)
    back1 = (rng.standard_normal((PER_SHARD - 10, IVF_DIM)) * 0.1).astype(np.float32)
    back1[:, :4] = rng.standard_normal((PER_SHARD - 10, 4)) * 3.0
    back1 -= 2.0
    vectors = np.concatenate([planted, back0, back1])
    shard_of = [i % 2 for i in range(20)] + [0] * len(back0) + [1] * len(back1)
    ids = list(range(len(vectors)))
    upsert_both((one, many), ids, vectors, [{"shard": keys[s]} for s in shard_of])
    many.flush()  # seals each shard's segment: it trains its own IVF-PQ

    want = one.search(query, k=k)
    assert ids_of(want) == list(range(k))
    assert {shard_of[pid] for pid in ids_of(want)} == {0, 1}
    np.testing.assert_allclose(-scores_of(want), radii[:k], rtol=1e-5)

    # The layout: both shards hold a trained, sealed ivfpq segment, with codebooks that differ.
    segments = [[seg for seg in engine(many, s)._segments if seg.n] for s in range(2)]
    assert [len(segs) for segs in segments] == [1, 1]
    indexes = [segs[0].index for segs in segments]
    assert all(seg.sealed for segs in segments for seg in segs)
    assert all(ix.trained and ix.index.ntotal == PER_SHARD for ix in indexes)
    codebooks = [faiss.vector_to_array(faiss.downcast_index(ix.index).pq.centroids) for ix in indexes]
    assert not np.allclose(codebooks[0], codebooks[1])

    # Naive: merge the shards' approximate (quantized) scores as FAISS returns them, no re-scoring.
    naive_sources = []
    for segs in segments:
        seg = segs[0]
        dist, rows = seg.index.index.search(
            query[None, :], k, params=faiss.SearchParametersIVF(nprobe=IVF_PARAMS["nlist"])
        )
        scores = distances_to_scores(dist, Metric.L2)
        naive_sources.append(
            [Hit(seg.ids[r], float(s)) for s, r in zip(scores[0], rows[0], strict=True) if r >= 0]
        )
    naive = merge_topk(naive_sources, k)
    assert ids_of(naive) != ids_of(want)
    assert not np.allclose(scores_of(naive), scores_of(want), rtol=1e-3)

    # Re-scored: every shard's candidates are all its rows here (rerank * (k + 1) >= rows), so the
    # answer is exact by construction and must equal the flat oracle, ids and scores.
    got = many.search(query, k=k, params={"rerank": 200})
    assert_same_hits(got, want)
    exact = -np.linalg.norm(vectors[ids_of(got)].astype(np.float64) - query, axis=1)
    np.testing.assert_allclose(scores_of(got), exact, rtol=1e-5)
    for offset in (3, 12):
        assert_same_hits(
            many.search(query, k=k, offset=offset, params={"rerank": 200}),
            one.search(query, k=k, offset=offset),
        )


# --------------------------------------------------------------- 4. distance vs similarity order
def _brute_force(metric: str, vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[list[int], np.ndarray]:
    """Ids and higher-is-better scores of the true top-k, computed with numpy in float64."""
    v, q = vectors.astype(np.float64), query.astype(np.float64)
    if metric == "l2":
        scores = -np.linalg.norm(v - q, axis=1)
    elif metric == "dot":
        scores = v @ q
    else:
        scores = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    order = np.argsort(-scores, kind="stable")[:k]
    return order.tolist(), scores[order]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_merge_order_is_higher_is_better_for_every_metric(metric: str) -> None:
    """Shards answer with higher-is-better scores for every metric (l2: minus the distance); a merge
    that orders them the FAISS-distance way (ascending) returns the worst hits, not the best."""
    rng = np.random.default_rng(13)
    n_shards, k = 3, 8
    one, many, keys = pair(metric, n_shards)
    n = 90
    # Norms from 0.2 to 5: cosine, dot and l2 rank these points differently.
    vectors = (rng.standard_normal((n, DIM)) * rng.uniform(0.2, 5.0, (n, 1))).astype(np.float32)
    ids = list(range(n))
    upsert_both((one, many), ids, vectors, [{"shard": keys[i % n_shards]} for i in ids])
    query = rng.standard_normal(DIM).astype(np.float32)

    want = one.search(query, k=k)
    true_ids, true_scores = _brute_force(metric, vectors, query, k)
    assert ids_of(want) == true_ids
    np.testing.assert_allclose(scores_of(want), true_scores, rtol=1e-5)
    others = {m: _brute_force(m, vectors, query, k)[0] for m in ("cosine", "dot", "l2") if m != metric}
    assert all(ids != true_ids for ids in others.values())  # the layout tells the metrics apart

    # Naive: merge by the distance convention (lower is better), as FAISS's raw l2 output sorts.
    sources = shard_answers(many, query, k)
    naive = sorted((h for src in sources for h in src), key=lambda h: (h.score, hit_order(h)[1:]))[:k]
    assert ids_of(naive) != ids_of(want)
    assert not set(ids_of(naive)) & set(true_ids)

    got = many.search(query, k=k)
    assert_same_hits(got, want)
    assert all(a.score >= b.score for a, b in itertools.pairwise(got))  # best first
    if metric == "l2":
        assert all(h.score <= 0 for h in got)  # minus a distance, never a raw distance
    got_batch = many.search_batch(np.stack([query, -query]), k=k)
    assert_same_hits(got_batch[0], want)
    assert_same_hits(got_batch[1], one.search(-query, k=k))


# ------------------------------------------------------------ 5. filtered shards with fewer than k
RED = {"must": [{"key": "color", "match": "red"}]}
BLUE = {"must": [{"key": "color", "match": "blue"}]}


def test_filtered_shards_with_fewer_than_k_matches() -> None:
    """'red': shard 0 holds none, shard 1 two (the two best), shard 2 thirty. k=10 returns the true
    top-10 red points; 'blue' (three points overall) returns exactly those three."""
    rng = np.random.default_rng(14)
    k = 10
    one, many, keys = pair("l2", 3)
    query = np.zeros(DIM, np.float32)
    rows: list[tuple[np.ndarray, int, str]] = []  # (vector, shard, color)
    # Unfiltered, the nearest points are all grey: a post-filter of each shard's top-k finds no red.
    rows += [(v, s, "grey") for s in range(3) for v in around(rng, query, rng.uniform(0.5, 1.0, 20))]
    rows += [(v, 1, "red") for v in around(rng, query, [1.5, 1.6])]  # the two best red points
    rows += [(v, 2, "red") for v in around(rng, query, rng.uniform(1.7, 4.0, 30))]
    rows += [(v, 1, "blue") for v in around(rng, query, [2.0])]
    rows += [(v, 2, "blue") for v in around(rng, query, [1.2, 3.0])]
    vectors = np.stack([r[0] for r in rows])
    shard_of = [r[1] for r in rows]
    color = [r[2] for r in rows]
    ids = list(range(len(rows)))
    upsert_both((one, many), ids, vectors, [{"shard": keys[s], "color": c} for _, s, c in rows])

    red_per_shard = [engine(many, s).count(RED) for s in range(3)]
    assert red_per_shard == [0, 2, 30]
    want = one.search(query, k=k, filter=RED)
    red_ids = [i for i in ids if color[i] == "red"]
    true_red = sorted(red_ids, key=lambda i: np.linalg.norm(vectors[i]))[:k]
    assert ids_of(want) == true_red
    assert {shard_of[i] for i in true_red} == {1, 2}

    # Naive 1: post-filter the shards' unfiltered top-k.
    post = [h for h in merge_topk(shard_answers(many, query, k), k) if color[h.id] == "red"]
    assert ids_of(post) != ids_of(want) and len(post) < k
    # Naive 2: k // N per shard: short shards leave the answer short.
    split = merge_topk(shard_answers(many, query, k // 3, filter=RED), k)
    assert ids_of(split) != ids_of(want) and len(split) < k
    # Naive 3: drop (or wait for) shards that return fewer than k: shard 1's two best points are lost.
    full_only = merge_topk([a for a in shard_answers(many, query, k, filter=RED) if len(a) == k], k)
    assert ids_of(full_only) != ids_of(want)

    got = many.search(query, k=k, filter=RED)
    assert len(got) == k
    assert_same_hits(got, want)
    assert_same_hits(
        many.search(query, k=k, offset=25, filter=RED), one.search(query, k=k, offset=25, filter=RED)
    )

    # Fewer matches than k overall: exactly those points, no padding.
    blue = [i for i in ids if color[i] == "blue"]
    want_blue = one.search(query, k=k, filter=BLUE)
    assert sorted(ids_of(want_blue)) == blue
    got_blue = many.search(query, k=k, filter=BLUE)
    assert_same_hits(got_blue, want_blue)
    assert all(
        np.isfinite(h.score) and h.payload == {"shard": keys[shard_of[h.id]], "color": "blue"}
        for h in got_blue
    )
    assert many.search(query, k=k, offset=2, filter=BLUE) == [got_blue[2]]
    assert many.search(query, k=k, offset=3, filter=BLUE) == []
    assert many.count(BLUE) == 3 and many.count(RED) == 32
    nothing = {"must": [{"key": "color", "match": "green"}]}
    assert many.search(query, k=k, filter=nothing) == []


# --------------------------------------------------------------- 6. the same id on two shards
MOVING = 1_000


def test_an_id_on_two_shards_is_returned_once() -> None:
    """While a point moves between shards it sits on both for a moment. search returns it once with
    the better-scoring copy's score (and payload); get and scroll return it once."""
    rng = np.random.default_rng(15)
    k = 6
    one, many, keys = pair("l2", 2)
    query = np.zeros(DIM, np.float32)
    n = 40
    vectors = around(rng, query, np.linspace(1.0, 5.0, n))
    ids = list(range(n))
    upsert_both((one, many), ids, vectors, [{"shard": keys[i % 2]} for i in ids])
    # The old copy (shard 0, listed first) scores worse than the new one (shard 1); both in the top-k.
    old_vec, new_vec = around(rng, query, [1.15]), around(rng, query, [0.5])
    old_payload, new_payload = {"shard": keys[0], "copy": "old"}, {"shard": keys[1], "copy": "new"}
    many.shards[0].upsert([MOVING], old_vec, [old_payload])
    many.shards[1].upsert([MOVING], new_vec, [new_payload])
    assert [engine(many, s).count() for s in range(2)] == [21, 21]  # the layout: on both shards
    one.upsert([MOVING], new_vec, [new_payload])  # the oracle holds the better-scoring copy

    want = one.search(query, k=k)
    assert ids_of(want)[0] == MOVING
    sources = shard_answers(many, query, k)
    assert all(MOVING in ids_of(src) for src in sources)

    # Naive 1: concatenate without de-duplication: the id twice, and one point pushed out.
    concat = merge_topk(sources, k, disjoint=True)
    assert ids_of(concat).count(MOVING) == 2 and ids_of(concat) != ids_of(want)
    # Naive 2: keep the first copy seen (shard order): the worse copy's score and rank.
    first: dict[Any, Hit] = {}
    for src in sources:
        for hit in src:
            first.setdefault(hit.id, hit)
    first_seen = sorted(first.values(), key=hit_order)[:k]
    assert ids_of(first_seen) != ids_of(want)

    got = many.search(query, k=k)
    assert ids_of(got).count(MOVING) == 1
    assert_same_hits(got, want)
    assert got[0].payload == new_payload
    np.testing.assert_allclose(got[0].score, -0.5, rtol=1e-5)
    for offset in (0, 1, 3):
        assert_same_hits(many.search(query, k=3, offset=offset), one.search(query, k=3, offset=offset))

    # get: once, in the order asked.
    records = many.get([3, MOVING, 4])
    assert [r.id for r in records] == [3, MOVING, 4]
    assert [r.payload["copy"] for r in many.get([MOVING])] in (["old"], ["new"])

    # scroll: once, on every page size (including pages that end at the duplicate).
    expected = _scroll_ids(one, 1000)
    assert expected.count(MOVING) == 1
    for limit in (1, 2, 3, 7, 40, 41, 1000):
        assert _scroll_ids(many, limit) == expected
    assert _scroll_ids(many, 5, {"must": [{"key": "copy", "match": "new"}]}) == [MOVING]


def _scroll_ids(col: Any, limit: int, flt: dict | None = None) -> list[Any]:
    out: list[Any] = []
    cursor = None
    while True:
        page = col.scroll(limit=limit, cursor=cursor, filter=flt)
        out.extend(r.id for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            return out


@pytest.mark.parametrize(
    ("index", "params"),
    [
        ("hnsw", {"quantization": "sq8"}),
        ("hnsw", {"quantization": "rabitq"}),
        ("ivfflat", {"quantization": "sq8", "nlist": 4, "nprobe": 4}),
        ("ivfflat", {"quantization": "rabitq", "nlist": 4, "nprobe": 4}),
    ],
)
def test_sq8_and_rabitq_shards_merge_their_rescored_scores(
    one_faiss_thread: None, index: str, params: dict[str, Any]
) -> None:
    """As for ivfpq: two shards' codes are trained on different data, and the merge of their
    re-scored (exact) scores is the exact top-k, ids and scores."""
    rng = np.random.default_rng(5)
    k = 10
    one, many, keys = pair("l2", 2, index=index, index_params=params, dim=IVF_DIM)
    query = np.full(IVF_DIM, 2.5, np.float32)
    radii = 1.0 + 0.02 * np.arange(20)
    planted = around(rng, query, radii)
    back0 = rng.standard_normal((PER_SHARD - 10, IVF_DIM)).astype(np.float32)
    back1 = (rng.standard_normal((PER_SHARD - 10, IVF_DIM)) * 0.1 - 2.0).astype(np.float32)
    vectors = np.concatenate([planted, back0, back1])
    shard_of = [i % 2 for i in range(20)] + [0] * len(back0) + [1] * len(back1)
    ids = list(range(len(vectors)))
    upsert_both((one, many), ids, vectors, [{"shard": keys[s]} for s in shard_of])
    many.flush()
    indexes = [next(seg.index for seg in engine(many, s)._segments if seg.n) for s in range(2)]
    assert all(ix.index is not None and ix.vectors_on_disk for ix in indexes)  # codes, trained
    wide = {"oversample": 100.0, **({"ef": 4096} if index == "hnsw" else {})}  # every row re-scored
    got = many.search(query, k=k, params=wide)
    assert_same_hits(got, one.search(query, k=k))
    exact = -np.linalg.norm(vectors[ids_of(got)].astype(np.float64) - query, axis=1)
    np.testing.assert_allclose(scores_of(got), exact, rtol=1e-5)
    for hit in many.search(query, k=k):  # default oversampling: fewer candidates, scores still exact
        assert hit.score == pytest.approx(-float(np.linalg.norm(vectors[hit.id] - query)), rel=1e-5)
