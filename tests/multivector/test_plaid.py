"""The PLAID index against its oracle, exact MaxSim (the `flat` index of multi vectors): the codec,
the four stages with exhaustive parameters (equal to exact), recall with the defaults, and PLAID
collections embedded, on disk, sharded and over HTTP (filters, deletes, restarts, compaction),
in-process and to a real server process."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf
from tests.serverproc import start_server
from vectorforge.index.maxsim import MultiVectorIndex
from vectorforge.multivector.codec import ResidualCodec, num_centroids, sample_passages
from vectorforge.multivector.plaid import PLAIDIndex, default_search, tokens_path
from vectorforge.multivector.pooling import pool_tokens


def clustered(n: int, dim: int, seed: int, topics: int = 40) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` documents of 3 to 30 unit tokens drawn around `topics` centres, and the centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, dim)).astype(np.float32)
    docs = []
    for _ in range(n):
        c = centres[rng.integers(0, topics, size=int(rng.integers(3, 30)))]
        docs.append(unit(c + 0.35 * rng.normal(size=c.shape).astype(np.float32)))
    return docs, centres


def unit(a: np.ndarray) -> np.ndarray:
    out: np.ndarray = (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)
    return out


def query(centres: np.ndarray, rng: np.random.Generator, n: int = 8) -> np.ndarray:
    c = centres[rng.integers(0, len(centres), size=n)]
    return unit(c + 0.35 * rng.normal(size=c.shape).astype(np.float32))


def exhaustive(n: int) -> dict[str, Any]:
    return {"ncells": 1 << 20, "centroid_score_threshold": -1e9, "ndocs": 4 * n, "rescore": n}


def test_reference_sizes() -> None:
    assert sample_passages(100) == 100
    assert sample_passages(1_000_000) == int(1 + 16 * np.sqrt(120 * 1_000_000))
    assert num_centroids(10_000_000, 10_000_000) == 32_768  # 16 sqrt(1e7) = 50,596 -> 2**15
    assert num_centroids(10_000_000, 39 * 1024) == 1024  # capped: ~39 sample tokens a centroid
    assert default_search(10) == (1, 0.5, 256) and default_search(100) == (2, 0.45, 1024)
    assert default_search(1000) == (4, 0.4, 4096) and default_search(2000) == (4, 0.4, 8000)


@pytest.mark.parametrize("nbits", [1, 2, 4])
def test_codec_bytes_and_error_shrink_with_bits(nbits: int) -> None:
    docs, _ = clustered(400, 128, 0)
    tokens = np.concatenate(docs)
    codec = ResidualCodec.train(tokens, 64, nbits)
    codes, packed = codec.encode(tokens)
    assert packed.shape == (len(tokens), 128 * nbits // 8) and packed.dtype == np.uint8
    assert codec.bytes_per_token == 4 + 16 * nbits  # 36 at 2 bits, as ColBERTv2
    decoded = codec.decode(codes, packed)
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1, atol=1e-5)
    cos = (decoded * tokens).sum(axis=1).mean()
    centroid_only = (codec.centroids[codes] * tokens).sum(axis=1).mean()
    assert cos > centroid_only  # the residual adds what the centroid alone misses
    assert cos > {1: 0.85, 2: 0.93, 4: 0.98}[nbits]


def sealed(docs: list[np.ndarray], dim: int, **params: Any) -> PLAIDIndex:
    index = PLAIDIndex(dim, {"exact_below_tokens": 0, **params})
    index.add(docs)
    index.seal()
    return index


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 120),
    seed=st.integers(0, 10_000),
    k=st.integers(1, 15),
    nbits=st.sampled_from([1, 2, 4]),
    masked=st.booleans(),
)
def test_exhaustive_parameters_equal_exact_maxsim(
    n: int, seed: int, k: int, nbits: int, masked: bool
) -> None:
    docs, centres = clustered(n, 16, seed, topics=6)
    docs = [None if i % 7 == 3 else d for i, d in enumerate(docs)]  # rows without tokens
    plaid, flat = sealed(docs, 16, nbits=nbits), MultiVectorIndex(16)  # type: ignore[arg-type]
    flat.add(docs)
    rng = np.random.default_rng(seed)
    mask = rng.random(n) < 0.6 if masked else None
    q = query(centres, rng, 5)
    got = plaid.search(q, k, mask, exhaustive(n))
    want = flat.search(q, k, mask)
    assert got[1].tolist() == want[1].tolist()
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)


def test_defaults_find_the_exact_top_10() -> None:
    docs, centres = clustered(3000, 64, 1, topics=2000)  # about as many topics as centroids
    plaid, flat = sealed(docs, 64), MultiVectorIndex(64)
    flat.add(docs)
    assert plaid.describe()["mode"] == "plaid" and plaid.describe()["bytes_per_token"] == 4 + 16
    rng = np.random.default_rng(2)
    recall: dict[str, list[float]] = {"default": [], "deeper": []}
    for _ in range(40):
        q = query(centres, rng)
        want = set(flat.search(q, 10)[1].tolist())
        for name, params in (("default", None), ("deeper", {"ncells": 4, "ndocs": 1024})):
            scores, got = plaid.search(q, 10, None, params)
            recall[name].append(len(set(got.tolist()) & want) / 10)
            # whatever PLAID returns is scored exactly: the merge contract
            np.testing.assert_allclose(scores, flat.scores(q)[got], rtol=1e-6)
    # a hard set (each document a bag of random topics, the exact top 10 decided by noise)
    assert np.mean(recall["default"]) >= 0.7
    assert np.mean(recall["deeper"]) >= 0.9


def test_search_params_are_checked() -> None:
    plaid = sealed(clustered(300, 16, 0)[0], 16)
    q = np.ones((2, 16), np.float32) / 4
    for bad, message in [
        ({"nprobe": 3}, "unknown search params"),
        ({"ncells": 0}, "ncells must be an integer"),
        ({"ndocs": "x"}, "ndocs must be an integer"),
        ({"centroid_score_threshold": "high"}, "centroid_score_threshold must be a number"),
        ({"exact": 1}, "exact"),
    ]:
        with pytest.raises(vf.InvalidParameter, match=message):
            plaid.search(q, 5, None, bad)
    with pytest.raises(vf.InvalidParameter, match="takes"):
        MultiVectorIndex(16).search(q, 5, None, {"ncells": 2})
    with pytest.raises(vf.InvalidParameter, match="nbits must be 1, 2 or 4"):
        PLAIDIndex(16, {"nbits": 3})


def test_a_segment_whose_seal_failed_grows_on_and_stays_exact() -> None:
    docs, centres = clustered(200, 16, 3)
    plaid = sealed(docs, 16)
    plaid.add(docs[:5])  # the seal did not commit: rows keep coming
    assert plaid.describe()["mode"] == "exact"
    flat = MultiVectorIndex(16)
    flat.add(docs + docs[:5])
    q = query(centres, np.random.default_rng(0))
    assert plaid.search(q, 10)[1].tolist() == flat.search(q, 10)[1].tolist()


def collections(db: Any, name: str) -> tuple[Any, Any]:
    shards = getattr(db, "shards", 1)
    options = {"shards": shards} if shards > 1 else {}
    plaid = db.create_collection(
        name,
        vectors={"t": vf.Multi(dim=32, index="plaid", index_params={"exact_below_tokens": 500})},
        **options,
    )
    flat = db.create_collection(name + "_flat", vectors={"t": vf.Multi(dim=32)}, **options)
    return plaid, flat


def test_plaid_collections_answer_as_exact_maxsim(db: Any) -> None:
    docs, centres = clustered(600, 32, 4)
    plaid, flat = collections(db, "p")
    ids = list(range(600))
    payloads = [{"even": i % 2 == 0} for i in ids]
    for col in (plaid, flat):
        col.upsert(ids, {"t": docs}, payloads)
        col.delete(ids[:30])
        col.flush()
    plaid.optimize()  # the codec is trained by compaction, off the write lock
    info = plaid.info()
    modes = {m["t"]["mode"] for m in _segment_multi(info)}
    assert "plaid" in modes  # sealed segments are compressed, and say so
    rng = np.random.default_rng(5)
    even = {"must": [{"key": "even", "match": True}]}
    for _ in range(5):
        q = query(centres, rng)
        for options in ({}, {"filter": even}):
            got = plaid.search(q, k=10, using="t", params=exhaustive(600), **options)
            want = flat.search(q, k=10, using="t", **options)
            assert [h.id for h in got] == [h.id for h in want]
            assert all(h.id >= 30 for h in got)  # deleted points never come back
            if options:
                assert all(h.payload["even"] for h in got)
        default = {h.id for h in plaid.search(q, k=10, using="t")}
        assert len(default & {h.id for h in flat.search(q, k=10, using="t")}) >= 7


def _segment_multi(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Every segment's `multi` entry (a sharded collection's info lists its shards')."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "multi" in node and isinstance(node["multi"], dict) and "sealed" in node:
                found.append(node["multi"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(info)
    return found


def test_a_plaid_segment_is_mapped_from_disk_and_survives_a_restart(tmp_path: Path) -> None:
    docs, centres = clustered(400, 32, 6)
    db = vf.connect(tmp_path)
    col = db.create_collection(
        "p", vectors={"t": vf.Multi(dim=32, index="plaid", index_params={"exact_below_tokens": 1})}
    )
    col.upsert(list(range(400)), {"t": docs})
    col.flush()
    col.optimize()
    q = query(centres, np.random.default_rng(7))
    before = [(h.id, h.score) for h in col.search(q, k=10, using="t")]
    db.close()
    files = sorted(p.name for p in (tmp_path / "collections" / "p" / "segments").glob("*/multi-*"))
    assert files == ["multi-t.npz", "multi-t.tokens.npy"]
    db = vf.connect(tmp_path)
    col = db.get_collection("p")
    seg = next(s for s in col._segments if s.sealed)
    index = seg.named["t"]
    assert isinstance(index, PLAIDIndex) and isinstance(index._matrix()[0], np.memmap)
    assert [(h.id, h.score) for h in col.search(q, k=10, using="t")] == before
    record = col.get([3], with_vectors=True)[0]
    np.testing.assert_allclose(np.asarray(record.vectors["t"]), docs[3], rtol=1e-6)
    db.close()
    tokens_path(tmp_path / "collections" / "p" / "segments" / seg.name / "multi-t.npz").write_bytes(
        b"not numpy"
    )
    with pytest.raises(vf.CorruptionError):
        vf.connect(tmp_path).get_collection("p")


def test_more_than_5_percent_deleted_rebuilds_the_codec_in_the_background(tmp_path: Path) -> None:
    docs, centres = clustered(1000, 32, 8)
    db = vf.connect(tmp_path)
    spec = vf.Multi(dim=32, index="plaid", index_params={"exact_below_tokens": 1})
    col = db.create_collection("p", vectors={"t": spec}, max_segment_points=5000)
    flat = db.create_collection("f", vectors={"t": vf.Multi(dim=32)})
    for c in (col, flat):
        c.upsert(list(range(1000)), {"t": docs})
    col.flush()
    col.optimize()
    first = next(s for s in col._segments if s.sealed)
    assert col.info()["segments"][0]["multi"]["t"]["mode"] == "plaid"
    col.delete(list(range(40)))  # 4%: the codec stays
    if col._compactor is not None:
        col._compactor.join()
    assert first in col._segments
    col.delete(list(range(40, 60)))  # 6% changed since the codec was trained: rebuilt
    flat.delete(list(range(60)))
    assert col._compactor is not None
    col._compactor.join()
    rebuilt = next(s for s in col._segments if s.sealed)
    assert rebuilt is not first and rebuilt.n == 940 and rebuilt.n_live == 940
    assert col.info()["segments"][0]["multi"]["t"]["mode"] == "plaid"
    q = query(centres, np.random.default_rng(9))
    got = col.search(q, k=10, using="t", params=exhaustive(1000))
    assert [h.id for h in got] == [h.id for h in flat.search(q, k=10, using="t")]
    db.close()


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10_000), sealed_too=st.booleans())
def test_pool_factor_1_equals_no_pooling(n: int, seed: int, sealed_too: bool) -> None:
    docs, centres = clustered(n, 16, seed, topics=5)
    plain = PLAIDIndex(16, {"exact_below_tokens": 0})
    pooled = PLAIDIndex(16, {"exact_below_tokens": 0, "pool_factor": 1})
    for index in (plain, pooled):
        index.add(docs)
        if sealed_too:
            index.seal()
    q = query(centres, np.random.default_rng(seed), 4)
    a, b = plain.search(q, 5, None, exhaustive(n)), pooled.search(q, 5, None, exhaustive(n))
    assert a[1].tolist() == b[1].tolist() and a[0].tolist() == b[0].tolist()
    assert all(np.array_equal(plain.row(i), pooled.row(i)) for i in range(n))


def test_pool_factor_2_halves_the_tokens_and_keeps_the_answers() -> None:
    docs, centres = clustered(500, 32, 10, topics=50)
    plain, pooled = PLAIDIndex(32), PLAIDIndex(32, {"pool_factor": 2})
    plain.add(docs)
    pooled.add(docs)
    assert pooled.describe()["tokens"] <= sum(max(len(d) // 2, 1) for d in docs)
    rng = np.random.default_rng(11)
    overlap = []
    for _ in range(20):
        q = query(centres, rng)
        overlap.append(len(set(plain.search(q, 10)[1].tolist()) & set(pooled.search(q, 10)[1].tolist())) / 10)
    assert np.mean(overlap) >= 0.6


def test_the_codec_trains_off_the_write_lock_and_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing a segment leaves PLAID's k-means (minutes at scale) to compaction: while it trains,
    searches and writes go on, answered exactly; a segment sealed untrained is trained after a
    restart too."""
    import threading

    docs, centres = clustered(300, 32, 12)
    db = vf.connect(tmp_path)
    spec = vf.Multi(dim=32, index="plaid", index_params={"exact_below_tokens": 1})
    col = db.create_collection("p", vectors={"t": spec})
    flat = db.create_collection("f", vectors={"t": vf.Multi(dim=32)})
    started, release = threading.Event(), threading.Event()
    train = ResidualCodec.train.__func__  # type: ignore[attr-defined]

    def held(cls: type[ResidualCodec], *args: Any, **kwargs: Any) -> ResidualCodec:
        started.set()
        assert release.wait(30)
        return train(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(ResidualCodec, "train", classmethod(held))
    for c in (col, flat):
        c.upsert(list(range(300)), {"t": docs})
    col.flush()  # returns at once: the codec is trained in the background
    assert started.wait(30)
    assert col.info()["segments"][0]["multi"]["t"] == {
        "index": "plaid",
        "mode": "exact",
        "tokens": sum(len(d) for d in docs),
        "reason": "the codec is trained in the background",
    }
    q = query(centres, np.random.default_rng(13))
    want = [h.id for h in flat.search(q, k=10, using="t")]
    assert [h.id for h in col.search(q, k=10, using="t")] == want  # exact meanwhile
    col.upsert([1000], {"t": [docs[0]]})  # writes are not blocked either
    flat.upsert([1000], {"t": [docs[0]]})
    release.set()
    assert col._compactor is not None
    col._compactor.join()
    modes = [s["multi"]["t"]["mode"] for s in col.info()["segments"] if s["sealed"]]
    assert modes == ["plaid"]
    want = [h.id for h in flat.search(q, k=10, using="t")]
    assert [h.id for h in col.search(q, k=10, using="t", params=exhaustive(301))] == want
    monkeypatch.undo()
    # sealed untrained, then closed before compaction ran: trained once the collection opens again
    col.upsert(list(range(2000, 2300)), {"t": docs})
    col._seal_growing()
    db.close()
    db = vf.connect(tmp_path)
    col = db.get_collection("p")
    if col._compactor is not None:
        col._compactor.join()
    modes = [s["multi"]["t"]["mode"] for s in col.info()["segments"] if s["sealed"]]
    assert modes and set(modes) == {"plaid"}
    db.close()


def test_a_plaid_collection_in_a_real_server_process_survives_restarts(tmp_path: Path) -> None:
    """Over HTTP to a `vectorforge serve` process: a PLAID collection (every segment compressed:
    exact_below_tokens 0) answers as a flat one (exact MaxSim) with exhaustive parameters, its
    info() shows the sealed segment in "plaid" mode, and the answers are the same after a clean
    restart and after a SIGKILL with unsealed writes in the log."""
    docs, centres = clustered(300, 32, 12)
    more, _ = clustered(20, 32, 13)
    spec = vf.Multi(dim=32, index="plaid", index_params={"exact_below_tokens": 0})
    rng = np.random.default_rng(14)
    queries = [query(centres, rng) for _ in range(4)]
    even = {"must": [{"key": "even", "match": True}]}

    def answers(db: Any, n: int) -> list[list[tuple[Any, float]]]:
        plaid, flat = db.get_collection("plaid"), db.get_collection("flat")
        out = []
        for q in queries:
            for options in ({}, {"filter": even}):
                got = plaid.search(q, k=10, using="t", params=exhaustive(n), **options)
                want = flat.search(q, k=10, using="t", **options)
                assert [h.id for h in got] == [h.id for h in want]
                np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-5)
                out.append([(h.id, h.score) for h in got])
        return out

    server = start_server(tmp_path / "data")
    try:
        with vf.connect(server.url) as db:
            plaid = db.create_collection("plaid", vectors={"t": spec})
            flat = db.create_collection("flat", vectors={"t": vf.Multi(dim=32)})
            assert plaid.info()["vectors"]["t"]["index"] == "plaid"
            ids = list(range(300))
            for col in (plaid, flat):
                col.upsert(ids, {"t": docs}, [{"even": i % 2 == 0} for i in ids])
                col.delete(ids[:10])
                col.flush()
            plaid.optimize()  # the codec is trained by compaction, off the write lock
            sealed_multi = [s["multi"]["t"] for s in plaid.info()["segments"] if s["sealed"]]
            assert sealed_multi and all(m["mode"] == "plaid" and m["index"] == "plaid" for m in sealed_multi)
            # trained by compaction, which keeps the live rows only
            assert sum(m["tokens"] for m in sealed_multi) == sum(len(d) for d in docs[10:])
            before = answers(db, 300)
        server.stop()
        server = start_server(server.data)
        with vf.connect(server.url) as db:
            info = db.get_collection("plaid").info()
            assert [s["multi"]["t"]["mode"] for s in info["segments"] if s["sealed"]] == ["plaid"]
            assert info["points"] == 290
            assert answers(db, 300) == before
            extra = list(range(300, 320))
            for name in ("plaid", "flat"):  # acknowledged, in the log, not sealed
                db.get_collection(name).upsert(extra, {"t": more}, [{"even": True}] * 20)
            after_writes = answers(db, 320)
        server.stop(signal.SIGKILL)
        server = start_server(server.data)
        with vf.connect(server.url) as db:
            assert db.get_collection("plaid").count() == 310
            assert answers(db, 320) == after_writes
    finally:
        server.stop()


