"""Fault histories at length: many seeded random histories of a replicated, sharded collection under
injected faults (tests/faults/history.py), checked for anomalies; and the storage fault sweep.

Baseline in the same run: the same histories against release 0.1.0's replication rules (a replica
applies an entry over a gap, a lagging leader keeps leading), to show the checker finds what they
break; the current code must show 0 anomalies.

    python bench/faults.py [--seeds 100] [--operations 600]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from common import REPO, print_table, write_result
from tqdm import tqdm

sys.path.insert(0, str(REPO))
import vectorforge as vf
from tests.faults.history import run_history
from tests.faults.storage_cases import sweep
from vectorforge.cluster import ShardedCollection
from vectorforge.cluster.replicaset import Replica, ReplicaSet
from vectorforge.engine.collection import Collection


@contextlib.contextmanager
def release_0_1_0_rules() -> Iterator[None]:
    """Replication as release 0.1.0 had it: entries skip only rseq <= last (gaps go unnoticed), no
    catch-up before the next entry, and a leader that is live leads even when it lags."""

    def apply_replicated(self: Collection, entry: dict[str, Any]) -> bool:
        with self._lock.write():
            self._check_writable()
            if entry["meta"]["rseq"] <= self.last_meta.get("rseq", 0):
                return False
            op: dict[str, Any] = {k: entry[k] for k in ("op", "ids", "vectors", "payloads") if k in entry}
            op["meta"] = dict(entry["meta"])
            self._write_locked(op)
            return True

    def leader(self: ReplicaSet) -> Replica:
        current = self.replicas[self.leader]
        if not current.live:
            self.failover()
            current = self.replicas[self.leader]
        return current

    def try_catch_up(self: ReplicaSet, replica: Replica, upto: int) -> bool:
        return replica.live

    saved = (Collection.apply_replicated, ReplicaSet._leader, ReplicaSet._try_catch_up)
    Collection.apply_replicated = apply_replicated  # type: ignore[method-assign]
    ReplicaSet._leader = leader  # type: ignore[method-assign]
    ReplicaSet._try_catch_up = try_catch_up  # type: ignore[method-assign]
    try:
        yield
    finally:
        Collection.apply_replicated, ReplicaSet._leader, ReplicaSet._try_catch_up = saved  # type: ignore[method-assign]


def histories(seeds: int, operations: int, label: str) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    anomalies: list[str] = []
    failing_seeds = []
    start = time.perf_counter()
    reads = 0
    for seed in tqdm(range(1, seeds + 1), desc=label, unit="history"):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                report = run_history(Path(tmp) / "d", seed, operations)
            except Exception as exc:  # the old rules can also break the run itself
                anomalies.append(f"seed {seed}: the run failed: {type(exc).__name__}: {exc}")
                failing_seeds.append(seed)
                continue
        totals.update(report.outcomes)
        faults.update(report.faults)
        reads += report.reads
        anomalies += [f"seed {seed}: {a}" for a in report.anomalies]
        if report.anomalies:
            failing_seeds.append(seed)
    return {
        "histories": seeds,
        "operations": seeds * operations,
        "outcomes": dict(totals),
        "strong_reads": reads,
        "faults": dict(faults),
        "faults_injected": sum(faults.values()),
        "anomalies": len(anomalies),
        "histories_with_anomalies": len(failing_seeds),
        "examples": anomalies[:10],
        "seconds": round(time.perf_counter() - start, 1),
    }


def repair_cost(points: int, dim: int = 64) -> dict[str, Any]:
    """Anti-entropy on one shard of 3 replicas (no divergence, then one damaged replica) against
    the baseline of one full scroll of the same points with vectors from one replica."""
    rng = np.random.default_rng(0)
    db = vf.connect()
    col = db.create_collection("ae", dim=dim, index="flat", replicas=3)
    assert isinstance(col, ShardedCollection)
    for start in range(0, points, 10_000):
        n = min(10_000, points - start)
        col.upsert(list(range(start, start + n)), rng.standard_normal((n, dim)), [{"n": i} for i in range(n)])
    store = col.shards[0].replicas[0].collection
    t = time.perf_counter()
    cursor = None
    while True:
        page = store.scroll(10_000, cursor, with_vectors=True)
        cursor = page.next_cursor
        if cursor is None:
            break
    scroll_s = time.perf_counter() - t
    t = time.perf_counter()
    col.repair()
    clean_s = time.perf_counter() - t
    col.shards[0].replicas[2].collection.delete(ids=list(range(0, points, 1000)))
    t = time.perf_counter()
    damaged = col.repair()
    damaged_s = time.perf_counter() - t
    db.close()
    return {
        "points": points,
        "dim": dim,
        "scroll_one_replica_s": round(scroll_s, 2),
        "repair_clean_s": round(clean_s, 2),
        "repair_damaged_s": round(damaged_s, 2),
        "repaired_points": damaged["repaired_points"],
        "clean_over_scroll": round(clean_s / scroll_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--operations", type=int, default=600)
    ap.add_argument("--repair-points", type=int, default=100_000)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # the faults log by design; the table says what happened
    current = histories(args.seeds, args.operations, "current rules")
    with release_0_1_0_rules():
        baseline = histories(args.seeds, args.operations, "release 0.1.0 rules")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cases = sweep(Path(tmp), close=True)
        sweep_seconds = time.perf_counter() - start
    outcomes = Counter(c.outcome for c in cases)
    cost = repair_cost(args.repair_points)
    rows = [
        [
            name,
            r["histories"],
            r["operations"],
            r["faults_injected"],
            r["outcomes"].get("ok", 0),
            r["outcomes"].get("info", 0),
            r["outcomes"].get("fail", 0),
            r["strong_reads"],
            r["anomalies"],
            r["histories_with_anomalies"],
        ]
        for name, r in (("current", current), ("0.1.0 (baseline)", baseline))
    ]
    print_table(
        "Fault histories (2 shards x 3 replicas, single-id writes, strong reads)",
        ["rules", "histories", "ops", "faults", "ok", "info", "fail", "reads", "anomalies", "bad histories"],
        rows,
    )
    print_table(
        "Storage fault sweep (every disk call failed in turn, then reopened)",
        [
            "cases",
            "acknowledged",
            "rolled back (WriteNotDurable)",
            "failed state (CollectionFailed)",
            "seconds",
        ],
        [
            [
                len(cases),
                outcomes["ok"],
                outcomes["WriteNotDurable"],
                outcomes["CollectionFailed"],
                round(sweep_seconds, 1),
            ]
        ],
    )
    print_table(
        "Anti-entropy on 3 replicas against one full scroll of one replica (baseline)",
        ["points", "scroll (s)", "repair, equal (s)", "ratio", "repair, 1 damaged (s)", "rewritten"],
        [
            [
                cost["points"],
                cost["scroll_one_replica_s"],
                cost["repair_clean_s"],
                cost["clean_over_scroll"],
                cost["repair_damaged_s"],
                cost["repaired_points"],
            ]
        ],
    )
    write_result(
        "faults",
        {
            "seeds": args.seeds,
            "operations_per_history": args.operations,
            "current": current,
            "baseline_release_0_1_0_rules": baseline,
            "repair_cost": cost,
            "storage_sweep": {
                "cases": len(cases),
                "outcomes": dict(outcomes),
                "seconds": round(sweep_seconds, 1),
            },
        },
    )


if __name__ == "__main__":
    main()
