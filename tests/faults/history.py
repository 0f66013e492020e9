"""A randomized history of a replicated, sharded collection under injected faults, and its checker.

In the manner of Jepsen: one client runs a seeded random sequence of operations (keyed upserts and
deletes of single points, strong reads, client retries with the same key) while faults are injected
between them (replicas lagging, down, or failing one apply on a full disk; the replication log's
disk failing; the leader lost; the process crashing and restarting). Every operation is recorded
with its outcome:

- ok: acknowledged; it must be visible until a later write replaces it;
- fail: refused before it was logged (nothing applied); it must never be visible;
- info: indeterminate (logged, applied by fewer replicas than the quorum); it may appear, but once a
  read has seen a later state it must not come back.

The checker keeps, for each id, the states a strong read may return (the last acknowledged one and
every later indeterminate one, in order); a read must return one of them, and the ones before it are
dropped (reads never go back in time). At the end every replica is recovered, anti-entropy runs, and
the replicas of each shard must hold the same points, each id on one shard once.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.storage import fsio

DIM = 4
IDS = 12
SHARDS = 2
REPLICAS = 3


@dataclass
class Report:
    seed: int
    operations: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    reads: int = 0
    anomalies: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "operations": self.operations,
            "outcomes": dict(self.outcomes),
            "faults": dict(self.faults),
            "strong_reads": self.reads,
            "anomalies": self.anomalies,
        }


class Model:
    """Per id, the states a strong read may see, oldest first: (operation number, payload value)."""

    def __init__(self) -> None:
        self.allowed: dict[int, list[tuple[int, int | None]]] = {i: [(-1, None)] for i in range(IDS)}

    def wrote(self, pid: int, op: int, value: int | None, outcome: str) -> None:
        if outcome == "ok":
            self.allowed[pid] = [(op, value)]
        elif outcome == "info":
            self.allowed[pid].append((op, value))

    def saw(self, pid: int, value: int | None) -> str | None:
        """Check one observation and narrow the model to it; an anomaly's description, or None."""
        states = self.allowed[pid]
        for position, (_, allowed) in enumerate(states):
            if allowed == value:
                self.allowed[pid] = states[position:]
                return None
        return f"id {pid}: a strong read saw {value!r}, but only {[v for _, v in states]} are allowed"


def _values(col: vf.Collection, consistency: str = "strong") -> dict[int, int | None]:
    found = {int(r.id): int(r.payload["v"]) for r in col.get(list(range(IDS)), consistency=consistency)}  # type: ignore[index]
    return {i: found.get(i) for i in range(IDS)}


def _crash(db: vf.Database) -> None:
    """Die as kill -9 would: file descriptors closed, nothing sealed or flushed, the lock released."""
    for col in list(db._collections.values()):
        if isinstance(col, ShardedCollection):
            col._closed = True
            for layout in [col._layout, *([col._next] if col._next else [])]:
                if layout.moves is not None:
                    layout.moves.close()
                for shard in layout.shards:
                    if shard.log is not None:
                        shard.log.close()
                    for replica in shard.replicas:
                        store = replica.collection
                        if getattr(store, "_wal", None) is not None:
                            store._wal.close()  # type: ignore[attr-defined]
                        store._closed = True  # type: ignore[attr-defined]
    assert db._lock_file is not None
    fcntl.flock(db._lock_file.fileno(), fcntl.LOCK_UN)
    db._lock_file.close()
    db._lock_file = None
    db._closed = True


def _outcome(exc: BaseException) -> str:
    """fail: nothing was logged; info: logged and maybe applied (a quorum not reached)."""
    if isinstance(exc, vf.UnavailableError) and "acks" in exc.details:
        return "info"
    return "fail"


def _impatient(col: ShardedCollection) -> ShardedCollection:
    """Reads that find no replica able to answer fail at once rather than after 5 s."""
    for shard in col.shards:
        shard.read_timeout = 0.05
    return col


def run_history(folder: Path, seed: int, operations: int) -> Report:
    rng = random.Random(seed)
    report = Report(seed)
    model = Model()
    db = vf.connect(str(folder))
    col = db.create_collection("h", dim=DIM, metric="l2", index="flat", shards=SHARDS, replicas=REPLICAS)
    assert isinstance(col, ShardedCollection)
    col = _impatient(col)
    plan: fsio.FaultPlan | None = None
    for op in range(operations):
        report.operations += 1
        roll = rng.random()
        if roll < 0.18:  # a fault, or the end of one
            kind = rng.choice(["lag", "fail", "recover", "recover", "apply", "log", "leader", "crash"])
            report.faults[kind] += 1
            shard = col.shards[rng.randrange(len(col.shards))]
            index = rng.randrange(REPLICAS)
            if kind == "lag":
                shard.lag(index)
            elif kind == "fail":
                shard.fail(index)
            elif kind == "recover":
                for r in shard.replicas:
                    if not r.up or r.lagging:
                        shard.recover(r.index)
            elif kind == "leader":
                shard.fail(shard.leader)
            elif kind in ("apply", "log"):  # the next disk write there fails (ENOSPC)
                place = f"/replicas/{index}/wal/" if kind == "apply" else "/replog/"
                plan = fsio.FaultPlan("write", 1, errno.ENOSPC, where=place)
            else:  # the process dies and starts again
                _crash(db)
                db = vf.connect(str(folder))
                reopened = db.get_collection("h")
                assert isinstance(reopened, ShardedCollection)
                col = _impatient(reopened)
            continue
        pid = rng.randrange(IDS)
        if roll < 0.75:  # a write, retried by the client with its key while it is indeterminate
            upsert = roll < 0.6
            value = op if upsert else None
            key = f"op-{seed}-{op}"
            outcome = "fail"
            for _attempt in range(2):
                if _attempt and outcome == "fail" and rng.random() < 0.5:
                    break  # the client gives up on a refused write: it must never appear
                try:
                    with fsio.inject(plan) if plan is not None else contextlib.nullcontext():
                        if upsert:
                            col.upsert([pid], np.full((1, DIM), float(op)), [{"v": op}], idempotency_key=key)
                        else:
                            col.delete(ids=[pid], idempotency_key=key)
                    outcome = "ok"
                    break
                except vf.VectorForgeError as exc:
                    outcome = "info" if outcome == "info" else _outcome(exc)
                finally:
                    plan = None
            report.outcomes[outcome] += 1
            model.wrote(pid, op, value, outcome)
        else:  # a strong read of every id
            try:
                seen = _values(col)
            except vf.UnavailableError:
                report.outcomes["read-unavailable"] += 1
                continue
            report.reads += 1
            for i, value in seen.items():
                anomaly = model.saw(i, value)
                if anomaly:
                    report.anomalies.append(f"op {op}: {anomaly}")
    # The end: every replica back, caught up and checked against the others.
    for shard in col.shards:
        for r in shard.replicas:
            shard.recover(r.index)
    col.repair()
    for i, value in _values(col).items():
        anomaly = model.saw(i, value)
        if anomaly:
            report.anomalies.append(f"final: {anomaly}")
    ids = [r.id for r in col.scroll(limit=1000).records]
    if len(ids) != len(set(ids)) or col.count() != len(ids):
        report.anomalies.append(f"duplicates: scroll {ids}, count {col.count()}")
    for number, shard in enumerate(col.shards):
        contents = {
            tuple(sorted((int(r.id), int(r.payload["v"])) for r in x.collection.scroll(limit=1000).records))  # type: ignore[index]
            for x in shard.replicas
        }
        if len(contents) != 1:
            report.anomalies.append(f"shard {number}: replicas differ after repair: {contents}")
    db.close()
    return report
