"""Collections: lifecycle, persistence, ids, upsert/delete/get semantics, ivfpq, snapshots, locking."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.engine import planner
from vectorforge.errors import (
    CollectionNotFound,
    DataFolderLocked,
    InvalidParameter,
    UnavailableError,
)
from vectorforge.index.ivfpq import IVFPQIndex

DIM = 8


def rand(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def full_state(col: vf.Collection, queries: np.ndarray) -> tuple[Any, ...]:
    """Everything a reader can see: points with vectors and payloads, counts, exact searches."""
    records = []
    cursor = None
    while True:
        page = col.scroll(limit=7, cursor=cursor, with_vectors=True)
        records.extend((r.id, r.payload, r.vector) for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            break
    flt = {"must": [{"key": "group", "match": 1}]}
    searches = [
        [(h.id, h.score, h.payload) for h in col.search(q, k=8, params={"exact": True})] for q in queries
    ]
    filtered = [[(h.id, h.score) for h in col.search(q, k=5, filter=flt, offset=1)] for q in queries]
    return col.count(), col.count(filter=flt), records, searches, filtered


# ---------------------------------------------------------------------------------------------- lifecycle


def test_lifecycle(any_db: vf.Database) -> None:
    assert any_db.list_collections() == []
    b = any_db.create_collection("b", dim=4, metric="l2", index="flat")
    a = any_db.create_collection("a", dim=DIM)
    assert any_db.list_collections() == ["a", "b"]
    assert any_db.has_collection("a") and any_db.has_collection("b") and not any_db.has_collection("c")
    assert any_db.get_collection("a") is a
    assert a.name == "a" and a.dim == DIM
    assert a.config.metric is vf.Metric.COSINE and a.config.index is vf.IndexKind.HNSW  # the defaults
    assert b.config.metric is vf.Metric.L2 and b.config.index is vf.IndexKind.FLAT
    assert a.count() == 0 and a.search(np.ones(DIM), k=3) == [] and a.scroll().records == []
    b.upsert([1], [[1.0, 2.0, 3.0, 4.0]])
    any_db.delete_collection("a")
    assert any_db.list_collections() == ["b"]
    assert not any_db.has_collection("a")
    with pytest.raises(CollectionNotFound):
        any_db.get_collection("a")
    with pytest.raises(CollectionNotFound):
        any_db.delete_collection("a")
    assert any_db.get_collection("b").count() == 1
    a2 = any_db.create_collection("a", dim=3, metric="dot", index="flat")
    assert a2.count() == 0 and a2.dim == 3


def test_delete_collection_removes_its_folder(disk_db: vf.Database, data_dir: Path) -> None:
    c = disk_db.create_collection("gone", dim=4)
    c.upsert([1, 2], rand(2, 4))
    c.flush()
    assert (data_dir / "collections" / "gone").is_dir()
    disk_db.delete_collection("gone")
    assert os.listdir(data_dir / "collections") == []


# ---------------------------------------------------------------------------------------------- persistence


def _write_history(col: vf.Collection) -> None:
    """Inserts, re-upserts, deletes by id and filter, int and str ids, over several segments."""
    ids: list[int | str] = [*range(40), *(f"s{i}" for i in range(20))]
    payloads = [{"group": i % 3, "name": str(pid), "nested": {"v": [i, "x"]}} for i, pid in enumerate(ids)]
    vectors = rand(len(ids), seed=1)
    for i in range(0, len(ids), 8):
        col.upsert(ids[i : i + 8], vectors[i : i + 8], payloads[i : i + 8])
    col.upsert([5, "s5", 100], rand(3, seed=2), [{"group": 1, "new": True}, None, {"group": 1}])
    assert col.delete(ids=[7, "s7", 999]).count == 2
    assert (
        col.delete(
            filter={"must": [{"key": "group", "match": 2}, {"key": "name", "match_any": ["8", "11"]}]}
        ).count
        == 2
    )


STAGES = ["log-only", "flushed", "optimized", "flushed-then-more"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_persistence_round_trip(tmp_path: Path, stage: str, index: str) -> None:
    path = tmp_path / "data"
    queries = rand(4, seed=9)
    db = vf.connect(path)
    col = db.create_collection(
        "docs",
        dim=DIM,
        metric="cosine",
        index=index,
        index_params={},
        max_segment_points=10_000 if stage == "log-only" else 16,
    )
    _write_history(col)
    if stage in ("flushed", "flushed-then-more"):
        col.flush()
    if stage == "optimized":
        col.flush()
        col.delete(ids=list(range(20, 30)))  # dirty segments, so that optimize has work
        dead = sum(s["rows"] - s["live"] for s in col.info()["segments"])
        while col.optimize():
            pass
        assert sum(s["rows"] - s["live"] for s in col.info()["segments"]) <= dead - 10
    if stage == "flushed-then-more":
        col.upsert([200, 0], rand(2, seed=3), [{"group": 1}, {"group": 0, "again": 1}])
        col.delete(ids=[1, "s1"])
    if stage == "log-only":
        assert len(col.info()["segments"]) == 1 and col.info()["wal_bytes"] > 0
    before = full_state(col, queries)
    config = col.config
    db.close()
    for _ in range(2):  # reopen twice: the first reopen must leave the folder readable as well
        with vf.connect(path) as again:
            assert again.list_collections() == ["docs"]
            col2 = again.get_collection("docs")
            assert col2.config == config
            assert full_state(col2, queries) == before
    # and it still takes writes after a reopen
    with vf.connect(path) as again:
        col3 = again.get_collection("docs")
        col3.upsert([300], rand(1, seed=4), [{"group": 1}])
        n = col3.count()
    with vf.connect(path) as again:
        assert again.get_collection("docs").count() == n == before[0] + 1
        assert again.get_collection("docs").get([300])[0].payload == {"group": 1}


def test_deletes_survive_optimize_and_reopen(tmp_path: Path) -> None:
    """A merge of newer segments must keep their tombstones: older segments on disk still hold the rows."""
    path = tmp_path / "data"
    with vf.connect(path) as db:
        c = db.create_collection("t", dim=4, metric="l2", index="flat", max_segment_points=10)
        c.upsert(list(range(10)), rand(10, 4))  # a full, clean segment: not merged
        c.upsert([10, 11, 12], rand(3, 4, seed=1))
        c.delete(ids=[0, 1])
        c.upsert([2], rand(1, 4, seed=2))  # replaces a row of the first segment
        c.flush()
        c.upsert([13, 14], rand(2, 4, seed=3))
        c.delete(ids=[13])
        c.flush()
        while c.optimize():  # (flush may have started the same merge in the background)
            pass
        assert [s["rows"] for s in c.info()["segments"] if s["sealed"]] == [10, 5]
        expected = [r.id for r in c.scroll().records]
        vectors = {r.id: r.vector for r in c.scroll(with_vectors=True).records}
        assert expected == [*range(2, 13), 14]
    with vf.connect(path) as db:
        c = db.get_collection("t")
        assert [r.id for r in c.scroll().records] == expected
        assert {r.id: r.vector for r in c.scroll(with_vectors=True).records} == vectors
        assert c.count() == len(expected)
        assert c.get([0, 1, 13]) == []


def test_many_collections_persist(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with vf.connect(path) as db:
        for metric in ("cosine", "dot", "l2"):
            c = db.create_collection(f"c-{metric}", dim=4, metric=metric, index="flat")
            c.upsert([1, "one"], [[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]], [{"m": metric}, None])
        db.create_collection("empty", dim=4)
    with vf.connect(path) as db:
        assert db.list_collections() == ["c-cosine", "c-dot", "c-l2", "empty"]
        for metric in ("cosine", "dot", "l2"):
            c = db.get_collection(f"c-{metric}")
            assert c.config.metric.value == metric
            assert [(r.id, r.payload) for r in c.scroll().records] == [(1, {"m": metric}), ("one", None)]
        assert db.get_collection("empty").count() == 0


# ---------------------------------------------------------------------------------------------- points


def test_int_and_str_ids_are_different_points(any_db: vf.Database) -> None:
    c = any_db.create_collection("ids", dim=4, metric="dot", index="flat")
    c.upsert(
        [1, "1", 0, "0", 2**63 - 1, "x" * 256], np.eye(4)[[0, 1, 2, 3, 0, 1]], [{"k": i} for i in range(6)]
    )
    assert c.count() == 6
    assert [r.payload for r in c.get([1, "1", 0, "0"])] == [{"k": 0}, {"k": 1}, {"k": 2}, {"k": 3}]
    assert [r.id for r in c.scroll().records] == [0, 1, 2**63 - 1, "0", "1", "x" * 256]
    assert [h.id for h in c.search([0.0, 1.0, 0.0, 0.0], k=2)] == ["1", "x" * 256]
    assert c.delete(ids=["1"]).count == 1
    assert [r.id for r in c.get([1, "1"])] == [1]
    assert c.count(filter={"must": [{"has_id": ["1", "0"]}]}) == 1


@pytest.mark.parametrize("flush_between", [False, True])
def test_reupsert_replaces_vector_and_payload(any_db: vf.Database, flush_between: bool) -> None:
    c = any_db.create_collection("r", dim=4, metric="dot", index="hnsw", max_segment_points=4)
    c.upsert([1, 2, 3], [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]], [{"v": 1}, {"v": 2}, {"v": 3}])
    if flush_between:
        c.flush()
    c.upsert([1], [[0, 0, 0, 5.0]], [{"v": "new", "list": [1, 2]}])
    c.upsert([2], [[0, 2.0, 0, 0]], None)
    assert c.count() == 3
    got = c.get([1, 2], with_vectors=True)
    assert (got[0].payload, got[0].vector) == ({"v": "new", "list": [1, 2]}, [0.0, 0.0, 0.0, 5.0])
    assert (got[1].payload, got[1].vector) == (None, [0.0, 2.0, 0.0, 0.0])
    hits = c.search([1.0, 0, 0, 0], k=3, params={"exact": True})
    assert [(h.id, h.score) for h in hits] == [(1, 0.0), (2, 0.0), (3, 0.0)]
    assert [(h.id, h.score) for h in c.search([0, 0, 0, 1.0], k=1)] == [(1, 5.0)]
    assert c.count(filter={"must": [{"key": "v", "match": 1}]}) == 0
    assert c.count(filter={"must": [{"key": "v", "match": "new"}]}) == 1


def test_delete_counts(any_db: vf.Database) -> None:
    c = any_db.create_collection("d", dim=4, metric="l2", index="flat", max_segment_points=5)
    c.upsert(list(range(12)), rand(12, 4), [{"even": i % 2 == 0, "i": i} for i in range(12)])
    assert c.delete(ids=[0, 1, 1, 999, "0"]).count == 2
    assert c.delete(ids=[0, 1]).count == 0
    assert c.delete(filter={"must": [{"key": "even", "match": True}]}).count == 5  # 2, 4, 6, 8, 10
    assert c.delete(filter={"must": [{"key": "even", "match": True}]}).count == 0
    # ids and filter together: the union, each point counted once
    assert (
        c.delete(ids=[3, 5, 404], filter={"must": [{"key": "i", "range": {"gte": 5, "lte": 7}}]}).count == 3
    )
    assert [r.id for r in c.scroll().records] == [9, 11]
    assert c.count() == 2


def test_get_keeps_order_and_skips_missing(any_db: vf.Database) -> None:
    c = any_db.create_collection("g", dim=4, metric="cosine", index="flat", max_segment_points=3)
    c.upsert([1, 2, 3, "a", "b"], rand(5, 4), [{"i": i} for i in range(5)])
    c.delete(ids=[2])
    got = c.get(["b", 999, 3, 2, "zz", 1, "a"])
    assert [r.id for r in got] == ["b", 3, 1, "a"]
    assert [r.payload for r in got] == [{"i": 4}, {"i": 2}, {"i": 0}, {"i": 3}]
    assert all(r.vector is None for r in got)
    assert c.get([2, 999]) == []
    assert [(r.id, r.payload) for r in c.get([1], with_payload=False)] == [(1, None)]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_with_vectors_returns_stored_vector(any_db: vf.Database, metric: str) -> None:
    c = any_db.create_collection("v", dim=4, metric=metric, index="hnsw")
    raw = [3.0, 4.0, 0.0, 0.0]
    c.upsert([1, 2], [raw, [0.0, 0.0, 1.0, 1.0]])
    stored = [0.6, 0.8, 0.0, 0.0] if metric == "cosine" else raw
    assert c.get([1], with_vectors=True)[0].vector == pytest.approx(stored, abs=1e-6)
    hit = c.search(raw, k=1, with_vectors=True, with_payload=False)[0]
    assert hit.id == 1 and hit.payload is None
    assert hit.vector == pytest.approx(stored, abs=1e-6)
    expected = {"cosine": 1.0, "dot": 25.0, "l2": 0.0}[metric]
    assert hit.score == pytest.approx(expected, abs=1e-5)
    assert c.search(raw, k=1)[0].vector is None


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_scores_are_higher_is_better(mem_db: vf.Database, metric: str) -> None:
    c = mem_db.create_collection("s", dim=2, metric=metric, index="flat")
    c.upsert(["near", "far"], [[1.0, 0.1], [-1.0, 0.5]])
    hits = c.search([1.0, 0.0], k=2)
    assert [h.id for h in hits] == ["near", "far"]
    assert hits[0].score > hits[1].score
    if metric == "l2":
        assert hits[0].score == pytest.approx(-0.1, abs=1e-6)
        assert hits[1].score == pytest.approx(-np.hypot(2.0, 0.5), abs=1e-6)


# ---------------------------------------------------------------------------------------------- ivfpq

IVF_N = 3_200
IVF_DIM = 16


def _clustered(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, IVF_DIM))
    data = centers[rng.integers(0, 40, IVF_N)] + 0.4 * rng.normal(size=(IVF_N, IVF_DIM))
    queries = centers[rng.integers(0, 40, 40)] + 0.4 * rng.normal(size=(40, IVF_DIM))
    return data.astype(np.float32), queries.astype(np.float32)


@pytest.fixture
def ann_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Sends unfiltered searches to the index (not the exact scan) and records whether it was trained."""
    trained: list[bool] = []
    original = IVFPQIndex.ann_search

    def spy(self: IVFPQIndex, *args: Any, **kwargs: Any) -> Any:
        trained.append(self.trained)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(IVFPQIndex, "ann_search", spy)
    monkeypatch.setattr(planner, "FULL_SCAN_POINTS", 0)
    yield trained


