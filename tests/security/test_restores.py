"""Restores of hostile snapshots, against a real server: each is refused with a 4xx that names the
problem, leaves no collection and no file behind, and names no server path."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

import vectorforge as vf
from tests.security.conftest import DIM, Hostile, members, pack


def _snapshot(hostile: Hostile, name: str, **options: object) -> bytes:
    with vf.connect(hostile.url, api_key=hostile.admin) as db:
        if name in db.list_collections():
            db.delete_collection(name)
        col = db.create_collection(name, **{"dim": DIM, "metric": "l2", "index": "flat", **options})  # type: ignore[arg-type]
        col.upsert(
            list(range(20)),
            np.random.default_rng(0).standard_normal((20, col.dim)),
            [{"i": i} for i in range(20)],
        )
    response = hostile.call("POST", f"/collections/{name}/snapshot")
    assert response.status_code == 200
    return response.content


def _with_config(files: dict[str, bytes], **changes: object) -> dict[str, bytes]:
    config = json.loads(files["config.json"])
    config.update(changes)
    return {
        "config.json": json.dumps(config).encode(),
        **{k: v for k, v in files.items() if k != "config.json"},
    }


def _refused(hostile: Hostile, data: bytes, match: str, status: int = 422) -> None:
    before = hostile.folders()
    response = hostile.restore("victim", data)
    assert response.status_code == status, response.text
    body = response.json()
    assert match in body["message"], body["message"]
    assert str(hostile.root) not in response.text and "/tmp" not in response.text
    assert "victim" not in hostile.listed()
    assert hostile.folders() == before  # nothing left behind


def test_an_index_of_another_dimension_is_refused(hostile: Hostile) -> None:
    """Before: accepted; a get with vectors returned heap memory, the next one killed the server."""
    files = members(_snapshot(hostile, "d1", dim=1))
    _refused(
        hostile, pack(_with_config(files, dim=4096)), "index.faiss has dimension 1; the config says 4096"
    )
    assert hostile.call("GET", "/healthz").status_code == 200


def test_an_index_of_another_metric_or_kind_is_refused(hostile: Hostile) -> None:
    files = members(_snapshot(hostile, "m1"))
    _refused(hostile, pack(_with_config(files, metric="cosine")), "uses another metric than cosine")
    _refused(hostile, pack(_with_config(files, index="hnsw")), "a hnsw index holds IndexHNSWFlat")


def test_ids_that_do_not_match_the_index_rows_are_refused(hostile: Hostile) -> None:
    import msgpack

    files = members(_snapshot(hostile, "c1"))
    points_name = next(n for n in files if n.endswith("points.msgpack"))
    points = msgpack.unpackb(files[points_name], raw=False)
    points["ids"], points["payloads"] = points["ids"][:5], points["payloads"][:5]
    files[points_name] = msgpack.packb(points, use_bin_type=True)
    _refused(hostile, pack(files), "index.faiss holds 20 rows for 5 ids")


def test_members_no_snapshot_holds_are_refused(hostile: Hostile) -> None:
    files = members(_snapshot(hostile, "w1"))
    _refused(hostile, pack({**files, "wal/00000000000000000001.log": b"x"}), "which no snapshot holds")
    _refused(hostile, pack({"segments/x": b"", **files}), "does not start with config.json")


def test_a_compression_bomb_is_stopped_before_it_fills_the_disk(hostile: Hostile) -> None:
    """Before: a 1 MB gzip wrote 1 GiB before it was refused, holding the database lock."""
    files = members(_snapshot(hostile, "b1"))
    bomb = pack({**files, "segments/seg-000009/vectors.npy": bytes(200 << 20)}, mode="w:gz")
    assert len(bomb) < 1 << 20
    _refused(hostile, bomb, "unpacks to more than")


def test_a_snapshot_that_claims_many_replicas_counts_every_copy(hostile: Hostile) -> None:
    """Before: a 70 KB sharded snapshot claiming 16 replicas unpacked to 1.1 GB."""
    files = members(_snapshot(hostile, "r1", shards=2))
    big = {
        name: content + bytes(200_000) if name.endswith(".tar") else content
        for name, content in files.items()
    }
    _refused(hostile, pack(_with_config(big, replicas=16)), "(16 replicas)")


def test_too_many_entries_are_refused(hostile: Hostile) -> None:
    files = members(_snapshot(hostile, "e1"))
    dirs = [f"segments/seg-{i:06d}" for i in range(10_001)]
    many = pack({"config.json": files["config.json"]}, mode="w:gz", dirs=dirs)
    _refused(hostile, many, "more than 10,000 entries")


def test_a_sharded_restore_that_fails_part_way_leaves_nothing(hostile: Hostile) -> None:
    """Before: a broken collection stayed listed, answering 500 until deleted."""
    files = members(_snapshot(hostile, "p1", shards=2, replicas=2))
    files["shards/1.tar"] = b"not a tar"
    _refused(hostile, pack(files), "shards/1.tar is not a tar archive")


def test_a_good_snapshot_still_restores_in_full(hostile: Hostile) -> None:
    data = _snapshot(hostile, "g1", shards=2, replicas=2)
    response = hostile.restore("g1copy", data)
    assert response.status_code == 200, response.text
    with vf.connect(hostile.url, api_key=hostile.admin) as db:
        assert db.get_collection("g1copy").count() == 20


def test_concurrent_snapshots_of_one_collection_each_get_their_own_file(hostile: Hostile) -> None:
    """Before: three concurrent snapshots of a sharded collection shared a file; one failed (500)."""
    _snapshot(hostile, "s1", shards=2, replicas=2)
    codes: list[int] = []

    def take() -> None:
        codes.append(hostile.call("POST", "/collections/s1/snapshot").status_code)

    threads = [threading.Thread(target=take) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200, 200, 200]
    assert not list((hostile.root / "snapshots").glob("*")) if (hostile.root / "snapshots").exists() else True


@pytest.mark.parametrize("name", ["../x", "a" * 65])
def test_a_bad_name_is_refused_before_anything_is_read(hostile: Hostile, name: str) -> None:
    response = hostile.call("POST", f"/collections/{name}/restore", content=b"x" * 1000)
    assert response.status_code in (404, 422)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_an_unreadable_index_file_is_read_in_a_child_process_and_refused(
    hostile: Hostile, damage: str
) -> None:
    """The server opens index files from outside in a child process: a file that breaks FAISS's
    reader is refused with a 422, and the server keeps serving."""
    files = members(_snapshot(hostile, "x1"))
    name = next(n for n in files if n.endswith("index.faiss"))
    files[name] = b"\x00garbage" * 100 if damage == "garbage" else files[name][: len(files[name]) // 2]
    _refused(hostile, pack(files), "index.faiss cannot be read")
    assert hostile.call("GET", "/healthz").status_code == 200
