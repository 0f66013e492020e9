"""R replicas of one shard: a leader orders writes in a log, writes are acknowledged at a quorum,
reads pick a replica that satisfies their consistency level. The `local` backend: all in-process.

State, and where it lives:
- the replication log (`replog/`, a checksummed, fsynced write-ahead log): every write, in order,
  with its sequence number (rseq), hybrid-logical-clock timestamp, operation id and the epoch of
  the leader that wrote it. Followers catch up from it without a full copy;
- each replica: an engine collection whose last applied (rseq, ts, op_id, epoch) is durable with
  its data (`Collection.last_meta`), so a replica knows after a restart how far it got;
- `replicaset.json`: the leader and the epoch, replaced atomically on failover.

A replica's data lives in a `ReplicaStore`: an engine `Collection` in this process (the `local`
backend) or a proxy to a Ray actor that owns one on its node (the `ray` backend, `cluster/ray.py`).
A store whose process or node is gone raises `ReplicaLost`: the replica is then fenced for good
(no write or read goes to it again, the epoch moves on) until `replace` installs a new store, seeded
with a copy of the leader and the log written since.

Failure is injected in tests with `fail`, `lag` and `recover`: a failed replica refuses every call, a
lagging one stops applying writes (the log keeps them) until it recovers and catches up.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vectorforge.cluster.clock import HybridLogicalClock, ts_to_seconds
from vectorforge.engine.filters import parse_delete_filter
from vectorforge.engine.validate import check_ids, check_payloads, check_vectors
from vectorforge.errors import (
    CorruptionError,
    ReplicaLost,
    StaleEpoch,
    UnavailableError,
)
from vectorforge.storage import WriteAheadLog
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import CollectionConfig, Consistency, Hit, PointId, Record, ScrollPage

__all__ = [
    "Consistency",
    "ReadGuarantee",
    "ReplicaLost",
    "ReplicaSet",
    "ReplicaStore",
    "StaleEpoch",
    "WriteQuorum",
]

T = TypeVar("T")

STATE_FILE = "replicaset.json"
_APPLY = ThreadPoolExecutor(max_workers=max(4, os.cpu_count() or 2), thread_name_prefix="vf-replica")
LOG_ROTATE_BYTES = 64 * 1024 * 1024


class WriteQuorum(StrEnum):
    """How many replicas must have a write durably before it is acknowledged."""

    ONE = "1"
    MAJORITY = "majority"
    ALL = "all"

    def needed(self, replicas: int) -> int:
        return {WriteQuorum.ONE: 1, WriteQuorum.MAJORITY: replicas // 2 + 1, WriteQuorum.ALL: replicas}[self]


class ReplicaStore(Protocol):
    """What a replica set needs from one copy of a shard; an engine `Collection` is one."""

    config: CollectionConfig
    last_meta: dict[str, Any]

    def apply_replicated(self, entry: dict[str, Any]) -> bool: ...
    def search_batch(
        self,
        vectors: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[list[Hit]]: ...
    def get(
        self,
        ids: Sequence[PointId],
        *,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Record]: ...
    def count(self, filter: dict[str, Any] | None = None, *, consistency: str | None = None) -> int: ...
    def scroll(
        self,
        limit: int = 1000,
        cursor: str | None = None,
        *,
        filter: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> ScrollPage: ...
    def info(self) -> dict[str, Any]: ...
    def snapshot(self, path: Path) -> Path: ...
    def flush(self) -> None: ...
    def optimize(self) -> bool: ...
    def close(self) -> None: ...
    def embedder(self) -> Any: ...


class ReadGuarantee:
    """A read's level and the timestamp the replica must have reached (None: any)."""

    def __init__(self, level: Consistency, ts: int | None) -> None:
        self.level = level
        self.ts = ts