# Defaults give recall@10 of about 0.98 for l2 on this data, but only 0.89-0.91 for cosine and dot
# (m = dim/8 = 2 sub-quantizers); those two use m=4, a usual setting for 16 dimensions.
@pytest.mark.parametrize(("metric", "params"), [("l2", {}), ("cosine", {"m": 4}), ("dot", {"m": 4})])
def test_ivfpq_recall_and_exact_scores(
    tmp_path: Path, ann_spy: list[bool], metric: str, params: dict[str, Any]
) -> None:
    data, queries = _clustered(seed=3)
    path = tmp_path / "data"
    db = vf.connect(path, sync=False)
    col = db.create_collection("ivf", dim=IVF_DIM, metric=metric, index="ivfpq", index_params=params)
    col.upsert(list(range(IVF_N)), data, [{"i": i} for i in range(IVF_N)])
    col.flush()
    info = col.info()
    assert info["segments"][0] == {
        "name": info["segments"][0]["name"],
        "rows": IVF_N,
        "live": IVF_N,
        "sealed": True,
    }

    stored = data / np.linalg.norm(data, axis=1, keepdims=True) if metric == "cosine" else data
    stored = stored.astype(np.float64)

    def true_score(q: np.ndarray, pid: int) -> float:
        qq = q / np.linalg.norm(q) if metric == "cosine" else q
        if metric == "l2":
            return -float(np.linalg.norm(stored[pid] - qq))
        return float(stored[pid] @ qq)

    def run() -> list[list[tuple[Any, float]]]:
        ann_spy.clear()
        results, recalls = [], []
        for q in queries:
            hits = col.search(q, k=10, with_payload=True)
            exact = col.search(q, k=10, params={"exact": True})
            assert len(hits) == 10
            assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
            for h in hits:  # re-scored at full precision: the true score, not a PQ estimate
                assert h.score == pytest.approx(true_score(q, h.id), abs=1e-4)
                assert h.payload == {"i": h.id}
            exact_scores = {h.id: h.score for h in exact}
            for h in hits:
                if h.id in exact_scores:
                    assert h.score == pytest.approx(exact_scores[h.id], abs=1e-5)
            recalls.append(len({h.id for h in hits} & set(exact_scores)) / 10)
            results.append([(h.id, h.score) for h in hits])
        assert ann_spy and all(ann_spy), "the trained ivfpq index was not searched"
        assert np.mean(recalls) >= 0.9, np.mean(recalls)
        return results

    first = run()
    more = col.search(queries[0], k=10, params={"nprobe": 64, "rerank": 20})
    assert [h.id for h in more] == [h.id for h in col.search(queries[0], k=10, params={"exact": True})]
    db.close()
    db = vf.connect(path, sync=False)  # the codes and the memory-mapped vectors come back from disk
    col = db.get_collection("ivf")
    assert run() == first
    db.close()


