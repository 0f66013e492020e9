"""The cases of the storage fault sweep (tests/faults/test_storage_sweep.py): every disk call an
operation makes is failed in turn, in a fresh folder.

For each operation (an upsert, a delete, an upsert that seals a segment, a flush, a compaction, a
snapshot) a first run counts the calls it makes through the storage seam (`fsio`); then for each
call N a fresh folder is set up, call N fails (ENOSPC for writes, EIO for syncs), and the test
checks, in this process and in a fresh one:

- the operation either returned (acknowledged) or raised a vectorforge error (never a bare OSError);
- what reads show is exactly the acknowledged writes: nothing of a write that raised;
- the collection then either takes a write or refuses it with CollectionFailed, never half-applies it;
- after a reopen in a fresh process: every acknowledged write is there, no failed one is, the log's
  sequence numbers are unique and increasing, and the collection takes writes again;
- an acknowledged snapshot restores to the collection it was taken of.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import vectorforge as vf
from vectorforge.storage import fsio

DIM = 8
Model = dict[str, int]


def vec(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype("float32")


def setup(folder: Path, index: str = "flat") -> tuple[vf.Database, vf.Collection, Model]:
    """Two sealed segments of 6 rows, the first made dirty by deletes that sit in the growing one."""
    db = vf.connect(str(folder))
    col = db.create_collection("c", dim=DIM, metric="cosine", index=index, max_segment_points=12)
    col.upsert(list(range(6)), vec(6, 1), [{"v": 0}] * 6)
    col.flush()
    col.upsert(list(range(6, 12)), vec(6, 2), [{"v": 0}] * 6)
    col.flush()
    col.delete(ids=[0, 1, 2])
    return db, col, {str(i): 0 for i in range(3, 12)}


@dataclass
class Op:
    name: str
    run: Callable[[vf.Collection, Path], object]
    changes: Callable[[Model], None] = lambda model: None  # what an acknowledgement adds to the model
    snapshot: bool = False


def _upsert(ids: list[int], version: int) -> Callable[[vf.Collection, Path], object]:
    return lambda col, _: col.upsert(ids, vec(len(ids), version), [{"v": version}] * len(ids))


def _set(ids: list[int], version: int) -> Callable[[Model], None]:
    return lambda model: model.update({str(i): version for i in ids})


def _drop(ids: list[int]) -> Callable[[Model], None]:
    return lambda model: [model.pop(str(i), None) for i in ids] and None


OPS = [
    Op("upsert", _upsert([3, 40], 1), _set([3, 40], 1)),
    Op("delete", lambda col, _: col.delete(ids=[4, 5]), _drop([4, 5])),
    Op("upsert-that-seals", _upsert(list(range(20, 32)), 2), _set(list(range(20, 32)), 2)),
    Op("flush", lambda col, _: col.flush()),
    Op("optimize", lambda col, _: col.optimize()),
    Op("snapshot", lambda col, folder: col.snapshot(folder / "c.snapshot"), snapshot=True),
]


@dataclass
class Case:
    name: str
    folder: Path
    model: Model
    outcome: str
    snapshot: Path | None = None
    notes: list[str] = field(default_factory=list)


def _errno_for(kind: str) -> int:
    return errno.EIO if kind.startswith("fsync") else errno.ENOSPC


def _points(col: vf.Collection) -> Model:
    return {str(r.id): int(r.payload["v"]) for r in col.scroll(limit=10_000).records if r.payload}


def run_case(op: Op, folder: Path, nth: int, kind: str, close: bool = True, index: str = "flat") -> Case:
    db, col, model = setup(folder, index)
    plan = fsio.FaultPlan("any", nth, _errno_for(kind), thread=threading.get_ident())
    with fsio.inject(plan):
        try:
            op.run(col, folder)
            outcome = "ok"
            op.changes(model)
        except (vf.WriteNotDurable, vf.CollectionFailed) as exc:
            outcome = type(exc).__name__
    case = Case(f"{index}:{op.name}#{nth}:{kind}:{'close' if close else 'crash'}", folder, model, outcome)
    assert plan.fired or nth == 0, f"{case.name}: the planned fault never fired"
    assert _points(col) == model, f"{case.name}: reads after the fault differ from the acknowledged writes"
    try:  # the collection takes a write again, or refuses it whole
        col.upsert([50], vec(1, 3), [{"v": 3}])
        model["50"] = 3
    except vf.CollectionFailed:
        case.notes.append("failed")
        assert col.get([50]) == []
    with contextlib.suppress(vf.CollectionFailed):  # and compacts without losing a row from search
        col.optimize()
    found = {str(h.id) for h in col.search(vec(1, 9)[0], k=100)}
    assert found == set(model), f"{case.name}: search after a compaction misses {set(model) - found}"
    if op.snapshot and outcome == "ok":
        case.snapshot = folder / "c.snapshot"
    if close:
        db.close()  # else the process dies with it open (the sweep's worker ends with os._exit)
    return case


def calls_of(op: Op, folder: Path, index: str = "flat") -> list[tuple[str, str]]:
    db, col, _ = setup(folder, index)
    with fsio.inject(fsio.FaultPlan(thread=threading.get_ident())) as plan:
        op.run(col, folder)
    db.close()
    return plan.calls


def sweep(root: Path, close: bool, indexes: tuple[str, ...] = ("flat", "hnsw")) -> list[Case]:
    """Every case of every operation on every index kind, in folders under `root`."""
    cases: list[Case] = []
    for index in indexes:
        for op in OPS:
            calls = calls_of(op, root / f"count-{index}-{op.name}", index)
            assert calls, f"{op.name} made no disk call through the seam"
            for nth, (kind, _) in enumerate(calls, start=1):
                cases.append(run_case(op, root / f"{index}-{op.name}-{nth}", nth, kind, close, index))
    return cases


def listing(cases: list[Case]) -> list[dict[str, object]]:
    return [
        {
            "name": c.name,
            "folder": str(c.folder),
            "snapshot": str(c.snapshot or ""),
            "model": c.model,
            "outcome": c.outcome,
        }
        for c in cases
    ]
