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

Rules that keep replicas equal (docs/distributed.md, "When replicas fail"):
- entries apply in log order only; a replica whose apply failed is behind (out of sync) and is
  caught up from the log before it is sent the next entry, and counts for no quorum until then;
- a write is acknowledged once `write_quorum` replicas applied it; one replica's failure beyond
  the quorum does not fail the write (that replica catches up later);
- the leader, a `strong` read, a reshard's copy and a snapshot use only a replica that has applied
  every entry of the log; failover elects only such a replica (caught up from the log first).

Lock order: `ReplicaSet._lock`, then a replica collection's own lock (never the other way round).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from typing_extensions import Unpack

from vectorforge.api import SearchOptions
from vectorforge.cluster.clock import HybridLogicalClock, ts_to_seconds
from vectorforge.cluster.repair import BUCKETS, Summary, diff, hashes_in, summarize
from vectorforge.engine.filters import parse_delete_filter
from vectorforge.engine.named import pack_named, record_vectors, split_vectors
from vectorforge.engine.validate import check_ids, check_payloads
from vectorforge.errors import (
    CorruptionError,
    ReplicaLost,
    StaleEpoch,
    UnavailableError,
    VectorForgeError,
    WriteNotDurable,
)
from vectorforge.index.sparse import CorpusStats
from vectorforge.storage import WriteAheadLog
from vectorforge.storage.fsio import UncertainCommit, write_json_atomic
from vectorforge.types import CollectionConfig, Consistency, Hit, PointId, Record, ScrollPage, UpdateResult

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
logger = logging.getLogger(__name__)

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


