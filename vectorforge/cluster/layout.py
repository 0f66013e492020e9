"""One arrangement of a collection's points over shards: a router and one replica set per shard.

A sharded collection has one layout, and two while it is resharded (`ShardedCollection.reshard`):
the current one, which answers every read, and the next one, which receives every write too while
the points are copied into it. Each layout lives in its own folder, named by its generation::

    collections/<name>/shards/<i>/          generation 0 (the layout a collection is created with)
    collections/<name>/shards-<g>/<i>/      generation g, after g reshards
    collections/<name>/shards-<g>/router.npy   its k-means centroids (semantic sharding)

`config.json` names the current generation (`layout`); any other `shards*` folder is what a reshard
left when it was interrupted, and is removed on open. A layout whose router moves ids (key and
semantic sharding) keeps a move log in `<layout folder>/moves/` (see `cluster/moves.py`).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.cluster.backend import ShardBackend
from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.moves import MoveLog
from vectorforge.cluster.replicaset import ReadGuarantee, ReplicaSet
from vectorforge.cluster.routing import HashRouter, KeyRouter, Router, SemanticRouter
from vectorforge.errors import InvalidParameter
from vectorforge.storage.fsio import write_atomic
from vectorforge.types import CollectionConfig, Consistency, PointId, Sharding

__all__ = ["ShardLayout", "layout_folder", "make_router", "remove_stale_layouts", "user_keys"]

ROUTER_FILE = "router.npy"
_EVERY_ENTRY = ReadGuarantee(Consistency.STRONG, None)
logger = logging.getLogger(__name__)


def _part(key: str | None, shard_no: int, step: str = "") -> str | None:
    """The idempotency key of one shard's part of a keyed write: `key:<shard>` for an upsert's part,
    `key:<shard>:d` and `:f` for a delete's (by ids, by filter), `key:<shard>:x<other>` for a move's
    delete on another shard, `key:0:p` for a payload update's total."""
    return None if key is None else f"{key}:{shard_no}{':' + step if step else ''}"


