"""The ray backend on a real 3-node Ray cluster (ray.cluster_utils.Cluster on loopback).

One cluster serves the whole module. Nodes are removed and added as a test needs; every test leaves
three live worker nodes behind.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.cluster.ray_backend import ActorStore
from vectorforge.cluster.ray_local import add_node, start_cluster, stop_cluster, wait_for
from vectorforge.cluster.replicaset import ReplicaSet, StaleEpoch

DIM = 16
RNG = np.random.default_rng(7)
RAY = vf.Cluster(backend="ray", health_interval=0.2, call_timeout=20.0)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def cluster() -> Any:
    c = start_cluster(workers=3)
    yield c
    stop_cluster(c)


def vecs(n: int) -> np.ndarray:
    return RNG.standard_normal((n, DIM)).astype(np.float32)


def open_ray(path: Path) -> vf.Database:
    return vf.connect(path, cluster=RAY)


def all_up(col: ShardedCollection) -> bool:
    return all(r["up"] for s in col.info()["replica_sets"] for r in s["replicas"])


def node_of(rs: ReplicaSet, index: int) -> str:
    store = rs.replicas[index].collection
    assert isinstance(store, ActorStore)
    return store.node_id


def test_replicas_are_actors_spread_over_nodes(cluster: Any, tmp_path: Path) -> None:
    db = open_ray(tmp_path)
    col = db.create_collection("spread", dim=DIM, index="flat", shards=2, replicas=3)
    assert isinstance(col, ShardedCollection)
    for rs in col.shards:
        nodes = {node_of(rs, j) for j in range(3)}
        assert len(nodes) == 3  # STRICT_SPREAD: one replica per node
        assert cluster.head_node.node_id not in nodes
    db.close()


def test_ray_backend_answers_like_the_local_backend(cluster: Any, tmp_path: Path) -> None:
    remote_db, local_db = open_ray(tmp_path / "ray"), vf.connect(tmp_path / "local")
    base, queries = vecs(300), vecs(20)
    payloads = [{"group": i % 5, "name": f"p{i}"} for i in range(300)]
    cols = []
    for db in (remote_db, local_db):
        col = db.create_collection("same", dim=DIM, metric="l2", index="flat", shards=3, replicas=2)
        col.upsert(list(range(300)), base, payloads)
        col.delete(ids=list(range(0, 300, 7)))
        col.delete(filter={"must": [{"key": "group", "match": 4}]})
        cols.append(col)
    flt = {"must": [{"key": "group", "match_any": [1, 2]}]}
    for col_args in (dict(k=5), dict(k=10, offset=3, filter=flt), dict(k=50, with_vectors=True)):
        a, b = (c.search_batch(queries, **col_args) for c in cols)
        assert [[(h.id, h.payload) for h in q] for q in a] == [[(h.id, h.payload) for h in q] for q in b]
        np.testing.assert_allclose([[h.score for h in q] for q in a], [[h.score for h in q] for q in b])
    assert cols[0].count() == cols[1].count() == cols[1].count(consistency="strong")
    assert cols[0].scroll(500).records == cols[1].scroll(500).records
    # An error raised inside a replica actor comes back as the same class, with the same message.
    with pytest.raises(vf.InvalidFilter, match="unknown"):
        cols[0].search(queries[0], filter={"must": [{"key": "group", "bogus": 1}]})
    expected = cols[1].count()
    remote_db.close()
    local_db.close()
    again = open_ray(tmp_path / "ray")  # reopened: new actors find their data on disk
    col = again.get_collection("same")
    assert col.count(consistency="strong") == expected
    again.close()


def test_sparse_and_multi_vectors_on_ray_answer_like_one_collection(cluster: Any, tmp_path: Path) -> None:
    """BM25 statistics gathered from actors on three nodes, MaxSim over their token matrices, and
    named vectors returned by `get`: the same as one local collection."""
    from tests.cluster.test_named_sharded import _compare, _points, _specs

    rng = np.random.default_rng(11)
    db, local = open_ray(tmp_path / "ray"), vf.connect(tmp_path / "local")
    ids = list(range(80))
    points = _points(rng, ids)
    col = db.create_collection("named", vectors=_specs(), shards=3, replicas=2)
    plain = local.create_collection("named", vectors=_specs())
    for c in (col, plain):
        c.upsert(ids, points)
        c.delete(ids=ids[::9])
    _compare(col, plain, rng)
    assert col.get(ids[:10], with_vectors=True) == plain.get(ids[:10], with_vectors=True)
    db.close()
    local.close()


def test_reshard_on_ray_moves_points_to_new_actors_and_frees_the_old(cluster: Any, tmp_path: Path) -> None:
    db = open_ray(tmp_path)
    col = db.create_collection("grow", dim=DIM, index="flat", shards=2, replicas=2)
    assert isinstance(col, ShardedCollection)
    base = vecs(400)
    col.upsert(list(range(400)), base, [{"i": i} for i in range(400)])
    old_actors = [r.collection.actor for s in col.shards for r in s.replicas]  # type: ignore[attr-defined]
    col.reshard(3, batch_size=50)
    assert len(col.shards) == 3 and col.count(consistency="strong") == 400
    assert [h.id for h in col.search(base[11], k=1)] == [11]
    for rs in col.shards:  # the new replicas are actors, spread like the first ones
        assert len({node_of(rs, j) for j in range(2)}) == 2
    for actor in old_actors:  # the old layout's actors are gone
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.meta.remote(), timeout=20)
    db.close()


def test_snapshot_and_restore_on_ray_and_an_alias_switched_to_the_copy(cluster: Any, tmp_path: Path) -> None:
    db = open_ray(tmp_path / "data")
    col = db.create_collection("snap", dim=DIM, index="flat", shards=2, replicas=2)
    base = vecs(200)
    col.upsert(list(range(200)), base, [{"i": i} for i in range(200)])
    db.create_alias("live", "snap")
    assert db.get_collection("live") is col
    path = col.snapshot(tmp_path / "snap.snapshot")  # each shard's leader exports from its actor
    with pytest.raises(vf.CollectionAlreadyExists, match="'live' is an alias"):
        db.restore(path, name="live")
    copy = db.restore(path, name="copy")
    assert isinstance(copy, ShardedCollection)
    assert copy.count(consistency="strong") == 200
    assert copy.scroll(300).records == col.scroll(300).records
    for rs in copy.shards:  # the restored replicas are actors on two nodes
        assert len({node_of(rs, j) for j in range(2)}) == 2
    # blue/green on Ray: the alias moves to the copy; its actors serve the queries through it
    copy.upsert([500], vecs(1))
    db.switch_alias("live", "copy")
    live = db.get_collection("live")
    assert live.name == "copy" and live.count(consistency="strong") == 201
    assert live.search(base[3], k=1)[0].id == 3
    with pytest.raises(vf.ConflictError, match="target of alias 'live'"):
        db.delete_collection("copy")
    db.close()
    db = open_ray(tmp_path / "data")  # the alias is in the data folder, the actors come back
    assert db.list_aliases() == {"live": "copy"}
    assert db.get_collection("live").count(consistency="strong") == 201
    db.close()


def test_a_memory_database_cannot_use_ray(cluster: Any) -> None:
    db = vf.connect(cluster=RAY)
    with pytest.raises(vf.UsageError, match="data folder"):
        db.create_collection("m", dim=DIM, shards=2)
    db.close()


def test_placement_counts_only_nodes_that_can_hold_a_replica(cluster: Any, tmp_path: Path) -> None:
    """Before: with a head that has no CPUs and 2 workers, replicas=3 chose STRICT_SPREAD (3 nodes
    alive), hung 60 s and failed. The head holds no replica, so 2 nodes count: SPREAD, at once."""
    victim = next(iter(cluster.worker_nodes))
    cluster.remove_node(victim)
    wait_for(lambda: sum(n["Alive"] for n in ray.nodes()) == 3, 30, "a worker node gone")
    try:
        db = open_ray(tmp_path)
        start = time.monotonic()
        col = db.create_collection("two", dim=DIM, index="flat", shards=4, replicas=3)
        assert time.monotonic() - start < 30
        col.upsert(list(range(40)), vecs(40))
        assert col.count(consistency="strong") == 40
        db.close()
    finally:
        add_node(cluster)


def test_a_create_ray_cannot_place_fails_fast_and_leaves_nothing(cluster: Any, tmp_path: Path) -> None:
    """Before: the failed create stayed listed, a second create said it existed, and every
    get_collection of it hung 60 s more."""
    big = vf.Cluster(backend="ray", cpus_per_replica=2.0, placement_timeout=5.0, health_interval=0.2)
    db = vf.connect(tmp_path, cluster=big)
    start = time.monotonic()
    with pytest.raises(vf.UnavailableError, match="have room for 3 at 2 CPU each; add a node"):
        db.create_collection("c", dim=DIM, shards=1, replicas=4)  # 3 workers of 2 CPUs: room for 3
    assert time.monotonic() - start < 5
    # Room by the nodes' CPUs, but shard 0 takes every CPU and shard 1 waits for the timeout.
    with pytest.raises(vf.UnavailableError, match="could not place 3 replicas"):
        db.create_collection("c", dim=DIM, shards=2, replicas=3)
    assert "c" not in db.list_collections() and not (tmp_path / "collections" / "c").exists()
    with pytest.raises(vf.CollectionNotFound):
        db.get_collection("c")
    col = db.create_collection("c", dim=DIM, shards=1, replicas=3)  # shard 0's CPUs were given back
    col.upsert([1], vecs(1))
    assert col.count(consistency="strong") == 1
    db.close()


def test_node_loss_under_write_load_loses_no_acknowledged_write(cluster: Any, tmp_path: Path) -> None:
    db = open_ray(tmp_path)
    col = db.create_collection("load", dim=DIM, index="flat", shards=2, replicas=3)
    assert isinstance(col, ShardedCollection)
    col.upsert(list(range(500)), vecs(500))
    acked: list[int] = []
    write_errors: list[BaseException] = []
    read_errors: list[BaseException] = []
    reads = [0]
    stop = threading.Event()

    def writer() -> None:
        next_id = 10_000
        while not stop.is_set():
            ids = list(range(next_id, next_id + 5))
            next_id += 5
            try:
                col.upsert(ids, vecs(5))
                acked.extend(ids)
            except vf.VectorForgeError as exc:
                write_errors.append(exc)

    def reader() -> None:
        query = vecs(1)[0]
        while not stop.is_set():
            try:
                assert len(col.search(query, k=10, consistency="eventual")) == 10
                reads[0] += 1
            except Exception as exc:
                read_errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    # The node that holds shard 0's leader: its loss forces a failover as well.
    rs = col.shards[0]
    old_epoch = rs.epoch
    victim = next(n for n in cluster.worker_nodes if n.node_id == node_of(rs, rs.leader))
    acked_before = len(acked)
    cluster.remove_node(victim, allow_graceful=False)
    took = wait_for(lambda: rs.epoch > old_epoch, 20, "a new leader after the node's loss")
    time.sleep(1.0)
    acked_after_loss = len(acked)
    # A new node: the lost replicas are re-created there with a full copy while writes go on.
    add_node(cluster)
    wait_for(lambda: all_up(col), 60, "lost replicas re-created on the new node")
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join()
    assert not read_errors, read_errors[:3]
    assert not write_errors, write_errors[:3]
    assert acked_before < acked_after_loss < len(acked)  # writes went on after the loss and the copy
    assert reads[0] > 0
    assert rs.replicas[rs.leader].live
    print(f"new leader {took:.2f} s after the node's loss; {len(acked)} points written, {reads[0]} reads")
    # Every acknowledged write is readable with strong consistency, and nothing else appeared.
    expected = set(range(500)) | set(acked)
    assert col.count(consistency="strong") == len(expected)
    found = {r.id for r in col.get(sorted(expected), with_payload=False, consistency="strong")}
    assert found == expected
    for shard in col.shards:  # the re-created replicas hold exactly what the others hold
        assert len({node_of(shard, j) for j in range(3)}) == 3
        assert len({r.collection.count() for r in shard.replicas}) == 1
        assert len({r.rseq for r in shard.replicas}) == 1
    assert sum(s.replicas[0].collection.count() for s in col.shards) == len(expected)
    db.close()


def test_a_fenced_replica_gets_no_write_and_serves_no_read(cluster: Any, tmp_path: Path) -> None:
    db = open_ray(tmp_path)
    col = db.create_collection("fence", dim=DIM, index="flat", shards=1, replicas=3)
    assert isinstance(col, ShardedCollection)
    rs = col.shards[0]
    points = vecs(20)
    col.upsert(list(range(20)), points, [{"v": 0}] * 20)
    fenced = rs.replicas[2].collection
    assert isinstance(fenced, ActorStore)
    seen_by_fenced = dict(fenced.last_meta)
    old_epoch = rs.epoch
    # A node declared dead whose actor still answers for a while: fenced, it must not count.
    rs.lose(2)
    col.upsert(list(range(20)), points, [{"v": 1}] * 20)
    assert fenced.last_meta == seen_by_fenced  # it was sent nothing
    for _ in range(30):  # eventual reads rotate over replicas: none may be the fenced one
        assert {r.payload["v"] for r in col.get(list(range(20)), consistency="eventual")} == {1}
    # A write stamped with an epoch older than a replica's is refused by the replica itself.
    leader = rs.replicas[rs.leader].collection
    assert isinstance(leader, ActorStore)
    stale = {
        "op": "delete",
        "ids": [0],
        "seq": rs.last_rseq + 1,
        "meta": {"rseq": rs.last_rseq + 1, "ts": 1, "op_id": "stale", "epoch": old_epoch - 1},
    }
    ray.get(leader.actor.apply.remote({**stale, "meta": {**stale["meta"], "epoch": rs.epoch}}))
    with pytest.raises(StaleEpoch):
        leader.apply_replicated({**stale, "meta": {**stale["meta"], "rseq": rs.last_rseq + 2, "epoch": 0}})
    # The watcher replaces the fenced replica with a fresh copy on a free bundle.
    wait_for(lambda: all_up(col), 60, "the fenced replica replaced")
    assert rs.replicas[2].collection is not fenced
    db.close()


def test_server_fronts_a_ray_cluster(cluster: Any, tmp_path: Path) -> None:
    from tests.serverproc import start_server

    address = cluster.address
    server = start_server(tmp_path / "data", "--cluster", f"ray://{address}")
    try:
        client = vf.connect(server.url)
        col = client.create_collection("served", dim=DIM, index="flat", shards=2, replicas=2)
        base = vecs(50)
        col.upsert(list(range(50)), base)
        hits = col.search(base[3], k=3, consistency="strong")
        assert hits[0].id == 3
        assert client.get_collection("served").info()["replicas"] == 2
    finally:
        server.stop()
