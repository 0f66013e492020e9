"""Promotion: put a registered model in production behind an alias, blue/green.

`promote(db, "docs", "docs-model@2")` re-embeds the alias's collection with the model into a new
collection (same vectors and index settings, the new embedder), compares the two on a gold set (a
paired test per segment and metric, Holm-corrected, as `eval run` does) and on logged queries
(overlap of their top k), and switches the alias only if the gates pass. The old collection stays,
so `rollback(db, "docs")` can switch back. Memory during a promotion is two collections.

Writes go on during the copy: the source collection tells a mirror of every write (a
`WriteListener`, inside its write lock), which re-embeds and writes it to the new collection before
the writer's call returns, so an acknowledged write is in both. The bulk copy reads a page, embeds it
outside any lock (warming the embedding cache), then writes under the promotion lock only the points
no mirrored write has touched since the page was read (a version per id), so an older read never
overwrites a newer write. Lock order: the source's write lock, then the promotion lock, then the
target's write lock (the bulk copy never holds the promotion lock while it reads the source).

The state (`data/promotions/<alias>.json`) makes a promotion resumable after a crash or Ctrl-C: a
re-run reuses the new collection, copies again (the embedding cache answers for every text embedded
before, so only what is new costs a model call), and deletes what the source no longer holds.
Promotion needs an embedded (unsharded) collection whose points keep their text (`add()` does).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vectorforge.api import DatabaseAPI
from vectorforge.engine.collection import Collection
from vectorforge.engine.database import Database
from vectorforge.errors import InvalidParameter, UsageError
from vectorforge.evaluation.evaluator import evaluate_collection
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.regression import compare_runs
from vectorforge.models import parse_ref
from vectorforge.storage.fsio import make_dirs, write_json_atomic
from vectorforge.types import PointId

__all__ = ["Gates", "PromotionReport", "promote", "promotion_state", "rollback"]


@dataclass(frozen=True)
class Gates:
    """What the new collection must show before the alias moves to it."""

    goldset: GoldSet | None = None  # no significant regression on any segment and metric
    metrics: Sequence[str] = ("ndcg@10", "recall@100")
    min_effect: float = 0.02  # a drop smaller than this is not a regression (as `eval run`)
    queries: Sequence[str] = ()  # logged queries: the top-k overlap of old and new is reported
    k: int = 10
    min_overlap: float = 0.0  # mean top-k overlap required (0: reported, not gated)


@dataclass
class PromotionReport:
    alias: str
    source: str
    target: str
    model: str
    copied: int = 0
    deleted: int = 0
    mirrored: int = 0  # writes made during the copy and mirrored into the new collection
    seconds: float = 0.0
    gold: dict[str, Any] | None = None  # metric -> {old, new} and the regressions
    overlap: dict[str, Any] | None = None  # mean, min, p10 of the top-k overlap over logged queries
    passed: bool = False
    reasons: list[str] = field(default_factory=list)
    switched: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        verdict = "switched" if self.switched else "not switched"
        lines = [
            f"# Promotion of {self.alias}: {self.source} -> {self.target} ({self.model}), {verdict}",
            "",
            f"{self.copied} points copied, {self.mirrored} writes mirrored during the copy, "
            f"{self.deleted} deleted, in {self.seconds:.0f} s.",
        ]
        if self.gold:
            lines += ["", "| metric | old | new |", "|---|---|---|"]
            lines += [f"| {m} | {v['old']:.4f} | {v['new']:.4f} |" for m, v in self.gold["metrics"].items()]
        if self.overlap:
            o = self.overlap
            lines.append(
                f"\nTop-{o['k']} overlap over {o['queries']} logged queries: mean {o['mean']:.3f}, "
                f"p10 {o['p10']:.3f}, min {o['min']:.3f}."
            )
        lines += ["", "Gates: " + ("pass" if self.passed else "fail: " + "; ".join(self.reasons))]
        return "\n".join(lines) + "\n"


class _Mirror:
    """The source's write listener: every write made during the promotion, re-embedded into the target."""

    def __init__(self, target: Collection, model: str) -> None:
        self.target = target
        self.model = model
        self.lock = threading.Lock()
        self.versions: dict[PointId, int] = {}
        self.mirrored = 0
        self.failed: str | None = None

    def __call__(self, kind: str, ids: list[PointId], payloads: list[dict[str, Any] | None] | None) -> None:
        with self.lock:
            for pid in ids:
                self.versions[pid] = self.versions.get(pid, 0) + 1
            try:
                if kind == "delete":
                    self.target.delete(list(ids))
                else:
                    texts = _texts(ids, payloads or [None] * len(ids))
                    self.target.add(texts, ids=list(ids), payloads=list(payloads or [None] * len(ids)))
                self.mirrored += 1
            except Exception as exc:  # the source's write stands; the promotion must not switch
                self.failed = f"a write during the copy could not be mirrored: {exc}"

    def __str__(self) -> str:
        return (
            f"promotion into {self.target.name} ({self.model}): memory holds both collections "
            "until the promotion ends"
        )