class SparseSearchOptions(SearchOptions, total=False):
    """A shard's BM25 search also takes the statistics of every shard."""

    stats: CorpusStats | None


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
    def sparse_stats(self, using: str, terms: Sequence[int]) -> CorpusStats: ...
    def search_sparse(
        self, using: str, vector: Any, k: int = 10, **options: Unpack[SparseSearchOptions]
    ) -> list[Hit]: ...
    def search_multi(
        self, using: str, query: Any, k: int = 10, **options: Unpack[SearchOptions]
    ) -> list[Hit]: ...
    def search_dense(
        self, using: str, query: Any, k: int = 10, **options: Unpack[SearchOptions]
    ) -> list[Hit]: ...
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
    def upsert(
        self, ids: Sequence[PointId], vectors: Any, payloads: Sequence[dict[str, Any] | None] | None = None
    ) -> UpdateResult: ...
    def restore_points(
        self, ids: Sequence[PointId], vectors: Any, payloads: Sequence[dict[str, Any] | None] | None = None
    ) -> UpdateResult: ...
    def delete(
        self, ids: Sequence[PointId] | None = None, filter: dict[str, Any] | None = None
    ) -> UpdateResult: ...
    def recall(self, key: str) -> int | None: ...
    def remembered_keys(self) -> list[tuple[str, int]]: ...
    def info(self) -> dict[str, Any]: ...
    def snapshot(self, path: Path) -> Path: ...
    def flush(self) -> None: ...
    def optimize(self) -> bool: ...
    def create_payload_index(self, field: str, schema: str = "keyword") -> None: ...
    def delete_payload_index(self, field: str) -> None: ...
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
        self.last_repair: dict[str, Any] | None = None
        self.read_timeout = 5.0  # seconds a read waits for a replica to reach its guarantee
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
            except VectorForgeError as exc:  # its disk refuses now: it stays behind, caught up later
                logger.warning("replica %d opens behind the log: %s", replica.index, exc)
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
        named: dict[str, list[Any]] | None = None,
        checked_vectors: bool = False,
        kept: bool = False,
    ) -> int:
        """Log, replicate and acknowledge at the quorum; returns the write's timestamp. `vectors`
        may name each vector as the engine's `upsert` takes them; `named`: rows already checked;
        `checked_vectors`: `vectors` is `split_vectors`'s array (NaN rows: points without it);
        `kept`: the named rows are as a collection's indexes keep them (read back for a payload
        update or a reshard), so the replicas transform none again (PLAID's pooling)."""
        config = self.replicas[0].collection.config
        checked = check_ids(ids)
        vecs, more = split_vectors(config, vectors, len(checked), absent_ok=checked_vectors)
        body: dict[str, Any] = {
            "op": "upsert",
            "ids": checked,
            "vectors": vecs.tobytes(),
            "payloads": check_payloads(payloads, len(checked)),
        }
        named = {**(named or {}), **more}
        if named:
            body["named"] = pack_named(config, named)
            if kept:
                body["kept"] = True
        return self._write(body, op_id)

    def delete(
        self,
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        op_id: str | None = None,
    ) -> int:
        """Delete by ids and/or filter; a filter is resolved to ids on the leader, so replicas agree."""
        with self._lock:
            leader = self._leader()
            done = self._recall(leader, op_id)
            if done is not None:
                return done
            targets: list[PointId] = []
            if ids is not None:
                targets = [
                    r.id for r in leader.collection.get(check_ids(ids, unique=False), with_payload=False)
                ]
            if filter is not None:
                parse_delete_filter(filter)
                page = leader.collection.scroll(10_000, filter=filter, with_payload=False)
                while True:
                    targets.extend(r.id for r in page.records)
                    if page.next_cursor is None:
                        break
                    page = leader.collection.scroll(
                        10_000, page.next_cursor, filter=filter, with_payload=False
                    )
            unique = list(dict.fromkeys(targets))
            if unique or op_id is not None:  # a keyed delete of nothing is logged: its key must stay
                self._write({"op": "delete", "ids": unique}, op_id, result=len(unique))
            return len(unique)

    def remember(self, op_id: str, result: int) -> int:
        """Log a write of nothing under `op_id` with `result`, so a retry finds the result of a write
        that spanned shards (a payload update's total); the first result stays."""
        with self._lock:
            done = self._recall(self._leader(), op_id)
            return (
                done if done is not None else self._write({"op": "delete", "ids": []}, op_id, result=result)
            )

    def recall(self, op_id: str) -> int | None:
        """The first result of the write made with `op_id`, if this shard has applied it."""
        with self._lock:
            return self._recall(self._leader(), op_id)

    def remembered_keys(self) -> list[tuple[str, int]]:
        """The leader's window of idempotency keys (it has applied every entry)."""
        with self._lock:
            return self._leader().collection.remembered_keys()

    def _recall(self, leader: Replica, op_id: str | None) -> int | None:
        """The first result of a write made with `op_id`: from memory, else from the leader's
        durable window of keys (the leader has applied every entry of the log, retries' included)."""
        if op_id is None:
            return None
        if op_id in self._op_ids:
            return self._op_ids[op_id]
        return leader.collection.recall(op_id)

    def _write(self, body: dict[str, Any], op_id: str | None, result: int | None = None) -> int:
        """Log, apply at the replicas, count the quorum; returns `result` (default: the timestamp)."""
        with self._lock:
            leader = self._leader()  # a leader that has every entry (failing over if it has not)
            done = self._recall(leader, op_id)
            if done is not None:  # a retry: already applied, the same answer
                return done
            ts = self.clock.now()
            rseq = self.last_rseq + 1
            entry = {
                **body,
                "seq": rseq,
                "meta": {"rseq": rseq, "ts": ts, "epoch": self.epoch},
            }
            answer = ts if result is None else result
            if op_id is not None:  # only a caller's key is remembered (and kept by every replica)
                entry["meta"].update(op_id=op_id, result=answer)
            if self.log is not None:
                if self.log.current_bytes > LOG_ROTATE_BYTES:  # before the entry: a failed rotation fails it
                    self.log.rotate(rseq)
                self.log.append(entry)  # durable in the log before any replica applies it
            else:
                self._memory_log.append(entry)
            self.last_rseq, self.last_ts = rseq, ts
            leader = self.replicas[self.leader]
            targets = []
            for replica in [leader, *(r for r in self.replicas if r is not leader)]:
                if not replica.live or replica.lagging:
                    continue
                if replica.rseq < rseq - 1 and not self._try_catch_up(replica, rseq - 1):
                    continue  # still behind: it gets this entry when it catches up
                targets.append(replica)
            pending = []
            errors: list[str] = []
            for replica in targets:
                try:
                    pending.append((replica, replica.begin_apply(entry, len(targets) > 1)))
                except ReplicaLost:
                    self._fence(replica)
                except VectorForgeError as exc:
                    errors.append(f"replica {replica.index}: {exc}")
            acks = 0
            for replica, finish in pending:  # wait for every replica before deciding anything
                try:
                    finish()
                    acks += 1
                except ReplicaLost:
                    self._fence(replica)
                except VectorForgeError as exc:  # it stays behind (out of sync) until it catches up
                    errors.append(f"replica {replica.index}: {exc}")
            self._applied.notify_all()
            self._trim_log()
            needed = self.quorum.needed(len(self.replicas))
            if acks < needed:
                raise UnavailableError(
                    f"write reached {acks} of {len(self.replicas)} replicas but the quorum is {needed}; "
                    "it is not acknowledged (it may still appear once replicas recover: retry it with "
                    "the same idempotency key to learn its fate)"
                    + (f"; {'; '.join(errors)}" if errors else ""),
                    acks=acks,
                    needed=needed,
                )
            if errors:
                logger.warning("write %d acknowledged without %s", rseq, "; ".join(errors))
            if op_id is not None:
                self._op_ids[op_id] = answer
                while len(self._op_ids) > 100_000:
                    self._op_ids.popitem(last=False)
            return answer

    def _trim_log(self) -> None:
        """Drop what every kept replica has applied (it is not needed for catch-up)."""
        if self._copying:  # a full copy in progress needs everything since it started
            return
        kept = [r.rseq for r in self.replicas if not r.lost]
        applied = min(kept) if kept else 0
        if self.log is not None:
            self.log.drop_through(applied)
        elif self._memory_log and self._memory_log[0]["seq"] <= applied:
            self._memory_log = [e for e in self._memory_log if e["seq"] > applied]

    def _leader(self) -> Replica:
        """The leader, which must be live and hold every entry of the log up to the last one (it
        decides which ids a delete removes); otherwise a failover elects one that does."""
        leader = self.replicas[self.leader]
        if leader.live and not leader.lagging and leader.rseq < self.last_rseq:
            self._try_catch_up(leader, self.last_rseq)
        if not leader.live or leader.rseq < self.last_rseq:
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
        """Make a live replica that holds every entry of the log the leader, in a new epoch.

        Candidates are caught up from the log first (most advanced first); one that cannot get
        there (lagging, or failing) is never elected: it could lose acknowledged writes. Raises
        UnavailableError if no replica can."""
        with self._lock:
            live = [r for r in self.replicas if r.live]
            if not live:
                raise UnavailableError("every replica of this shard is down")
            for candidate in sorted(live, key=lambda r: (-r.rseq, r.index)):
                if candidate.rseq < self.last_rseq and not candidate.lagging:
                    self._try_catch_up(candidate, self.last_rseq)
                if candidate.rseq >= self.last_rseq:
                    break
            else:
                raise UnavailableError(
                    f"no live replica of this shard holds every write up to log entry {self.last_rseq} "
                    f"(they hold {sorted(r.rseq for r in live)}); electing one would lose acknowledged "
                    "writes. Recover a replica, or wait for one to catch up"
                )
            epoch = self.epoch + 1
            if self.folder is not None:  # durable first: memory follows the disk, never leads it
                try:
                    write_json_atomic(self.folder / STATE_FILE, {"leader": candidate.index, "epoch": epoch})
                except UncertainCommit as exc:  # either file is safe: epochs are raised on open anyway
                    logger.warning("the new leader of this shard may not be durable: %s", exc)
                except OSError as exc:
                    raise WriteNotDurable(
                        f"failover could not record the new leader ({exc}); the leader is unchanged"
                    ) from exc
            self.leader, self.epoch = candidate.index, epoch
            for replica in live:
                replica.epoch = max(replica.epoch, self.epoch)
            return self.leader

    def _entries_after(self, rseq: int) -> list[dict[str, Any]]:
        if self.log is not None:
            return list(self.log.replay(after_seq=rseq))
        return [e for e in self._memory_log if e["seq"] > rseq]

    def _catch_up(self, replica: Replica, upto: int | None = None) -> None:
        """Apply to `replica`, in order, the log entries it lacks (up to `upto`, default all)."""
        target = self.last_rseq if upto is None else upto
        if not replica.live or replica.lagging or replica.rseq >= target:
            return
        entries = self._entries_after(replica.rseq)
        if not entries or entries[0]["seq"] != replica.rseq + 1:
            raise CorruptionError(
                f"replica {replica.index} is at log position {replica.rseq} but the log starts later; "
                "it needs a full copy (lose and replace it)"
            )
        for entry in entries:
            if entry["seq"] > target:
                break
            entry["meta"]["epoch"] = max(
                entry["meta"]["epoch"], replica.epoch
            )  # replayed under the new epoch
            replica.apply(entry)

    def _try_catch_up(self, replica: Replica, upto: int) -> bool:
        """`_catch_up`, reporting instead of raising; True if the replica reached `upto`."""
        try:
            self._catch_up(replica, upto)
        except ReplicaLost:
            self._fence(replica)
        except VectorForgeError as exc:
            logger.warning("replica %d could not catch up to log entry %d: %s", replica.index, upto, exc)
        return replica.live and replica.rseq >= upto

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
                self.lost(store)

    def lost(self, store: ReplicaStore) -> None:
        """Fence the replica whose store raised ReplicaLost (its node left)."""
        for replica in self.replicas:
            if replica.collection is store:
                self._fence(replica)

    def reader(self, guarantee: ReadGuarantee, timeout: float | None = None) -> ReplicaStore:
        """A replica that satisfies `guarantee`, waiting up to `timeout` seconds (default:
        `read_timeout`) for one to catch up."""
        timeout = self.read_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                candidates = [r for r in self.replicas if r.live and self._satisfies(r, guarantee)]
                if not candidates and guarantee.level is not Consistency.EVENTUAL:
                    for replica in self.replicas:  # one that fell behind on a failed apply may catch up now
                        if replica.live and not replica.lagging and replica.rseq < self.last_rseq:
                            self._try_catch_up(replica, self.last_rseq)
                    candidates = [r for r in self.replicas if r.live and self._satisfies(r, guarantee)]
                if candidates:
                    if guarantee.level is Consistency.STRONG and self.replicas[self.leader] in candidates:
                        return self.replicas[self.leader].collection
                    self._round_robin += 1
                    return candidates[self._round_robin % len(candidates)].collection
                live = [r for r in self.replicas if r.live]
                if not live:
                    raise UnavailableError("every replica of this shard is down")
                if all(r.lagging for r in live):  # none of them moves until one is recovered
                    raise UnavailableError(
                        f"no live replica of this shard holds every write up to log entry {self.last_rseq} "
                        f"(they hold {sorted(r.rseq for r in live)}), as a {guarantee.level.value} read "
                        "needs; recover a replica, or read with consistency='eventual'"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise UnavailableError(
                        f"no replica reached the {guarantee.level.value} read's timestamp within {timeout} s"
                    )
                self._applied.wait(remaining)

    def _satisfies(self, replica: Replica, guarantee: ReadGuarantee) -> bool:
        if guarantee.level is Consistency.EVENTUAL:
            return True
        if replica.rseq >= self.last_rseq:  # it has every entry: consistent as of now
            return True
        if guarantee.level is Consistency.STRONG or guarantee.ts is None:
            return False  # strong: every entry of the log, nothing less
        return replica.ts >= guarantee.ts

    # ------------------------------------------------------------------ anti-entropy
    def repair(self, attempts: int = 3) -> dict[str, Any]:
        """Check that the replicas hold the same points, and rewrite any that differ (see
        `cluster/repair.py`). Replicas are first caught up from the log; a lagging one is skipped.

        The summaries are taken without holding writes back; if a write lands meanwhile the check
        runs again, and after `attempts` tries it holds writes for the whole check. Returns (and
        keeps in `info()["last_repair"]`) what it found and did."""
        started = time.time()
        for attempt in range(attempts + 1):
            hold = attempt == attempts
            with self._lock:
                for replica in self.replicas:
                    if replica.live and not replica.lagging:
                        self._try_catch_up(replica, self.last_rseq)
                leader = self._leader()
                members = [r for r in self.replicas if r.live and r.rseq >= self.last_rseq]
                position = self.last_rseq
            with self._lock if hold else contextlib.nullcontext():
                summaries = {r.index: summarize(_points(r.collection)) for r in members}
                with self._lock:
                    if self.last_rseq != position or any(r.rseq != position for r in members):
                        continue  # a write landed during the summaries: compare again
                    report = self._repair_from(summaries, members, leader)
            report.update(
                at=started,
                seconds=round(time.time() - started, 3),
                log_position=position,
                skipped=[r.index for r in self.replicas if r not in members],
            )
            self.last_repair = report
            return report
        raise AssertionError("unreachable: the last attempt holds writes")

    def _repair_from(
        self, summaries: dict[int, Summary], members: list[Replica], leader: Replica
    ) -> dict[str, Any]:
        """Make every member match, bucket by bucket, the summary most members hold. Lock held."""
        by_index = {r.index: r for r in members}

        def leader_vote(b: int) -> tuple[int, int] | None:
            return summaries[leader.index].buckets[b] if leader.index in summaries else None

        diverged: dict[int, list[int]] = {r.index: [] for r in members}
        source_of: dict[int, int] = {}
        for b in range(BUCKETS):
            reference = _reference([summaries[i].buckets[b] for i in summaries], leader_vote(b))
            source_of[b] = next(i for i in summaries if summaries[i].buckets[b] == reference)
            for i in summaries:
                if summaries[i].buckets[b] != reference:
                    diverged[i].append(b)
        repaired = 0
        for index, buckets in diverged.items():
            target = by_index[index]
            by_source: dict[int, set[int]] = {}
            for b in buckets:
                by_source.setdefault(source_of[b], set()).add(b)
            for source_index, group in by_source.items():
                source = by_index[source_index].collection
                rewrite, delete = diff(
                    hashes_in(_points(source), group), hashes_in(_points(target.collection), group)
                )
                for start in range(0, len(rewrite), 1000):
                    records = source.get(rewrite[start : start + 1000], with_payload=True, with_vectors=True)
                    target.collection.restore_points(  # as the source keeps them: pooled tokens stay so
                        [r.id for r in records],
                        record_vectors(target.collection.config, records),
                        [r.payload for r in records],
                    )
                if delete:
                    target.collection.delete(ids=delete)
                repaired += len(rewrite) + len(delete)
                logger.warning(
                    "anti-entropy: replica %d differed in %d buckets; %d points rewritten, %d deleted",
                    index,
                    len(group),
                    len(rewrite),
                    len(delete),
                )
        return {
            "replicas": sorted(summaries),
            "points": {i: summaries[i].points for i in sorted(summaries)},
            "diverged_buckets": {i: len(b) for i, b in diverged.items() if b},
            "repaired_points": repaired,
        }

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

    def create_payload_index(self, field: str, schema: str = "keyword") -> None:
        self._each_live(lambda c: c.create_payload_index(field, schema))

    def delete_payload_index(self, field: str) -> None:
        self._each_live(lambda c: c.delete_payload_index(field))

    def stats(self) -> dict[str, Any]:
        """The leader's collection statistics."""
        return self.read(ReadGuarantee(Consistency.STRONG, None), lambda c: c.info())

    def info(self) -> dict[str, Any]:
        return {
            "leader": self.leader,
            "epoch": self.epoch,
            "last_rseq": self.last_rseq,
            "last_repair": self.last_repair,
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


def _points(store: ReplicaStore, page_size: int = 1000) -> Iterator[Record]:
    """Every point of a replica, with payload and vector, in id order."""
    cursor: str | None = None
    while True:
        page = store.scroll(page_size, cursor, with_payload=True, with_vectors=True)
        yield from page.records
        cursor = page.next_cursor
        if cursor is None:
            return


def _reference(votes: list[tuple[int, int]], leader: tuple[int, int] | None) -> tuple[int, int]:
    """The bucket summary most replicas hold; among equally common ones, the leader's."""
    counts = Counter(votes)
    best = max(counts.values())
    leading = [v for v, n in counts.items() if n == best]
    return leader if leader in leading else leading[0]