def test_ivfpq_small_segment_is_exact(mem_db: vf.Database) -> None:
    """Below the training size a segment is searched exactly, sealed or not."""
    c = mem_db.create_collection("small", dim=8, metric="l2", index="ivfpq", max_segment_points=50)
    data = rand(120, 8, seed=5)
    c.upsert(list(range(120)), data)
    q = rand(1, 8, seed=6)[0]
    truth = np.argsort(np.linalg.norm(data - q, axis=1), kind="stable")[:10].tolist()
    assert [h.id for h in c.search(q, k=10)] == truth


# ---------------------------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("index", ["flat", "hnsw", "ivfpq"])
def test_snapshot_restore_under_another_name(tmp_path: Path, index: str) -> None:
    queries = rand(4, seed=9)
    db = vf.connect(tmp_path / "data")
    col = db.create_collection("docs", dim=DIM, metric="cosine", index=index, max_segment_points=16)
    _write_history(col)
    col.flush()
    while col.optimize():  # settle background compaction, so that the ANN results below are stable
        pass
    col.upsert([500], rand(1, seed=7), [{"group": 1}])  # in the log only: the snapshot must seal it
    before = full_state(col, queries)
    approx = [[(h.id, h.score) for h in col.search(q, k=8)] for q in queries]
    snap = col.snapshot(tmp_path / "docs.tar")
    assert snap == tmp_path / "docs.tar" and snap.is_file()
    assert not (tmp_path / "docs.tar.tmp").exists()
    assert full_state(col, queries) == before

    copy = db.restore(snap, name="copy")
    assert db.list_collections() == ["copy", "docs"]
    assert copy.name == "copy" and copy.config.dim == DIM and copy.config.index.value == index
    assert full_state(copy, queries) == before
    assert [[(h.id, h.score) for h in copy.search(q, k=8)] for q in queries] == approx

    # the two are independent
    copy.upsert([600], rand(1, seed=8), [{"group": 1}])
    copy.delete(ids=[0])
    assert full_state(col, queries) == before
    col.delete(ids=[500])
    assert copy.get([500]) != []

    # the copy survives a reopen, under its new name
    db.close()
    with vf.connect(tmp_path / "data") as again:
        assert again.get_collection("copy").count() == before[0]
        assert again.get_collection("copy").config.name == "copy"
    # and the same file restores into another data folder under its own name
    with vf.connect(tmp_path / "other") as other:
        restored = other.restore(snap)
        assert restored.name == "docs"
        assert full_state(restored, queries) == before