class Replica:
    """One copy of the shard and its fault-injection switches."""

    def __init__(self, index: int, collection: ReplicaStore) -> None:
        self.index = index
        self.collection = collection
        self.up = True
        self.lagging = False
        self.lost = False  # fenced for good: its process or node is gone; waits for `replace`
        self.epoch = int(collection.last_meta.get("epoch", 0))

    @property
    def live(self) -> bool:
        return self.up and not self.lost

    @property
    def rseq(self) -> int:
        return int(self.collection.last_meta.get("rseq", 0))

    @property
    def ts(self) -> int:
        return int(self.collection.last_meta.get("ts", 0))

    def apply(self, entry: dict[str, Any]) -> None:
        self.begin_apply(entry, parallel=False)()

    def begin_apply(self, entry: dict[str, Any], parallel: bool = True) -> Callable[[], object]:
        """Start applying `entry`; the returned call waits for it. Replicas apply side by side: on
        their nodes (Ray), or in threads here (FAISS releases the GIL while it inserts)."""
        if not self.live:
            raise UnavailableError(f"replica {self.index} is down")
        epoch = entry["meta"]["epoch"]
        if epoch < self.epoch:
            raise StaleEpoch(
                f"replica {self.index} is at epoch {self.epoch}; refusing a write of epoch {epoch}"
            )
        self.epoch = epoch
        start = getattr(self.collection, "begin_apply", None)
        if start is not None:
            finish: Callable[[], object] = start(entry)
            return finish
        if not parallel:
            self.collection.apply_replicated(entry)
            return lambda: None
        return _APPLY.submit(self.collection.apply_replicated, entry).result


