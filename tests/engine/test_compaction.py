from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

import vectorforge as vf


def _sealed(col: vf.Collection) -> int:
    return sum(1 for s in col.info()["segments"] if s["sealed"])


def test_background_compaction_merges_small_segments_and_drops_dead_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((400, 16)).astype(np.float32)
    db = vf.connect(tmp_path / "d")
    col = db.create_collection("c", dim=16, metric="l2", index="hnsw", max_segment_points=200)
    for i in range(0, 400, 20):
        col.upsert(list(range(i, i + 20)), vecs[i : i + 20], [{"i": j} for j in range(i, i + 20)])
        col.flush()  # 20 small segments; each flush may start a background compaction
    deadline = time.monotonic() + 60
    while _sealed(col) > 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # no explicit optimize(): the background thread must do it
    assert _sealed(col) <= 3, col.info()["segments"]
    col.delete(ids=list(range(0, 400, 3)))
    while col.optimize():
        pass
    segments = [s for s in col.info()["segments"] if s["sealed"]]
    assert all(s["rows"] == s["live"] for s in segments), segments  # dead rows compacted away
    live = [i for i in range(400) if i % 3]
    assert col.count() == len(live)
    exact = col.search(vecs[5], k=20, params={"exact": True})
    assert [h.id for h in exact] == sorted(live, key=lambda j: float(np.linalg.norm(vecs[j] - vecs[5])))[:20]
    db.close()
    with vf.connect(tmp_path / "d") as again:
        col2 = again.get_collection("c")
        assert col2.count() == len(live)
        assert [h.id for h in col2.search(vecs[5], k=20, params={"exact": True})] == [h.id for h in exact]
        assert [r.id for r in col2.get([3, 4])] == [4]  # 3 was deleted


def test_writes_during_compaction_are_not_lost(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    db = vf.connect(tmp_path / "d")
    col = db.create_collection("c", dim=8, metric="dot", index="hnsw", max_segment_points=200)
    base = rng.standard_normal((2000, 8)).astype(np.float32)
    for i in range(0, 2000, 100):
        col.upsert(list(range(i, i + 100)), base[i : i + 100])
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        n = 10_000
        while not stop.is_set():
            col.upsert([n], rng.standard_normal((1, 8)).astype(np.float32), [{"late": True}])
            col.delete(ids=[n - 10_000])  # delete one of the points being compacted
            written.append(n)
            n += 1

    t = threading.Thread(target=writer)
    t.start()
    for _ in range(5):
        col.optimize()
    stop.set()
    t.join()
    assert written
    expected = (set(range(2000)) - {n - 10_000 for n in written}) | set(written)
    got = set()
    cursor = None
    while True:
        page = col.scroll(limit=500, cursor=cursor, with_payload=False)
        got |= {r.id for r in page.records}
        cursor = page.next_cursor
        if cursor is None:
            break
    assert got == expected
    db.close()
    with vf.connect(tmp_path / "d") as again:
        assert again.get_collection("c").count() == len(expected)