def user_keys(parts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The keys callers gave, and what their writes returned, from shards' windows of part keys
    (see `_part`): an upsert returned its parts' latest timestamp, a delete the sum of its counts, a
    payload update the total its marker (`key:0:p`) holds."""
    upserts: dict[str, int] = {}
    deletes: dict[str, int] = {}
    totals: dict[str, int] = {}
    for part, result in parts:
        head, _, last = part.rpartition(":")
        if head and last.isdigit():
            upserts[head] = max(upserts.get(head, 0), result)
            continue
        key, _, shard = head.rpartition(":")
        if key and shard.isdigit() and last in ("d", "f"):
            deletes[key] = deletes.get(key, 0) + result
        elif key and shard.isdigit() and last == "p":
            totals[key] = result
    return {**deletes, **upserts, **totals}


_WRITES = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="vf-shard-write")


def layout_folder(folder: Path, generation: int) -> Path:
    """Where generation `generation`'s shards live inside the collection folder `folder`."""
    return folder / ("shards" if generation == 0 else f"shards-{generation}")


def _router_file(folder: Path, generation: int) -> Path:
    # Generation 0 keeps its centroids beside config.json, where collections made before
    # resharding existed have them.
    return folder / ROUTER_FILE if generation == 0 else layout_folder(folder, generation) / ROUTER_FILE


def remove_stale_layouts(folder: Path, generation: int) -> None:
    """Remove what an interrupted reshard (every layout but `generation`) or snapshot left."""
    keep = layout_folder(folder, generation)
    for path in [*folder.glob("shards*"), *folder.glob(".snapshot-*")]:
        if path.is_dir() and path != keep:
            shutil.rmtree(path)
    if generation != 0:
        (folder / ROUTER_FILE).unlink(missing_ok=True)


def make_router(config: CollectionConfig, centroids: np.ndarray | None = None) -> Router:
    """The router a config asks for (semantic: with `centroids` if they are known)."""
    if config.sharding is Sharding.HASH:
        return HashRouter(config.shards)
    if config.sharding is Sharding.KEY:
        if not config.shard_key:
            raise InvalidParameter("sharding='key' needs shard_key='<payload field>'")
        return KeyRouter(config.shards, config.shard_key)
    return SemanticRouter(config.shards, config.metric, config.n_probe or 1, centroids)


class ShardLayout:
    """The shards of one generation and the router that places points on them."""

    def __init__(
        self, config: CollectionConfig, router: Router, shards: list[ReplicaSet], folder: Path | None
    ) -> None:
        self.config = config
        self.generation = config.layout
        self.router = router
        self.shards = shards
        self.folder = folder  # the collection folder (None in memory)
        self.moves: MoveLog | None = None
        self.unsettled: list[tuple[int, list[PointId], np.ndarray]] = []  # failed moves to settle
        if folder is not None and router.moves_points:
            self.moves = MoveLog(layout_folder(folder, self.generation) / "moves")
            completed = self.moves.resolve(self._holds, self._drop_elsewhere)
            if completed:
                logger.warning("finished %d moves of ids between shards that a crash interrupted", completed)

    def _holds(self, shard_no: int, ids: list[PointId]) -> set[PointId]:
        records = self.shards[shard_no].read(_EVERY_ENTRY, lambda c: c.get(ids, with_payload=False))
        return {r.id for r in records}

    def _drop_elsewhere(self, pid: PointId, keep: int) -> None:
        for other, shard in enumerate(self.shards):
            if other != keep:
                shard.delete(ids=[pid])

    @classmethod
    def open(
        cls, config: CollectionConfig, folder: Path | None, backend: ShardBackend, clock: HybridLogicalClock
    ) -> ShardLayout:
        """Open (or create) generation `config.layout` of a collection in `folder`."""
        centroids = None
        if folder is not None and _router_file(folder, config.layout).exists():
            centroids = np.load(_router_file(folder, config.layout))
        router = make_router(config, centroids)
        base = layout_folder(folder, config.layout) if folder is not None else None
        shards: list[ReplicaSet] = []
        try:
            for i in range(config.shards):
                shards.append(backend.open_shard(config, base / str(i) if base else None, clock))
        except BaseException:  # all or nothing: every shard that opened is given back
            for shard in shards:
                try:
                    shard.close()
                except Exception as exc:  # give back the others all the same
                    logger.warning("closing shard of %r after a failed open: %s", config.name, exc)
                finally:
                    backend.discard(shard)
            raise
        return cls(config, router, shards, folder)

    # ------------------------------------------------------------------ writes
    def place(self, ids: list[PointId], vectors: np.ndarray, payloads: list[Any]) -> np.ndarray:
        """The shard of each point; a semantic router that has no centroids yet learns them here."""
        router = self.router
        if isinstance(router, SemanticRouter) and not router.trained:
            self.train(vectors)
        return router.place(ids, vectors, payloads)

    def train(self, vectors: np.ndarray) -> None:
        """Learn a semantic router's centroids from `vectors` and keep them with the layout."""
        assert isinstance(self.router, SemanticRouter)
        self.router.train(vectors)
        centroids = self.router_bytes()
        if self.folder is not None and centroids is not None:
            write_atomic(_router_file(self.folder, self.generation), centroids)

    def router_bytes(self) -> bytes | None:
        """A semantic router's centroids as a .npy file's bytes (None: no centroids to keep)."""
        if not isinstance(self.router, SemanticRouter) or self.router.centroids is None:
            return None
        buffer = io.BytesIO()
        np.save(buffer, self.router.centroids)
        return buffer.getvalue()

    def upsert(
        self,
        ids: list[PointId],
        vectors: np.ndarray,
        payloads: list[Any],
        placement: np.ndarray,
        key: str | None = None,
        named: dict[str, list[Any]] | None = None,
        kept: bool = False,
    ) -> int:
        """Write each point to its shard (and remove it from any other one it may have lived on).
        `kept`: `named` holds rows as the indexes keep them (see `ReplicaSet.upsert`).

        The shards are written in parallel threads (FAISS releases the GIL while it inserts); the
        call returns once every shard has its part, or raises the first shard's error. With `key`
        (an idempotency key) each shard's part is keyed `key:<shard>`, so a retry writes only the
        parts that did not land. A move between shards is logged first (`cluster/moves.py`)."""
        moves = self.moves
        # Ids that live on another shard than their new one, by new shard and old: only they move
        # (read first, under the callers' id locks), so a write of new ids logs and deletes nothing.
        moving: dict[int, dict[int, list[PointId]]] = {}
        if self.router.moves_points:
            target_of = dict(zip(ids, placement.tolist(), strict=True))
            for other in range(len(self.shards)):
                leaving = [ids[r] for r in np.flatnonzero(placement != other)]
                if leaving:
                    for pid in self._holds(other, leaving):
                        moving.setdefault(target_of[pid], {}).setdefault(other, []).append(pid)
        moved = [
            (pid, shard) for shard, by_other in moving.items() for part in by_other.values() for pid in part
        ]
        move = None
        if moves is not None and moved:
            move = moves.begin([pid for pid, _ in moved], [shard for _, shard in moved])

        def write(shard_no: int) -> int:
            rows = np.flatnonzero(placement == shard_no)
            part_ids = [ids[r] for r in rows]
            op_id = _part(key, shard_no)
            shard = self.shards[shard_no]
            retried = op_id is not None and shard.recall(op_id) is not None
            part_named = {name: [values[r] for r in rows] for name, values in (named or {}).items()}
            ts = shard.upsert(
                part_ids,
                vectors[rows],
                [payloads[r] for r in rows],
                op_id=op_id,
                named=part_named,
                checked_vectors=True,
                kept=kept,
            )
            for other, old_copies in moving.get(shard_no, {}).items():  # remove the copies that moved
                if retried:  # only ids this shard still holds: a later write may have moved one away
                    held = self._holds(shard_no, old_copies)
                    old_copies = [pid for pid in old_copies if pid in held]
                if old_copies:
                    step = None if retried else _part(key, shard_no, f"x{other}")
                    self.shards[other].delete(ids=old_copies, op_id=step)
            return ts

        targets = np.unique(placement).tolist()
        try:
            if len(targets) == 1:
                ts = write(targets[0])
            else:
                futures = [_WRITES.submit(write, shard_no) for shard_no in targets]
                wait(futures)
                ts = max(future.result() for future in futures)
        except BaseException:
            if moves is not None and move is not None:
                self._settle(moves, move, ids, placement)
            raise
        if moves is not None and move is not None:
            moves.done(move)
        return ts

    def _settle(self, moves: MoveLog, move: int, ids: list[PointId], placement: np.ndarray) -> bool:
        """Leave each id of a failed moving write on one shard, if the shards answer now; else keep
        the move in `unsettled` (the next write settles it, or opening the layout does). The
        caller holds the ids' locks."""
        try:
            for shard_no in np.unique(placement).tolist():
                part = [ids[r] for r in np.flatnonzero(placement == shard_no)]
                for pid in self._holds(shard_no, part):
                    self._drop_elsewhere(pid, shard_no)
        except Exception as exc:
            logger.warning("a failed move is settled later (the next write, or on open): %s", exc)
            if not any(m == move for m, _, _ in self.unsettled):
                self.unsettled.append((move, ids, placement))
            return False
        moves.done(move)
        return True

    def settle_pending(self) -> None:
        """Try again to settle the moves that failed (the caller holds their ids' locks)."""
        if self.moves is None:
            return
        pending, self.unsettled = self.unsettled, []
        for move, ids, placement in pending:
            self._settle(self.moves, move, ids, placement)

    def delete(self, ids: list[PointId] | None, filter: dict[str, Any] | None, key: str | None = None) -> int:
        """Delete by id and/or filter on every shard that may hold the points; returns how many."""
        total = 0
        if ids is not None:
            for shard_no, part in self.by_shard(ids).items():
                total += self.shards[shard_no].delete(ids=part, op_id=_part(key, shard_no, "d"))
        if filter is not None:
            total += sum(
                shard.delete(filter=filter, op_id=_part(key, shard_no, "f"))
                for shard_no, shard in enumerate(self.shards)
            )
        return total

    def by_shard(self, ids: Sequence[PointId]) -> dict[int, list[PointId]]:
        """Where ids live: one shard each for hash sharding, every shard otherwise."""
        if isinstance(self.router, HashRouter):
            groups: dict[int, list[PointId]] = {}
            for pid, shard_no in zip(ids, self.router.place(ids, np.empty(0), []).tolist(), strict=True):
                groups.setdefault(shard_no, []).append(pid)
            return groups
        return {shard_no: list(ids) for shard_no in range(len(self.shards))}

    def remembered_keys(self) -> dict[str, int]:
        """The caller-given idempotency keys this layout's shards remember, with their results."""
        return user_keys(part for shard in self.shards for part in shard.remembered_keys())

    @property
    def last_ts(self) -> int:
        return max(shard.last_ts for shard in self.shards)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        if self.moves is not None:
            self.moves.close()

    def destroy(self) -> None:
        """Close the shards and remove their folder (a layout that was replaced or abandoned)."""
        self.close()
        if self.folder is not None:
            shutil.rmtree(layout_folder(self.folder, self.generation), ignore_errors=True)