class ReplicaSet:
    """The shard interface (`upsert`, `delete`, `search_batch` ...) over R replicas."""

    def __init__(
        self,
        replicas: Sequence[ReplicaStore],
        folder: Path | None,
        clock: HybridLogicalClock,
        quorum: WriteQuorum = WriteQuorum.MAJORITY,
        max_staleness: float = 1.0,
    ) -> None:
        self.replicas = [Replica(i, c) for i, c in enumerate(replicas)]
        self.folder = folder
        self.clock = clock
        self.quorum = quorum
        self.max_staleness = max_staleness
        self._lock = threading.RLock()
        self._applied = threading.Condition(self._lock)
        self._memory_log: list[dict[str, Any]] = []
        self._op_ids: OrderedDict[str, int] = OrderedDict()
        self._round_robin = 0
        self._copying = 0  # full copies in progress: the log must keep what they will need
        self.leader, self.epoch = 0, 1
        self.log: WriteAheadLog | None = None
        if folder is not None:
            state = folder / STATE_FILE
            if state.exists():
                saved = json.loads(state.read_text())
                self.leader, self.epoch = int(saved["leader"]), int(saved["epoch"])
            self.log = WriteAheadLog(folder / "replog")
        # Never below an epoch a replica has seen (replicas restored from a snapshot carry theirs).
        self.epoch = max([self.epoch, *(r.epoch for r in self.replicas)])
        self.last_rseq = max(r.rseq for r in self.replicas)
        self.last_ts = max(r.ts for r in self.replicas)
        if self.log is not None:
            for entry in self.log.replay(after_seq=0):  # entries no replica applied (a crash mid-write)
                self.last_rseq = max(self.last_rseq, entry["seq"])
                self.last_ts = max(self.last_ts, entry["meta"]["ts"])
            self.log.open_for_append(self.last_rseq + 1)
        clock.observe(self.last_ts)
        self.closed = False
        for replica in self.replicas:
            try:
                self._catch_up(replica)
            except CorruptionError:  # its data is gone or too old for the log: it needs a full copy
                replica.lost = True
        if not any(r.live for r in self.replicas):
            raise CorruptionError("no replica of this shard can be brought up to date from the log")

    # ------------------------------------------------------------------ writes
    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        op_id: str | None = None,
    ) -> int:
        """Log, replicate and acknowledge at the quorum; returns the write's timestamp."""
        config = self.replicas[0].collection.config
        checked = check_ids(ids)
        vecs = check_vectors(vectors, config.dim, config.metric, expected_rows=len(checked))
        body = {
            "op": "upsert",
            "ids": checked,
            "vectors": vecs.tobytes(),
            "payloads": check_payloads(payloads, len(checked)),
        }
        return self._write(body, op_id)

    def delete(self, ids: Sequence[PointId] | None = None, filter: dict[str, Any] | None = None) -> int:
        """Delete by ids and/or filter; a filter is resolved to ids on the leader, so replicas agree."""
        with self._lock:
            leader = self._leader()
            targets: list[PointId] = []
            if ids is not None:
                targets = [
                    r.id for r in leader.collection.get(check_ids(ids, unique=False), with_payload=False)
                ]
            if filter is not None:
                parse_delete_filter(filter)
                seen = set(targets)
                page = leader.collection.scroll(10_000, filter=filter, with_payload=False)
                while True:
                    targets.extend(r.id for r in page.records if r.id not in seen)
                    if page.next_cursor is None:
                        break
                    page = leader.collection.scroll(
                        10_000, page.next_cursor, filter=filter, with_payload=False
                    )
            if targets:
                self._write({"op": "delete", "ids": list(dict.fromkeys(targets))}, None)
            return len(set(targets))

    def _write(self, body: dict[str, Any], op_id: str | None) -> int:
        with self._lock:
            if op_id is not None and op_id in self._op_ids:  # a retry: already applied, same answer
                return self._op_ids[op_id]
            leader = self._leader()
            ts = self.clock.now()
            rseq = self.last_rseq + 1
            entry = {
                **body,
                "seq": rseq,
                "meta": {"rseq": rseq, "ts": ts, "op_id": op_id or uuid.uuid4().hex, "epoch": self.epoch},
            }
            if self.log is not None:
                self.log.append(entry)  # durable in the log before any replica applies it
                if self.log.current_bytes > LOG_ROTATE_BYTES:
                    self.log.rotate(rseq + 1)
            else:
                self._memory_log.append(entry)
            self.last_rseq, self.last_ts = rseq, ts
            targets = [
                replica
                for replica in [leader, *(r for r in self.replicas if r is not leader)]
                if replica.live and not replica.lagging
            ]
            pending = [(replica, replica.begin_apply(entry, len(targets) > 1)) for replica in targets]
            acks = 0
            failure: BaseException | None = None
            for replica, finish in pending:  # wait for every replica before raising anything
                try:
                    finish()
                    acks += 1
                except ReplicaLost:
                    self._fence(replica)
                except BaseException as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
            self._applied.notify_all()
            if not self._copying:  # what every kept replica has applied is not needed for catch-up
                kept = [r.rseq for r in self.replicas if not r.lost]
                applied = min(kept) if kept else 0
                if self.log is not None:
                    self.log.drop_through(applied)
                elif self._memory_log and self._memory_log[0]["seq"] <= applied:
                    self._memory_log = [e for e in self._memory_log if e["seq"] > applied]
            needed = self.quorum.needed(len(self.replicas))
            if acks < needed:
                raise UnavailableError(
                    f"write reached {acks} of {len(self.replicas)} replicas but the quorum is {needed}; "
                    "it is not acknowledged (it may still appear once replicas recover)",
                    acks=acks,
                    needed=needed,
                )
            if op_id is not None:
                self._op_ids[op_id] = ts
                while len(self._op_ids) > 100_000:
                    self._op_ids.popitem(last=False)
            return ts

    def _leader(self) -> Replica:
        leader = self.replicas[self.leader]
        if not leader.live:
            self.failover()
            leader = self.replicas[self.leader]
        return leader

    def _fence(self, replica: Replica) -> None:
        """Never use `replica` again (its node is gone); a new epoch starts if it led."""
        with self._lock:
            if replica.lost:
                return
            replica.lost = True
            if replica.index == self.leader and any(r.live for r in self.replicas):
                self.failover()
            self._applied.notify_all()

    def lose(self, index: int) -> None:
        """Fence replica `index` for good (its node left the cluster); `replace` brings a new one."""
        self._fence(self.replicas[index])

    def replace(
        self, index: int, store: ReplicaStore, seed: Callable[[ReplicaStore, ReplicaStore], None]
    ) -> None:
        """Install a new store for lost replica `index`: `seed(source, store)` copies the leader into
        it while writes go on, then, under the lock, it catches up from the log and takes its place.
        The log is not trimmed during the copy, so the catch-up finds every entry it needs."""
        with self._lock:
            source = self._leader()
            self._copying += 1
        try:
            seed(source.collection, store)
            with self._lock:
                fresh = Replica(index, store)
                fresh.epoch = self.epoch
                self._catch_up(fresh)
                self.replicas[index] = fresh
                self._applied.notify_all()
        finally:
            with self._lock:
                self._copying -= 1

    def failover(self) -> int:
        """Make the most up-to-date live replica the leader, in a new epoch; returns its index."""
        with self._lock:
            live = [r for r in self.replicas if r.live]
            if not live:
                raise UnavailableError("every replica of this shard is down")
            best = max(live, key=lambda r: (r.rseq, -r.index))
            self._catch_up(best)  # the log may hold entries the old leader wrote but best had not applied
            self.leader = best.index
            self.epoch += 1
            for replica in live:
                replica.epoch = max(replica.epoch, self.epoch)
            if self.folder is not None:
                write_json_atomic(self.folder / STATE_FILE, {"leader": self.leader, "epoch": self.epoch})
            return self.leader

    def _entries_after(self, rseq: int) -> list[dict[str, Any]]:
        if self.log is not None:
            return list(self.log.replay(after_seq=rseq))
        return [e for e in self._memory_log if e["seq"] > rseq]

    def _catch_up(self, replica: Replica) -> None:
        if not replica.live or replica.lagging or replica.rseq >= self.last_rseq:
            return
        entries = self._entries_after(replica.rseq)
        if not entries or entries[0]["seq"] != replica.rseq + 1:
            raise CorruptionError(
                f"replica {replica.index} is at log position {replica.rseq} but the log starts later; "
                "it needs a full copy (lose and replace it)"
            )
        for entry in entries:
            entry["meta"]["epoch"] = max(
                entry["meta"]["epoch"], replica.epoch
            )  # replayed under the new epoch
            replica.apply(entry)

    # ------------------------------------------------------------------ fault injection (tests, drills)
    def fail(self, index: int) -> None:
        """Take replica `index` down (it refuses everything until `recover`)."""
        with self._lock:
            self.replicas[index].up = False

    def lag(self, index: int) -> None:
        """Stop replica `index` applying writes; it keeps answering reads with what it has."""
        with self._lock:
            self.replicas[index].lagging = True

    def recover(self, index: int) -> None:
        """Bring replica `index` back and catch it up from the log (no full copy)."""
        with self._lock:
            replica = self.replicas[index]
            replica.up, replica.lagging = True, False
            self._catch_up(replica)
            self._applied.notify_all()

    # ------------------------------------------------------------------ reads
    def read(self, guarantee: ReadGuarantee, call: Callable[[ReplicaStore], T]) -> T:
        """`call` on a replica that satisfies `guarantee`; on another one if that replica is lost."""
        while True:
            store = self.reader(guarantee)
            try:
                return call(store)
            except ReplicaLost:
                for replica in self.replicas:
                    if replica.collection is store:
                        self._fence(replica)

    def reader(self, guarantee: ReadGuarantee, timeout: float = 5.0) -> ReplicaStore:
        """A replica that satisfies `guarantee`, waiting up to `timeout` seconds for one to catch up."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                candidates = [r for r in self.replicas if r.live and self._satisfies(r, guarantee)]
                if candidates:
                    if guarantee.level is Consistency.STRONG and self.replicas[self.leader] in candidates:
                        return self.replicas[self.leader].collection
                    self._round_robin += 1
                    return candidates[self._round_robin % len(candidates)].collection
                if not any(r.live for r in self.replicas):
                    raise UnavailableError("every replica of this shard is down")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UnavailableError(
                        f"no replica reached the {guarantee.level.value} read's timestamp within {timeout} s"
                    )
                self._applied.wait(remaining)

    def _satisfies(self, replica: Replica, guarantee: ReadGuarantee) -> bool:
        if guarantee.level is Consistency.EVENTUAL or guarantee.ts is None:
            return True
        if replica.rseq >= self.last_rseq:  # caught up: consistent as of now
            return True
        return replica.ts >= guarantee.ts

    # ------------------------------------------------------------------ upkeep
    def embedder(self) -> Any:
        return self.replicas[0].collection.embedder()

    def _each_live(self, call: Callable[[ReplicaStore], T]) -> list[T]:
        results = []
        for replica in list(self.replicas):
            if replica.live:
                try:
                    results.append(call(replica.collection))
                except ReplicaLost:
                    self._fence(replica)
        return results

    def flush(self) -> None:
        self._each_live(lambda c: c.flush())

    def optimize(self) -> bool:
        return any(self._each_live(lambda c: c.optimize()))

    def stats(self) -> dict[str, Any]:
        """The leader's collection statistics."""
        return self.read(ReadGuarantee(Consistency.STRONG, None), lambda c: c.info())

    def info(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "epoch": self.epoch,
            "last_rseq": self.last_rseq,
            "replicas": [
                {
                    "index": r.index,
                    "up": r.live,
                    "lost": r.lost,
                    "lagging": r.lagging,
                    "rseq": r.rseq,
                    "behind_s": max(0.0, ts_to_seconds(self.last_ts) - ts_to_seconds(r.ts)),
                }
                for r in self.replicas
            ],
        }

    def close(self) -> None:
        with self._lock:
            for replica in self.replicas:
                if not replica.lost:
                    replica.collection.close()
            if self.log is not None:
                self.log.close()
            self.closed = True
