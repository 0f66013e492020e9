"""The ray backend on a real 3-worker Ray cluster on this machine, against the local backend.

Same data, same settings (3 replicas, 1 shard, HNSW, persistent folder) on both backends, in one run:
- write throughput at each write_quorum (ray / local ratio);
- read latency at each consistency level;
- node loss: a writer and a reader run while the node holding the leader is removed: time until a
  new leader (new epoch), the longest write and read meanwhile, errors; then a node is added and the
  lost replica re-created with a full copy: time until it serves.

    python bench/ray_cluster.py [--n 20000] [--trials 3]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from typing import Any

import numpy as np
from common import clustered_set, print_table, write_result
from replication import read_latency, write_rate

from vectorforge.cluster.ray_local import add_node, start_cluster, stop_cluster, wait_for

import vectorforge as vf  # isort: skip  (after ray_local, which must configure Ray before its import)

LEVELS = ("strong", "bounded", "session", "eventual")


def backends(db_ray: Any, db_local: Any, base: np.ndarray, batch: int) -> tuple[list[Any], list[Any]]:
    writes, reads = [], []
    cols = {}
    for quorum in ("1", "majority", "all"):
        row: dict[str, Any] = {"write_quorum": quorum}
        for label, db in (("local", db_local), ("ray", db_ray)):
            col = db.create_collection(
                f"q{quorum}", dim=base.shape[1], metric="dot", replicas=3, write_quorum=quorum
            )
            row[f"{label}_vectors_per_s"] = write_rate(col, base, batch, 0)
            cols[label, quorum] = col
        row["ray_x_local"] = row["ray_vectors_per_s"] / row["local_vectors_per_s"]
        writes.append(row)
    queries = base[:300] + 0.01
    for level in LEVELS:
        row = {"consistency": level}
        for label in ("local", "ray"):
            stats = read_latency(cols[label, "majority"], queries, level)
            row.update({f"{label}_{k}": v for k, v in stats.items()})
        row["ray_x_local_qps"] = row["ray_qps"] / row["local_qps"]
        reads.append(row)
    return writes, reads


def node_loss(cluster: Any, db: Any, base: np.ndarray, trial: int) -> dict[str, Any]:
    col = db.create_collection(f"loss{trial}", dim=base.shape[1], metric="dot", shards=1, replicas=3)
    for i in range(0, len(base), 1000):
        col.upsert(list(range(i, i + len(base[i : i + 1000]))), base[i : i + 1000])
    rs = col.shards[0]
    stop = threading.Event()
    write_ms: list[tuple[float, float]] = []
    read_ms: list[tuple[float, float]] = []
    errors: list[str] = []

    def writer() -> None:
        next_id = 10**6
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                col.upsert(list(range(next_id, next_id + 10)), base[:10])
                next_id += 10
            except vf.VectorForgeError as exc:
                errors.append(f"write: {exc}")
            write_ms.append((t0, (time.perf_counter() - t0) * 1000))

    def reader() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                col.search(base[7], k=10, consistency="strong")
            except vf.VectorForgeError as exc:
                errors.append(f"read: {exc}")
            read_ms.append((t0, (time.perf_counter() - t0) * 1000))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    epoch = rs.epoch
    node_id = rs.replicas[rs.leader].collection.node_id
    victim = next(n for n in cluster.worker_nodes if n.node_id == node_id)
    t_loss = time.perf_counter()
    cluster.remove_node(victim, allow_graceful=False)
    to_leader = wait_for(lambda: rs.epoch > epoch, 30, "new leader")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    add_node(cluster)
    t_add = time.perf_counter()
    wait_for(lambda: all(r.live for r in rs.replicas), 120, "replica re-created")
    recreate = time.perf_counter() - t_add
    after = [ms for t0, ms in write_ms if t0 >= t_loss - 0.5]
    reads_after = [ms for t0, ms in read_ms if t0 >= t_loss - 0.5]
    steady = [ms for t0, ms in write_ms if t0 < t_loss - 0.5]
    count = col.count(consistency="strong")
    db.delete_collection(col.name)
    return {
        "trial": trial,
        "new_leader_s": to_leader,
        "longest_write_ms": max(after),
        "steady_write_p50_ms": float(np.median(steady)),
        "longest_read_ms": max(reads_after),
        "errors": len(errors),
        "first_errors": errors[:3],
        "recreate_s": recreate,
        "points_copied": count,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    base, _ = clustered_set()
    base = base[: args.n]
    cluster = start_cluster(workers=3)
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            vf.connect(f"{tmp}/ray", cluster=vf.Cluster(backend="ray", health_interval=0.2)) as db_ray,
            vf.connect(f"{tmp}/local") as db_local,
        ):
            writes, reads = backends(db_ray, db_local, base, args.batch)
            losses = [node_loss(cluster, db_ray, base, t) for t in range(args.trials)]
    finally:
        stop_cluster(cluster)
    print_table(
        f"writes, 3 replicas, {args.n} x {base.shape[1]}, batches of {args.batch} (vectors/s)",
        ["write_quorum", "local", "ray", "ray/local"],
        [
            [w["write_quorum"], f"{w['local_vectors_per_s']:,.0f}", f"{w['ray_vectors_per_s']:,.0f}",
             f"{w['ray_x_local']:.2f}"]
            for w in writes
        ],
    )  # fmt: skip
    print_table(
        "single-query search by consistency level (p50 / p99 ms)",
        ["consistency", "local", "ray", "ray/local QPS"],
        [
            [r["consistency"], f"{r['local_p50_ms']:.2f} / {r['local_p99_ms']:.2f}",
             f"{r['ray_p50_ms']:.2f} / {r['ray_p99_ms']:.2f}", f"{r['ray_x_local_qps']:.2f}"]
            for r in reads
        ],
    )  # fmt: skip
    print_table(
        "node loss under load (leader's node removed), then a node added",
        ["trial", "new leader s", "longest write ms", "steady write ms", "longest read ms", "errors",
         "re-created s", "points"],
        [
            [x["trial"], f"{x['new_leader_s']:.2f}", f"{x['longest_write_ms']:.0f}",
             f"{x['steady_write_p50_ms']:.1f}", f"{x['longest_read_ms']:.0f}", x["errors"],
             f"{x['recreate_s']:.1f}", x["points_copied"]]
            for x in losses
        ],
    )  # fmt: skip
    write_result("ray_cluster", {"n": args.n, "batch": args.batch, "writes": writes, "reads": reads,
                                 "node_loss": losses})  # fmt: skip


if __name__ == "__main__":
    main()
