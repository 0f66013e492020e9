"""Promotion: put a registered model in production behind an alias, blue/green.

`promote(db, "docs", "docs-model@2")` re-embeds the alias's collection with the model into a new
collection (same vectors and index settings, the new embedder), compares the two on a gold set (a
paired test per segment and metric, Holm-corrected, as `eval run` does) and on logged queries
(the shadow-traffic comparison of their top k: overlap, rank-biased overlap, top-1 agreement, as
`evaluation.online.shadow` measures live traffic), and switches the alias only if the gates pass.
The old collection stays, so `rollback(db, "docs")` can switch back. Memory during a promotion is
two collections.

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
import logging
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
from vectorforge.evaluation.online.shadow import compare_rankings
from vectorforge.evaluation.regression import compare_runs
from vectorforge.models import parse_ref
from vectorforge.storage.fsio import make_dirs, write_json_atomic
from vectorforge.types import PointId

__all__ = ["Gates", "PromotionReport", "abort", "promote", "promotion_state", "rollback"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gates:
    """What the new collection must show before the alias moves to it."""

    goldset: GoldSet | None = None  # no significant regression on any segment and metric
    metrics: Sequence[str] = ("ndcg@10", "recall@100")
    min_effect: float = 0.02  # a drop smaller than this is not a regression (as `eval run`)
    queries: Sequence[str] = ()  # logged queries: the top-k overlap of old and new is reported
    k: int = 10
    min_overlap: float = 0.0  # mean top-k overlap required (0: reported, not gated)
    min_rbo: float = 0.0  # mean rank-biased overlap (p = 0.9) required (0: reported, not gated)


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
    overlap: dict[str, Any] | None = None  # the top-k overlap, RBO and top-1 agreement over logged queries
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
                f"p10 {o['p10']:.3f}, min {o['min']:.3f}; rank-biased overlap {o['rbo']:.3f}, "
                f"top-1 agreement {o['top1_agreement']:.3f}."
            )
        lines += ["", "Gates: " + ("pass" if self.passed else "fail: " + "; ".join(self.reasons))]
        return "\n".join(lines) + "\n"


class _Mirror:
    """The source's write listener: every write, re-embedded into the target before the writer's
    call returns. `clock` counts mirrored writes; `touched` says at which count each id last was."""

    def __init__(self, source: Collection, target: Collection, model: str) -> None:
        self.source = source
        self.target = target
        self.model = model
        self.lock = threading.Lock()
        self.clock = 0
        self.touched: dict[PointId, int] = {}
        self.mirrored = 0
        self.failed: str | None = None

    def __call__(self, kind: str, ids: list[PointId], payloads: list[dict[str, Any] | None] | None) -> None:
        with self.lock:
            self.clock += 1
            for pid in ids:
                self.touched[pid] = self.clock
            try:
                if kind == "delete":
                    self.target.delete(list(ids))
                else:
                    rows = payloads or [None] * len(ids)
                    self.target.add(_texts(ids, rows), ids=list(ids), payloads=list(rows))
                self.mirrored += 1
            except Exception as exc:  # the source's write stands; the alias must not move to the target
                self.failed = f"a write could not be mirrored into {self.target.name}: {exc}"
                logger.error("promotion: %s", self.failed)

    def __str__(self) -> str:
        return f"mirror into {self.target.name} ({self.model}): both collections are in memory"


# Mirrors still attached after their switch, by (database, alias): a client that resolved the alias
# before the switch and writes after it still reaches the collection the alias points to now. The
# next promotion or rollback of the alias detaches it (never two mirrors in a cycle).
_ATTACHED: dict[tuple[int, str], _Mirror] = {}
_ATTACHED_LOCK = threading.Lock()


def _attach(db: Database, alias: str, mirror: _Mirror) -> None:
    _detach(db, alias)
    mirror.source.add_write_listener(mirror)
    with _ATTACHED_LOCK:
        _ATTACHED[(id(db), alias)] = mirror


def _detach(db: Database, alias: str, mirror: _Mirror | None = None) -> None:
    with _ATTACHED_LOCK:
        current = _ATTACHED.get((id(db), alias))
        if current is None or (mirror is not None and current is not mirror):
            return
        del _ATTACHED[(id(db), alias)]
    current.source.remove_write_listener(current)


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
    _check_settings(gates, batch_size)
    name, _ = parse_ref(model)
    if alias not in db.list_aliases():
        raise UsageError(
            f"{alias!r} is not an alias: create one for the collection first, e.g. "
            f"db.create_alias('{alias}-live', {alias!r}) (vectorforge alias create), and promote that"
        )
    card = _card(db, model)
    target_name = f"{alias}-{name}-v{card.version}"
    if len(target_name) > 64:
        raise InvalidParameter(
            f"the new collection's name {target_name!r} is over 64 characters: shorten the alias or model"
        )
    state = _settled(db, alias)
    source = db.get_collection(alias)
    if not isinstance(source, Collection):
        raise UsageError(f"collection {source.name!r} is sharded: promotion needs an unsharded collection")
    if target_name == source.name:
        raise InvalidParameter(f"alias {alias!r} already points to {target_name!r}, embedded by {model}")
    if state and state["status"] == "copying" and state["target"] != target_name:
        raise UsageError(
            f"a promotion of {alias!r} to {state['model']} is unfinished: run it again to resume it, "
            "or abort it (vectorforge models promote --abort)"
        )
    settings = _settings(source, card.dim)
    ours = state is not None and target_name in (state["target"], state["previous"])  # e.g. rolled back
    if db.has_collection(target_name):
        target = db.get_collection(target_name)
        recorded = target.info()["embedder"]
        if not ours or not recorded or recorded["name"] != card.ref:
            raise InvalidParameter(
                f"collection {target_name!r} exists and is not this promotion's: delete it"
            )
    else:
        target = db.create_collection(target_name, embedder=card.ref, **settings)
        for field, schema in source.config.payload_indexes.items():
            target.create_payload_index(field, schema)
    assert isinstance(target, Collection)
    started = time.perf_counter()
    report = PromotionReport(alias, source.name, target_name, card.ref)
    _save_state(db, alias, {"status": "copying", "previous": source.name, **_brief(report)})
    mirror = _Mirror(source, target, card.ref)
    _attach(db, alias, mirror)
    try:
        _copy(source, target, mirror, report, batch_size, progress)
        report.mirrored = mirror.mirrored
        _gate(source, target, gates, report, mirror)
        if report.passed:
            report.switched = _switch(db, alias, mirror, report)
    finally:
        if not report.switched:
            _detach(db, alias, mirror)
        report.seconds = time.perf_counter() - started
        status = "switched" if report.switched else ("gated" if report.reasons else "copying")
        _save_state(db, alias, {"status": status, "previous": source.name, **_brief(report)})
    return report


def rollback(db: DatabaseAPI, alias: str, *, batch_size: int = 128, progress: bool = True) -> PromotionReport:
    """Switch `alias` back to the collection it pointed to before its last promotion, after copying
    into it every write the promoted collection took since (re-embedded by the old model)."""
    db = _local(db)
    state = _settled(db, alias)
    if not state or state["status"] != "switched":
        raise UsageError(f"alias {alias!r} has no switched promotion to roll back")
    current = db.get_collection(alias)
    previous = db.get_collection(state["previous"])
    assert isinstance(current, Collection) and isinstance(previous, Collection)
    if current.name == previous.name:  # switched back already (by hand, or a crash before the state)
        _save_state(db, alias, {**state, "status": "rolled-back"})
        raise UsageError(f"alias {alias!r} points to {previous.name!r} already: nothing to roll back")
    started = time.perf_counter()
    report = PromotionReport(alias, current.name, previous.name, "rollback")
    mirror = _Mirror(current, previous, "rollback")
    _attach(db, alias, mirror)  # detaches the promotion's mirror first: no cycle
    try:
        _copy(current, previous, mirror, report, batch_size, progress)
        report.mirrored = mirror.mirrored
        report.passed = mirror.failed is None
        report.reasons = [mirror.failed] if mirror.failed else []
        if report.passed:
            report.switched = _switch(db, alias, mirror, report)
        if not report.switched:
            raise UsageError(f"rollback of {alias!r} stopped: {'; '.join(report.reasons)}")
    finally:
        if not report.switched:
            _detach(db, alias, mirror)
    report.seconds = time.perf_counter() - started
    _save_state(db, alias, {"status": "rolled-back", "previous": current.name, **_brief(report)})
    return report


def abort(db: DatabaseAPI, alias: str) -> str | None:
    """Give up the unfinished or gated promotion of `alias`: its new collection is deleted (unless an
    alias points to it) and its state cleared; returns the deleted collection's name."""
    db = _local(db)
    state = _settled(db, alias)
    if not state or state["status"] not in ("copying", "gated"):
        raise UsageError(f"alias {alias!r} has no unfinished or gated promotion to abort")
    _detach(db, alias)
    target = state["target"]
    deleted = None
    if db.has_collection(target) and target not in db.list_aliases().values():
        db.delete_collection(target)
        deleted = target
    _state_path(db, alias).unlink()
    return deleted