def _texts(ids: Sequence[PointId], payloads: Sequence[dict[str, Any] | None]) -> list[str]:
    texts = []
    for pid, payload in zip(ids, payloads, strict=True):
        text = (payload or {}).get("text")
        if not isinstance(text, str) or not text:
            raise InvalidParameter(
                f"point {pid!r} has no payload['text']: a promotion re-embeds the texts that add() keeps"
            )
        texts.append(text)
    return texts


def promotion_state(db: Database, alias: str) -> dict[str, Any] | None:
    """The last promotion of `alias` (its state file), or None."""
    path = _state_path(db, alias)
    return json.loads(path.read_text()) if path.is_file() else None


def promote(
    db: DatabaseAPI,
    alias: str,
    model: str,
    *,
    gates: Gates | None = None,
    batch_size: int = 128,
    progress: bool = True,
) -> PromotionReport:
    """Re-embed the collection `alias` points to with `model` (NAME@VERSION), gate, switch (see
    the module)."""
    db = _local(db)
    gates = gates or Gates()
    name, _ = parse_ref(model)
    if alias not in db.list_aliases():
        raise UsageError(
            f"{alias!r} is not an alias: create one for the collection first, e.g. "
            f"db.create_alias('{alias}-live', {alias!r}) (vectorforge alias create), and promote that"
        )
    source = db.get_collection(alias)
    if not isinstance(source, Collection):
        raise UsageError(f"collection {source.name!r} is sharded: promotion needs an unsharded collection")
    card = _card(db, model)
    target_name = f"{alias}-{name}-v{card.version}"[:64]
    if target_name == source.name:
        raise InvalidParameter(f"alias {alias!r} already points to {target_name!r}, embedded by {model}")
    state = promotion_state(db, alias)
    if state and state["status"] == "copying" and state["target"] != target_name:
        raise UsageError(
            f"a promotion of {alias!r} to {state['model']} is unfinished: run it again to resume it"
        )
    started = time.perf_counter()
    ours = state is not None and target_name in (state["target"], state["previous"])  # e.g. rolled back
    if db.has_collection(target_name) and not ours:
        raise InvalidParameter(f"collection {target_name!r} exists and is not this promotion's: delete it")
    if not db.has_collection(target_name):
        target = db.create_collection(target_name, embedder=card.ref, **_settings(source, card.dim))
    else:
        target = db.get_collection(target_name)
    assert isinstance(target, Collection)
    report = PromotionReport(alias, source.name, target_name, card.ref)
    _save_state(db, report.alias, {"status": "copying", "previous": source.name, **_brief(report)})
    mirror = _Mirror(target, card.ref)
    source.add_write_listener(mirror)
    try:
        _copy(source, target, mirror, report, batch_size, progress)
        report.mirrored = mirror.mirrored
        _gate(source, target, gates, report, mirror)
        if report.passed:
            db.switch_alias(alias, target_name)
            report.switched = True
    finally:
        source.remove_write_listener(mirror)
        report.seconds = time.perf_counter() - started
        status = "switched" if report.switched else ("gated" if report.reasons else "copying")
        _save_state(db, report.alias, {"status": status, "previous": source.name, **_brief(report)})
    return report


def rollback(db: DatabaseAPI, alias: str, *, batch_size: int = 128, progress: bool = True) -> PromotionReport:
    """Switch `alias` back to the collection it pointed to before its last promotion, after copying
    into it every write the promoted collection took since (re-embedded by the old model)."""
    db = _local(db)
    state = promotion_state(db, alias)
    if not state or state["status"] != "switched":
        raise UsageError(f"alias {alias!r} has no switched promotion to roll back")
    current = db.get_collection(alias)
    previous = db.get_collection(state["previous"])
    assert isinstance(current, Collection) and isinstance(previous, Collection)
    started = time.perf_counter()
    report = PromotionReport(alias, current.name, previous.name, "rollback")
    mirror = _Mirror(previous, "rollback")
    current.add_write_listener(mirror)
    try:
        _copy(current, previous, mirror, report, batch_size, progress)
        report.mirrored = mirror.mirrored
        if mirror.failed:
            raise UsageError(f"rollback of {alias!r} stopped: {mirror.failed}")
        db.switch_alias(alias, previous.name)
        report.passed = report.switched = True
    finally:
        current.remove_write_listener(mirror)
    report.seconds = time.perf_counter() - started
    _save_state(db, alias, {"status": "rolled-back", "previous": current.name, **_brief(report)})
    return report