def test_snapshot_of_empty_collection(disk_db: vf.Database, tmp_path: Path) -> None:
    c = disk_db.create_collection("empty", dim=4, metric="l2", index="flat")
    snap = c.snapshot(tmp_path / "empty.tar")
    restored = disk_db.restore(snap, name="empty2")
    assert restored.count() == 0
    restored.upsert([1], [[1.0, 0.0, 0.0, 0.0]])
    assert restored.search([1.0, 0.0, 0.0, 0.0], k=1)[0].id == 1


def _tar_with(path: Path, extra: list[tarfile.TarInfo | tuple[str, bytes]], good: Path) -> Path:
    """A copy of the good snapshot `good` with `extra` members added."""
    with tarfile.open(good) as src, tarfile.open(path, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        for item in extra:
            if isinstance(item, tarfile.TarInfo):
                dst.addfile(item)
            else:
                name, data = item
                info = tarfile.TarInfo(name)
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _evil_entries(tmp_path: Path) -> dict[str, list[tarfile.TarInfo | tuple[str, bytes]]]:
    return {
        "dotdot": [("../evil", b"owned")],
        "dotdot-deep": [("../../../evil", b"owned")],
        "dotdot-inside": [("segments/../../evil", b"owned")],
        "absolute": [(str(tmp_path / "evil"), b"owned")],
        "symlink": [_link("segments/link", str(tmp_path / "evil"), tarfile.SYMTYPE)],
        "symlink-then-write": [_link("lnk", "..", tarfile.SYMTYPE), ("lnk/evil", b"owned")],
        "hardlink": [_link("hard", str(tmp_path / "outside.txt"), tarfile.LNKTYPE)],
        "device": [_link("dev", "", tarfile.CHRTYPE)],
    }


@pytest.mark.parametrize(
    "case",
    [
        "dotdot",
        "dotdot-deep",
        "dotdot-inside",
        "absolute",
        "symlink",
        "symlink-then-write",
        "hardlink",
        "device",
    ],
)
def test_restore_refuses_unsafe_archives(tmp_path: Path, case: str) -> None:
    data = tmp_path / "a" / "b" / "data"
    (tmp_path / "outside.txt").write_text("keep me")
    with vf.connect(data) as db:
        col = db.create_collection("src", dim=4)
        col.upsert([1, 2], rand(2, 4))
        good = col.snapshot(tmp_path / "good.tar")
        bad = _tar_with(tmp_path / "bad.tar", _evil_entries(tmp_path)[case], good)
        before_tree = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
        with pytest.raises(vf.CollectionAlreadyExists):  # its own name is taken: refused before unpacking
            db.restore(bad)
        with pytest.raises(InvalidParameter, match=r"unsafe entry|is not a vectorforge snapshot"):
            db.restore(bad, name="copy")
        after_tree = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
        assert after_tree == before_tree
        assert not any("evil" in p for p in after_tree)
        assert (tmp_path / "outside.txt").read_text() == "keep me"
        assert db.list_collections() == ["src"]
        assert os.listdir(data / "collections") == ["src"]
        # the good snapshot still restores
        assert db.restore(good, name="copy").count() == 2


# ---------------------------------------------------------------------------------------------- locking


def test_second_connect_on_same_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    first = vf.connect(path)
    first.create_collection("c", dim=4).upsert([1], [[1.0, 0.0, 0.0, 0.0]])
    for p in (path, str(path), tmp_path / "data" / ".." / "data"):
        with pytest.raises(DataFolderLocked, match="is open in another process") as info:
            vf.connect(p)
        assert isinstance(info.value, UnavailableError)
    # the refused attempt did not disturb the open database
    first.get_collection("c").upsert([2], [[0.0, 1.0, 0.0, 0.0]])
    assert first.get_collection("c").count() == 2
    first.close()
    with vf.connect(path) as second:
        assert second.get_collection("c").count() == 2
        with pytest.raises(DataFolderLocked):
            vf.connect(path)
    vf.connect(path).close()  # free again after the context manager


def test_data_folder_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(vf.StorageError, match="is a file"):
        vf.connect(f)
    assert f.read_text() == "x"