def _switch(db: Database, alias: str, mirror: _Mirror, report: PromotionReport) -> bool:
    """Move the alias unless a write failed to mirror. Under the mirror's lock: no mirrored write
    completes meanwhile, so none can fail unseen between the check and the switch."""
    with mirror.lock:
        if mirror.failed:
            report.reasons.append(mirror.failed)
            report.passed = False
            return False
        db.switch_alias(alias, mirror.target.name)
    return True


def _settled(db: Database, alias: str) -> dict[str, Any] | None:
    """The state, corrected for a crash between the switch and the state's write: if the alias
    points to the target already, the promotion did switch."""
    state = promotion_state(db, alias)
    if state and state["status"] in ("copying", "gated") and db.list_aliases().get(alias) == state["target"]:
        state = {**state, "status": "switched"}
        _save_state(db, alias, state)
    return state


def _check_settings(gates: Gates, batch_size: int) -> None:
    if not 1 <= batch_size <= 10_000:
        raise InvalidParameter(f"batch_size must be from 1 to 10000, not {batch_size}")
    bad = [
        f"{name} {value}"
        for name, value, ok in (
            ("k", gates.k, gates.k >= 1),
            ("min_overlap", gates.min_overlap, 0 <= gates.min_overlap <= 1),
            ("min_rbo", gates.min_rbo, 0 <= gates.min_rbo <= 1),
            ("min_effect", gates.min_effect, gates.min_effect >= 0),
        )
        if not ok
    ]
    if bad:
        raise InvalidParameter(
            f"gates need k >= 1, min_overlap and min_rbo in [0, 1] and min_effect >= 0; got {', '.join(bad)}"
        )


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
    with mirror.lock:
        began = mirror.clock
    try:
        while True:
            with mirror.lock:  # before the read: a write that lands during it is newer than it
                read_at = mirror.clock
            page = source.scroll(batch_size, cursor, with_payload=True)
            ids = [r.id for r in page.records]
            payloads = [r.payload for r in page.records]
            texts = _texts(ids, payloads)
            embedder.encode(texts, batch_size=64)  # outside the lock: add() below hits the cache
            with mirror.lock:
                touched = mirror.touched
                fresh = [i for i, pid in enumerate(ids) if touched.get(pid, 0) <= read_at]
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
    # (not seen in the source, and not written since the copy began: a point added meanwhile is
    # in the target by the mirror, after its page went by)
    stale = [pid for pid in _all_ids(target) if pid not in seen]
    with mirror.lock:
        stale = [pid for pid in stale if mirror.touched.get(pid, 0) <= began]
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
        overlaps, compared = [], []
        for q in gates.queries:
            a = [(h.id, h.score) for h in source.query(q, gates.k, with_payload=False)]
            b = [(h.id, h.score) for h in target.query(q, gates.k, with_payload=False)]
            overlaps.append(len({i for i, _ in a} & {i for i, _ in b}) / max(1, min(gates.k, len(a))))
            compared.append(compare_rankings(a, b, k=gates.k))
        arr = np.asarray(overlaps)
        rbo = float(np.mean([c.rbo for c in compared]))
        report.overlap = {
            "k": gates.k,
            "queries": len(overlaps),
            "mean": float(arr.mean()),
            "p10": float(np.quantile(arr, 0.1)),
            "min": float(arr.min()),
            "rbo": rbo,
            "jaccard": float(np.mean([c.jaccard for c in compared])),
            "top1_agreement": float(np.mean([c.top1 for c in compared])),
        }
        if arr.mean() < gates.min_overlap:
            reasons.append(
                f"top-{gates.k} overlap {arr.mean():.3f} is below the required {gates.min_overlap}"
            )
        if rbo < gates.min_rbo:
            reasons.append(f"rank-biased overlap {rbo:.3f} is below the required {gates.min_rbo}")
    report.reasons = reasons
    report.passed = not reasons


def _settings(source: Collection, dim: int) -> dict[str, Any]:
    """The source's vectors and index settings, with the dense vector sized for the new model. Only
    what `add()` makes from a text can be made again: the embedder's dense vector and sparse
    vectors with an analyzer; a collection with any other vector is refused."""
    spec = source.config.vectors_spec()
    dense = [n for n, v in spec.items() if v["kind"] == "dense"]
    others = [
        n
        for n, v in spec.items()
        if v["kind"] != "dense" and not (v["kind"] == "sparse" and v.get("analyzer"))
    ]
    if len(dense) > 1 or others:
        raise UsageError(
            f"collection {source.name!r} has vectors a promotion cannot make again from its texts "
            f"({', '.join(dense[1:] + others)}): only the embedder's dense vector and BM25 are re-made"
        )
    settings: dict[str, Any] = {"max_segment_points": source.config.max_segment_points}
    if list(spec) == [""]:
        primary = spec[""]
        return {
            **settings,
            "metric": primary["metric"],
            "index": primary["index"],
            "index_params": primary["index_params"],
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