def test_pooled_rows_are_pooled_once_through_compaction(tmp_path: Path) -> None:
    """Compaction moves a segment's rows as its index keeps them: pool factor 2 halves the tokens
    once, not again each time the codec is trained or segments merge."""
    docs, _ = clustered(200, 32, 15)
    db = vf.connect(tmp_path)
    spec = vf.Multi(dim=32, index="plaid", index_params={"exact_below_tokens": 1, "pool_factor": 2})
    col = db.create_collection("p", vectors={"t": spec})
    col.upsert(list(range(100)), {"t": docs[:100]})
    col.flush()
    col.upsert(list(range(100, 200)), {"t": docs[100:]})
    col.flush()
    col.optimize()
    sealed = [s for s in col.info()["segments"] if s["sealed"]]
    assert [s["multi"]["t"]["mode"] for s in sealed] == ["plaid"]  # merged and trained
    want = sum(len(pool_tokens(d, 2)) for d in docs)
    assert sealed[0]["multi"]["t"]["tokens"] == want
    db.close()


@pytest.mark.parametrize("shards", [1, 2])
def test_a_payload_update_does_not_pool_the_tokens_again(tmp_path: Path, shards: int) -> None:
    """set_payload writes each point again with the tokens its index keeps, and a reshard copies
    them: already pooled, they must be kept as they are (each update or reshard halved them
    again), also when the log replays the update."""
    docs, _ = clustered(40, 32, 16)
    spec = vf.Multi(dim=32, index="plaid", index_params={"pool_factor": 2})
    db = vf.connect(tmp_path)
    col = db.create_collection("p", vectors={"t": spec}, shards=shards)
    col.upsert(list(range(40)), {"t": docs})
    before = [r.vectors["t"] for r in col.get(list(range(40)), with_vectors=True)]
    assert [len(m) for m in before] == [len(pool_tokens(d, 2)) for d in docs]
    col.set_payload({"tag": "a"}, ids=list(range(40)))
    col.set_payload({"tag": "b"}, filter={"must": [{"key": "tag", "match": {"value": "a"}}]})
    after = [r.vectors["t"] for r in col.get(list(range(40)), with_vectors=True)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    if shards > 1:  # a reshard copies the points with the tokens the old shards keep
        col.reshard(3)
        moved = [r.vectors["t"] for r in col.get(list(range(40)), with_vectors=True)]
        assert all(np.array_equal(a, b) for a, b in zip(before, moved, strict=True))
    db.close()
    db = vf.connect(tmp_path)  # the growing segment comes back from the log
    again = [r.vectors["t"] for r in db.get_collection("p").get(list(range(40)), with_vectors=True)]
    assert all(np.array_equal(a, b) for a, b in zip(before, again, strict=True))
    db.close()


def test_stage_2_ranks_a_passage_whose_centroids_are_all_pruned_last() -> None:
    """As the reference's filter_pids (each query token's max starts at -9999): a candidate with no
    centroid above the threshold is ranked below every one with such a centroid, even one whose
    sum is negative; scoring it 0 let it displace those."""
    from vectorforge.multivector.plaid import _centroid_top

    cs = np.array([[0.6, -0.9], [0.3, 0.3]], np.float32)  # (centroids, query tokens)
    best = cs.max(axis=1)  # centroid 0 kept at threshold 0.5 (0.6), centroid 1 pruned (0.3)

    class Lists:  # centroid 0 lists row 0, centroid 1 lists row 1
        ivf_offsets = np.array([0, 1, 2], np.int64)
        ivf_rows = np.array([0, 1], np.int32)
        n_rows = 2

    kept = _centroid_top(Lists(), cs, best, np.array([0, 1]), 1, 0.5)  # type: ignore[arg-type]
    assert kept.tolist() == [0]  # row 0: 0.6 - 0.9 = -0.3; row 1: every centroid pruned


@pytest.mark.parametrize("kind", ["plaid", "muvera"])
def test_close_unmaps_the_token_files(tmp_path: Path, kind: str) -> None:
    """A closed collection keeps no memory map of its segments' token files, though the caller
    still holds the collection (a deleted collection's files would stay on the disk until then)."""
    docs, _ = clustered(60, 32, 17)
    db = vf.connect(tmp_path)
    spec = vf.Multi(dim=32, index=kind, index_params={"exact_below_tokens": 1})
    col = db.create_collection("p", vectors={"t": spec})
    col.upsert(list(range(60)), {"t": docs})
    col.flush()
    col.optimize()

    def mapped() -> list[str]:
        lines = Path("/proc/self/maps").read_text().splitlines()
        return [line for line in lines if str(tmp_path) in line and ".tokens.npy" in line]

    assert mapped()  # the sealed segment's tokens, memory-mapped
    db.close()
    import gc

    gc.collect()
    assert mapped() == []
    with pytest.raises(vf.errors.UsageError):
        col.search(docs[0], using="t")


def test_anti_entropy_repairs_a_replica_with_the_pooled_tokens_as_kept(tmp_path: Path) -> None:
    """A replica repaired from its peers gets the tokens as they keep them (already pooled), not
    pooled once more through a plain upsert."""
    docs, _ = clustered(30, 32, 17)
    spec = vf.Multi(dim=32, index="plaid", index_params={"pool_factor": 2})
    db = vf.connect(tmp_path)
    col = db.create_collection("p", vectors={"t": spec}, replicas=3)
    col.upsert(list(range(30)), {"t": docs})
    rs = col.shards[0]  # type: ignore[attr-defined]
    rs.replicas[1].collection.delete(ids=[0, 1, 2])  # damage the log cannot see
    assert col.repair()["repaired_points"] == 3  # type: ignore[attr-defined]
    for replica in rs.replicas:
        got = replica.collection.get([0, 1, 2], with_vectors=True)
        assert [len(r.vectors["t"]) for r in got] == [len(pool_tokens(d, 2)) for d in docs[:3]]
    db.close()