# ---------------------------------------------------------------------------------------- parts
def _copy(
    source: Collection,
    target: Collection,
    mirror: _Mirror,
    report: PromotionReport,
    batch_size: int,
    progress: bool,
) -> None:
    embedder = target.embedder()
    bar = tqdm(
        total=source.count(), desc=f"re-embedding into {target.name}", unit="doc", disable=not progress
    )
    cursor: str | None = None
    seen: set[PointId] = set()
    try:
        while True:
            page = source.scroll(batch_size, cursor, with_payload=True)
            with mirror.lock:
                read_at = {r.id: mirror.versions.get(r.id, 0) for r in page.records}
            ids = [r.id for r in page.records]
            payloads = [r.payload for r in page.records]
            texts = _texts(ids, payloads)
            embedder.encode(texts, batch_size=64)  # outside the lock: add() below hits the cache
            with mirror.lock:
                fresh = [
                    i for i, r in enumerate(page.records) if mirror.versions.get(r.id, 0) == read_at[r.id]
                ]
                if fresh:
                    target.add(
                        [texts[i] for i in fresh],
                        ids=[ids[i] for i in fresh],
                        payloads=[payloads[i] for i in fresh],
                    )
            seen.update(ids)
            report.copied += len(fresh)
            bar.update(len(ids))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    finally:
        bar.close()
    # What the target holds and the source does not: deleted while a crashed copy was not watching.
    stale = [pid for pid in _all_ids(target) if pid not in seen]
    with mirror.lock:
        stale = [pid for pid in stale if pid not in mirror.versions]
        if stale:
            target.delete(stale)
    report.deleted = len(stale)


def _all_ids(col: Collection) -> list[PointId]:
    out: list[PointId] = []
    cursor: str | None = None
    while True:
        page = col.scroll(10_000, cursor, with_payload=False)
        out += [r.id for r in page.records]
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _gate(
    source: Collection, target: Collection, gates: Gates, report: PromotionReport, mirror: _Mirror
) -> None:
    reasons = []
    if mirror.failed:
        reasons.append(mirror.failed)
    if gates.goldset is not None:
        old = evaluate_collection(source, gates.goldset, gates.metrics)
        new = evaluate_collection(target, gates.goldset, gates.metrics)
        changes = compare_runs(old, new, gates.goldset, gates.metrics, min_effect=gates.min_effect)
        regressions = [c for c in changes if c.regression]
        report.gold = {
            "goldset": gates.goldset.name,
            "metrics": {m: {"old": old.metrics[m], "new": new.metrics[m]} for m in gates.metrics},
            "regressions": [asdict(c) for c in regressions],
            "improvements": [asdict(c) for c in changes if c.improvement],
        }
        reasons += [
            f"{c.metric} on segment {c.segment} fell {c.baseline:.4f} -> {c.candidate:.4f} "
            f"(p={c.p_adjusted:.3g} after Holm)"
            for c in regressions
        ]
    if gates.queries:
        overlaps = []
        for q in gates.queries:
            a = {h.id for h in source.query(q, gates.k, with_payload=False)}
            b = {h.id for h in target.query(q, gates.k, with_payload=False)}
            overlaps.append(len(a & b) / gates.k)
        arr = np.asarray(overlaps)
        report.overlap = {
            "k": gates.k,
            "queries": len(overlaps),
            "mean": float(arr.mean()),
            "p10": float(np.quantile(arr, 0.1)),
            "min": float(arr.min()),
        }
        if arr.mean() < gates.min_overlap:
            reasons.append(
                f"top-{gates.k} overlap {arr.mean():.3f} is below the required {gates.min_overlap}"
            )
    report.reasons = reasons
    report.passed = not reasons


def _settings(source: Collection, dim: int) -> dict[str, Any]:
    """The source's vectors and index settings, with the dense vector sized for the new model."""
    spec = source.config.vectors_spec()
    settings: dict[str, Any] = {"max_segment_points": source.config.max_segment_points}
    if list(spec) == [""]:
        dense = spec[""]
        return {
            **settings,
            "metric": dense["metric"],
            "index": dense["index"],
            "index_params": dense["index_params"],
        }
    vectors = {n: ({**v, "dim": dim} if v["kind"] == "dense" else v) for n, v in spec.items()}
    return {**settings, "vectors": vectors}


def _local(db: DatabaseAPI) -> Database:
    if not isinstance(db, Database):
        raise UsageError("a promotion runs in the process that has the data folder open, not over HTTP")
    return db


def _card(db: Database, model: str) -> Any:
    from vectorforge.models import ModelRegistry

    if db.path is None:
        raise UsageError("promotion needs a data folder: its models are in data/models")
    return ModelRegistry(db.path / "models").get(model)


def _state_path(db: Database, alias: str) -> Path:
    if db.path is None:
        raise UsageError("promotion needs a data folder: its state is kept there")
    return db.path / "promotions" / f"{alias}.json"


def _save_state(db: Database, alias: str, state: dict[str, Any]) -> None:
    path = _state_path(db, alias)
    make_dirs(path.parent)
    write_json_atomic(path, {**state, "at": datetime.now(UTC).isoformat(timespec="seconds")})


def _brief(report: PromotionReport) -> dict[str, Any]:
    return {
        "alias": report.alias,
        "source": report.source,
        "target": report.target,
        "model": report.model,
        "copied": report.copied,
        "passed": report.passed,
        "reasons": report.reasons,
    }
