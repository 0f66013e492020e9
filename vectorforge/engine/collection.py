"""A collection on one node: write-ahead log + segments + payload filters.

State lives in three places, all guarded by one readers-writer lock:
- `_segments`: sealed segments (oldest first) then the growing one;
- `_where`: id -> (segment, row) of every live point (derived on open, kept in step by writes);
- `_seq`: the sequence number of the last operation applied (also the WAL position).

Write path: validate -> assign seq -> append to WAL and fsync -> apply in memory -> return. If the
process dies after the fsync, replay applies the operation on open; before it, the caller got no
acknowledgement. Replay and the live path share `_apply`, so they cannot disagree.

I/O errors (docs/guide.md, "When the disk fails"): a WAL append that fails is rolled back and raises
`WriteNotDurable`, changing nothing; a failed fsync, a failed rollback, or a manifest whose commit
cannot be confirmed puts the collection in a failed state: reads go on, writes raise
`CollectionFailed` until the collection is opened again (replay then rebuilds it from the disk). A
seal that fails keeps the segment growing (the log still holds every row) and is retried later; the
write that triggered it stays acknowledged.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
from pydantic import ValidationError

from vectorforge.embed import Embedder, get_embedder
from vectorforge.engine import planner
from vectorforge.engine.compaction import Compaction, live_share
from vectorforge.engine.cursor import bisect_after, decode_cursor, encode_cursor, id_key
from vectorforge.engine.filter_index import evaluate
from vectorforge.engine.filters import Where, parse_delete_filter, parse_filter
from vectorforge.engine.front import CollectionFront
from vectorforge.engine.locks import RWLock
from vectorforge.engine.merge import merge_topk
from vectorforge.engine.named import (
    RowIndex,
    absent_rows,
    load_named,
    multi_info,
    named_file,
    needs_training,
    new_named,
    pack_named,
    record_vectors,
    reload_named,
    require_dense,
    seal_named,
    split_vectors,
    unpack_named,
)
from vectorforge.engine.named_search import NamedSearch
from vectorforge.engine.parts import CONFIG_FILE, MANIFEST_FILE
from vectorforge.engine.segment import Segment
from vectorforge.engine.snapshots import Snapshots
from vectorforge.engine.validate import (
    check_idempotency_key,
    check_ids,
    check_k_offset,
    check_payloads,
    check_queries,
)
from vectorforge.errors import (
    CollectionFailed,
    EmbedderMismatch,
    InvalidParameter,
    ReplicaOutOfSync,
    StorageError,
    UsageError,
    WriteNotDurable,
)
from vectorforge.index import SearchParams, index_class, new_index
from vectorforge.storage import Manifest, SegmentData, WriteAheadLog, fsio, read_points, write_segment
from vectorforge.storage.fsio import UncertainCommit, write_json_atomic
from vectorforge.types import (
    CollectionConfig,
    Hit,
    PointId,
    Record,
    ScrollPage,
    UpdateResult,
    check_consistency,
)

__all__ = ["CONFIG_FILE", "KEY_WINDOW", "MANIFEST_FILE", "Collection", "WriteListener"]

WriteListener = Callable[[str, list[PointId], list[dict[str, Any] | None] | None], None]
"""Told of every applied write, inside the collection's write lock: ("upsert", ids, payloads) or
("delete", ids, None). A promotion mirrors writes with it (finetune/promote.py). It must not raise:
the write is durable and applied by then (an exception is logged, not passed to the writer)."""

logger = logging.getLogger(__name__)

KEY_WINDOW = 10_000  # idempotency keys remembered per collection (durably: log and manifest)


class Collection(CollectionFront, NamedSearch, Compaction, Snapshots):
    """Points (id, vector, payload) searchable by vector, filterable by payload.

    Obtain one from `Database.create_collection` / `get_collection`; do not construct directly.
    """

    def __init__(self, config: CollectionConfig, folder: Path | None, *, sync: bool = True) -> None:
        self.config = config
        self.folder = folder
        self._lock = RWLock()
        self._maintenance = threading.Lock()  # one compaction / snapshot at a time
        self._closed = False
        self._closing = False
        self._compactor: threading.Thread | None = None
        self._where: dict[PointId, tuple[Segment, int]] = {}
        # Replication metadata of the last applied operation (see cluster/replicaset.py); empty
        # for a collection that is not a replica.
        self.last_meta: dict[str, Any] = {}
        self._segments: list[Segment] = []
        self._seq = 0
        self._scroll_cache: tuple[int, list[PointId]] | None = None
        self._embedder: Embedder | None = None
        self._manifest = Manifest()
        self._wal: WriteAheadLog | None = None
        self._failed: str | None = None  # why writes are refused until the collection is reopened
        self._seal_error: str | None = None  # the last seal that failed (it is retried)
        self._seal_retry_at = 0.0
        # Idempotency key -> the result its write returned; the newest KEY_WINDOW, oldest first.
        self._keys: OrderedDict[str, int] = OrderedDict()
        self._listeners: list[WriteListener] = []
        if folder is not None:
            self._open_from_disk(folder, sync)
        else:
            self._segments.append(self._new_segment("mem-000001"))

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dim(self) -> int | None:
        """The dense vector's length (None: the collection has no dense vector)."""
        return self.config.dense_dim

    def __repr__(self) -> str:
        metric = self.config.dense_info()["metric"]
        return f"Collection({self.name!r}, dim={self.dim}, metric={metric!r}, points={self.count()})"

    # ------------------------------------------------------------------ opening
    def _open_from_disk(self, folder: Path, sync: bool) -> None:
        self._manifest = Manifest.load(folder / MANIFEST_FILE)
        seg_root = folder / "segments"
        fsio.make_dirs(seg_root)
        listed = set(self._manifest.segments)
        for leftover in seg_root.iterdir():
            if leftover.name not in listed:  # crash between writing a segment and the manifest
                fsio.remove_tree(leftover)
        for name in self._manifest.segments:
            self._segments.append(self._load_segment(seg_root / name))
        for seg in self._segments:
            self._index_rows(seg)
        self._seq = self._manifest.checkpoint_seq
        self.last_meta = dict(self._manifest.meta)
        self._keys = OrderedDict((str(k), int(v)) for k, v in self._manifest.keys)
        self._segments.append(self._new_segment(self._manifest.new_segment_name()))
        self._wal = WriteAheadLog(folder / "wal", sync=sync)
        for op in self._wal.replay(after_seq=self._manifest.checkpoint_seq):
            self._apply(op)
        self._wal.open_for_append(self._seq + 1)
        if any(needs_training(seg.named) for seg in self._segments if seg.sealed):
            self._compact_in_background()  # sealed before its codec was trained (a crash, a restore)

    def _load_segment(self, path: Path) -> Segment:
        data = read_points(path)
        cls = index_class(self.config.index)
        index = cls.load(path, self.config.dim, self.config.metric, self.config.index_params)
        named = load_named(self.config, path, len(data.ids))
        seg = Segment(
            path.name,
            index,
            data.ids,
            data.payloads,
            set(data.tombstones),
            data.max_seq,
            sealed=True,
            named=named,
            absent=data.absent,
        )
        for row in data.dead_rows:
            seg.kill(row)
        return self._indexed(seg)

    def _indexed(self, seg: Segment) -> Segment:
        """`seg` with the collection's declared payload indexes built (kept up to date by appends)."""
        for key in self.config.payload_indexes:
            seg.field(key)
        return seg

    def _index_rows(self, seg: Segment) -> None:
        """Fold a sealed segment into `_where`: its tombstones first, then its live rows (newer wins)."""
        for pid in seg.tombstones:
            old = self._where.pop(pid, None)
            if old is not None:
                old[0].kill(old[1])
        live = seg.live
        for row, pid in enumerate(seg.ids):
            if not live[row]:
                continue
            old = self._where.get(pid)
            if old is not None:
                old[0].kill(old[1])
            self._where[pid] = (seg, row)

    def _new_segment(self, name: str) -> Segment:
        return self._indexed(
            Segment(
                name,
                new_index(self.config.index, self.config.dim, self.config.metric, self.config.index_params),
                named=new_named(self.config),
            )
        )

    @property
    def _growing(self) -> Segment:
        return self._segments[-1]

    # ------------------------------------------------------------------ writes
    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Insert or replace points; once durable, an `UpdateResult` (`operation_id`: the sequence
        number of the write).

        Args:
            ids: one id per point (int or str, unique within the call).
            vectors: (n, dim) array or list of lists; or, by vector name, an array or a list with
                one vector, `SparseVector` or token matrix per id (None: a point lacks it).
            payloads: optional list of JSON objects (or None), one per id.
            idempotency_key: a key unique to this write (a UUID); a retry with the same key applies
                nothing and returns the first result. The last 10,000 keys are kept durably.
        """
        checked = check_ids(ids)
        seq = self._upsert(checked, vectors, payloads, check_idempotency_key(idempotency_key))
        return UpdateResult(seq, len(checked))

    def restore_points(
        self, ids: Sequence[PointId], vectors: Any, payloads: Sequence[dict[str, Any] | None] | None = None
    ) -> UpdateResult:
        """Write points exactly as another copy of them keeps them (anti-entropy repairs a replica
        from its peers): named vectors go to the indexes as they are, never transformed again
        (PLAID's pooled tokens are not pooled a second time)."""
        checked = check_ids(ids)
        return UpdateResult(self._upsert(checked, vectors, payloads, None, kept=True), len(checked))

    def _upsert(
        self,
        checked_ids: list[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None,
        key: str | None,
        kept: bool = False,
    ) -> int:
        vecs, named = split_vectors(self.config, vectors, len(checked_ids))
        blobs = check_payloads(payloads, len(checked_ids))
        # The array itself: the log packs it without a copy, and an in-memory database never copies it.
        op: dict[str, Any] = {"op": "upsert", "ids": checked_ids, "vectors": vecs, "payloads": blobs}
        if named:
            op["named"] = pack_named(self.config, named)
            if kept:
                op["kept"] = True
        with self._lock.write():
            self._check_writable()
            if key is not None:
                if key in self._keys:
                    return self._keys[key]
                op["key"] = key
            return self._write_locked(op)

    def delete(
        self,
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Delete points by id and/or by filter; `count`: how many existed and were deleted.

        A filter that matches every point is refused (`InvalidParameter`): to empty a collection,
        delete it and create it again. `idempotency_key` as in `upsert`: a retry returns the first
        count, and deletes nothing that was written since."""
        key = check_idempotency_key(idempotency_key)
        if ids is None and filter is None:
            raise InvalidParameter(
                "delete needs ids=[...] or filter={...}; to drop everything use delete_collection"
            )
        checked = check_ids(ids, unique=False) if ids is not None else []
        where = parse_delete_filter(filter) if filter is not None else None
        with self._lock.write():
            self._check_writable()
            if key is not None and key in self._keys:  # the latest id covers the first write
                return UpdateResult(self._seq, self._keys[key])
            targets = [pid for pid in dict.fromkeys(checked) if pid in self._where]
            if where is not None:
                seen = set(targets)
                for pid in self._matching_ids(where):
                    if pid not in seen:
                        targets.append(pid)
            if targets or key is not None:  # a keyed delete of nothing is logged too: its key must stay
                op: dict[str, Any] = {"op": "delete", "ids": targets}
                if key is not None:
                    op["key"], op["result"] = key, len(targets)
                self._write_locked(op)
            return UpdateResult(self._seq, len(targets))

    def _rewrite_payloads(
        self,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ids: list[PointId] | None,
        filter: dict[str, Any] | None,
        key: str | None,
    ) -> UpdateResult:
        """A payload update (`CollectionFront.set_payload` and its kin): under the write lock, each
        chosen point is written again with its own vectors and `change(payload)`, one logged upsert,
        so the log, seals, replicas and snapshots need nothing new. Returns how many points."""
        where = parse_filter(filter) if filter is not None else None
        with self._lock.write():
            self._check_writable()
            if key is not None and key in self._keys:  # the latest id covers the first write
                return UpdateResult(self._seq, self._keys[key])
            targets = [pid for pid in dict.fromkeys(ids or []) if pid in self._where]
            if filter is not None:
                seen = set(targets)
                matching = list(self._where) if where is None else self._matching_ids(where)
                targets += [pid for pid in matching if pid not in seen]
            records = [self._record(pid, self._where[pid], True, True) for pid in targets]
            blobs = check_payloads([change(r.payload) for r in records], len(records))
            if not records:  # a keyed update of nothing is logged too: its key must stay
                if key is not None:
                    self._write_locked({"op": "delete", "ids": [], "key": key, "result": 0})
                return UpdateResult(self._seq, 0)
            vecs, named = split_vectors(self.config, record_vectors(self.config, records), len(records))
            op: dict[str, Any] = {"op": "upsert", "ids": targets, "vectors": vecs, "payloads": blobs}
            if named:
                # the vectors as the indexes keep them (pooled, say): logged as such, so that neither
                # this write nor its replay transforms them a second time
                op["named"], op["kept"] = pack_named(self.config, named), True
            if key is not None:  # a retry gets the count back, as a keyed delete does
                op["key"], op["result"] = key, len(targets)
            return UpdateResult(self._write_locked(op), len(targets))

    def _recalled(self, key: str) -> int | None:
        return self.recall(key)

    def recall(self, key: str) -> int | None:
        """The result of the write made with idempotency key `key`, if it is still remembered."""
        with self._lock.read():
            return self._keys.get(key)

    def remembered_keys(self) -> list[tuple[str, int]]:
        """The remembered idempotency keys and their results, oldest first."""
        with self._lock.read():
            return list(self._keys.items())

    def apply_replicated(self, entry: dict[str, Any]) -> bool:
        """Apply one entry of a replication log (already validated and encoded by the replica set).

        In order only: an entry at or below the last applied replication sequence number is skipped
        (returns False), so a retried or replayed entry never applies twice; one that does not follow
        the last applied one raises `ReplicaOutOfSync` and changes nothing (the replica set catches
        this replica up from its log first).
        """
        with self._lock.write():
            self._check_writable()
            rseq, last = int(entry["meta"]["rseq"]), int(self.last_meta.get("rseq", 0))
            if rseq <= last:
                return False
            if rseq != last + 1:
                raise ReplicaOutOfSync(
                    f"replica {self.name!r} has applied log entry {last} and was sent {rseq}; it must "
                    "catch up from the log first",
                    applied=last,
                    got=rseq,
                )
            op: dict[str, Any] = {
                k: entry[k] for k in ("op", "ids", "vectors", "payloads", "named", "kept") if k in entry
            }
            op["meta"] = dict(entry["meta"])
            self._write_locked(op)
            return True

    def _write_locked(self, op: dict[str, Any]) -> int:
        op["seq"] = self._seq + 1
        if "key" in op:
            op.setdefault("result", op["seq"])  # what a retry with the key gets back
        if self._wal is not None:
            vectors = op.get("vectors")
            # Raises WriteNotDurable (rolled back) or CollectionFailed: either way nothing is applied.
            if isinstance(vectors, np.ndarray):
                self._wal.append({**op, "vectors": vectors.data.cast("B")})  # durable from here on
            else:
                self._wal.append(op)  # durable from here on
        self._apply(op)
        if self._listeners:
            blobs = op.get("payloads")
            payloads = None if blobs is None else [None if b is None else msgpack.unpackb(b) for b in blobs]
            for listener in self._listeners:
                try:
                    listener(op["op"], op["ids"], payloads)
                except Exception:  # the write is applied: a listener's failure is its own
                    logger.exception("a write listener of collection %r failed", self.name)
        if self._growing.n >= self.config.max_segment_points and time.monotonic() >= self._seal_retry_at:
            # The write is durable and applied: a seal that fails must not make it look failed.
            try:
                self._seal_growing()
                self._compact_in_background()
            except Exception as exc:  # any failure: the write is applied, and must not look failed
                logger.error("sealing a segment of collection %r failed (retried later): %s", self.name, exc)
                self._seal_error = self._seal_error or str(exc)
                self._seal_retry_at = time.monotonic() + 1.0
        elif (
            live_share(self.config) > 0.7
        ):  # a PLAID segment changed by more than ~5% is rebuilt, codec and all
            self._compact_in_background()
        return int(op["seq"])

    def add_write_listener(self, listener: WriteListener) -> None:
        """Tell `listener` of every write from now on (see `WriteListener`)."""
        with self._lock.write():
            self._listeners.append(listener)

    def remove_write_listener(self, listener: WriteListener) -> None:
        with self._lock.write():
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _apply(self, op: dict[str, Any]) -> None:
        """Apply one logged operation to memory. Used by writes and by replay, identically."""
        seg = self._growing
        ids: list[PointId] = op["ids"]
        if op["op"] == "upsert":
            raw = op["vectors"]
            vecs = raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, dtype=np.float32)
            vecs = vecs.reshape(len(ids), self.config.dim)
            absent = absent_rows(vecs)
            if absent.any():  # points without the primary dense vector: zero rows stand in the index
                vecs = vecs.copy()
                vecs[absent] = 0.0
            # "sparse": the log records of sparse vectors before multi vectors came
            named = unpack_named(self.config, op.get("named") or op.get("sparse"))
            start = seg.append(ids, vecs, op["payloads"], named, absent, kept=bool(op.get("kept")))
            where = self._where
            for i, pid in enumerate(ids):
                old = where.get(pid)
                if old is not None:
                    old[0].kill(old[1])
                where[pid] = (seg, start + i)
        elif op["op"] == "delete":
            for pid in ids:
                old = self._where.pop(pid, None)
                if old is not None:
                    old[0].kill(old[1])
                seg.tombstones.add(pid)
        else:
            raise ValueError(f"unknown operation {op['op']!r} in the log")
        seg.max_seq = op["seq"]
        self._seq = op["seq"]
        if "meta" in op:  # replicated: the replica set's operation id is the key
            self.last_meta = op["meta"]
            if op["meta"].get("op_id") is not None:  # a caller's key (entries before 0.2 held random ids)
                self._remember(str(op["meta"]["op_id"]), int(op["meta"].get("result", op["meta"]["ts"])))
        elif "key" in op:
            self._remember(op["key"], int(op["result"]))
        self._scroll_cache = None

    def _remember(self, key: str, result: int) -> None:
        keys = self._keys
        keys[key] = result
        keys.move_to_end(key)
        if len(keys) > KEY_WINDOW:
            keys.popitem(last=False)

    def _seal_growing(self) -> None:
        """Write the growing segment to disk, commit it in the manifest, start a new one. Write lock held.

        Until the manifest names the segment nothing has changed: on an error before that the
        segment stays growing (the log still holds its rows), `WriteNotDurable` is raised and the
        seal is retried after a pause. A commit that cannot be confirmed, or a log that cannot
        rotate, fails the collection (`CollectionFailed`)."""
        seg = self._growing
        if seg.n == 0 and not seg.tombstones:
            return
        seg.index.seal()  # an IVF trains here; its segment still takes rows if what follows fails
        seal_named(seg.named, train=False)  # a PLAID codec is trained by compaction, off the lock
        if self.folder is None or self._wal is None:
            seg.sealed = True
            self._segments.append(self._new_segment(f"mem-{len(self._segments) + 1:06d}"))
            return
        path = self.folder / "segments" / seg.name
        data = SegmentData(
            list(seg.ids), list(seg.payloads), seg.dead_rows(), list(seg.tombstones), self._seq, seg.absent
        )
        manifest = Manifest(
            segments=[*self._manifest.segments, seg.name],
            checkpoint_seq=self._seq,
            meta=dict(self.last_meta),
            next_segment=self._manifest.next_segment,
            keys=[[k, v] for k, v in self._keys.items()],
        )
        name = manifest.new_segment_name()
        try:
            write_segment(path, data, functools.partial(self._save_indexes, seg.index, seg.named))
            manifest.save(self.folder / MANIFEST_FILE)
        except UncertainCommit as exc:  # the disk may hold the old manifest or the new one: keep both
            raise self._fail(f"the manifest naming segment {seg.name} may not be durable: {exc}") from exc
        except OSError as exc:
            fsio.remove_tree(path)
            self._seal_error = f"{exc}"
            self._seal_retry_at = time.monotonic() + 1.0
            raise WriteNotDurable(
                f"collection {self.name!r}: sealing segment {seg.name} failed ({exc}); nothing changed, "
                "its rows stay in the log and the seal is tried again",
                collection=self.name,
            ) from exc
        # Committed: from here on the segment is sealed, on disk and in memory.
        self._manifest = manifest
        seg.sealed = True
        self._seal_error = None
        self._segments.append(self._new_segment(name))
        try:
            self._wal.rotate(self._seq + 1)
        except CollectionFailed as exc:
            raise self._fail(str(exc)) from exc
        self._wal.drop_through(self._seq)
        if seg.index.vectors_on_disk:  # full vectors on disk (memory-mapped), not in RAM
            try:
                seg.index = index_class(self.config.index).load(
                    path, self.config.dim, self.config.metric, self.config.index_params
                )
            except (OSError, RuntimeError) as exc:  # the copy in memory serves until the next open
                logger.warning("could not map segment %s of %r from disk: %s", seg.name, self.name, exc)
        self._map_named(seg, path)

    def _map_named(self, seg: Segment, path: Path) -> None:
        """Read back from `path` the named vectors that keep their full tokens on disk (a PLAID
        index: codes in RAM, tokens memory-mapped), in place of the copy built in memory."""
        for vector, rows in list(seg.named.items()):
            if getattr(rows, "vectors_on_disk", False):
                try:
                    seg.named[vector] = reload_named(self.config, path, vector, seg.n)
                except (OSError, StorageError) as exc:  # the copy in memory serves until the next open
                    logger.warning("could not map %s of segment %s from disk: %s", vector, seg.name, exc)

    def _fail(self, reason: str) -> CollectionFailed:
        """Refuse writes from now on (reads go on); opening the collection again recovers. Returns
        the error to raise."""
        if self._failed is None:
            logger.error("collection %r refuses writes until it is reopened: %s", self.name, reason)
            self._failed = reason
        return CollectionFailed(
            f"collection {self.name!r}: {reason}; it refuses writes until it is opened again",
            collection=self.name,
        )

    def flush(self) -> None:
        """Seal the growing segment so that opening the collection replays no log."""
        with self._lock.write():
            self._check_writable()
            self._seal_growing()
            self._compact_in_background()

    # ------------------------------------------------------------------ text
    def embedder(self) -> Embedder:
        """The collection's embedder, checked against the model recorded at creation."""
        if self._embedder is None:
            self._embedder = checked_embedder(self.config)
        return self._embedder

    # ------------------------------------------------------------------ reads
    def count(self, filter: dict[str, Any] | None = None, *, consistency: str | None = None) -> int:
        """Number of live points, or of those matching `filter`."""
        check_consistency(consistency)  # one copy: every level reads the same, latest state
        where = parse_filter(filter)
        with self._lock.read():
            self._check_open()
            if where is None:
                return len(self._where)
            return sum(n for _, _, n in self._masks(where))

    def get(
        self,
        ids: Sequence[PointId],
        *,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Record]:
        """The stored points among `ids`, in the order asked; ids that do not exist are left out."""
        check_consistency(consistency)
        checked = check_ids(ids, unique=False)
        with self._lock.read():
            self._check_open()
            out = []
            for pid in checked:
                loc = self._where.get(pid)
                if loc is not None:
                    out.append(self._record(pid, loc, with_payload, with_vectors))
            return out

    def _record(
        self, pid: PointId, loc: tuple[Segment, int], with_payload: bool, with_vectors: bool
    ) -> Record:
        seg, row = loc
        return Record(
            pid,
            seg.payload(row) if with_payload else None,
            seg.vector(row) if with_vectors else None,
            (seg.named_vectors(row) or None) if with_vectors else None,
        )

    def scroll(
        self,
        limit: int = 1000,
        cursor: str | None = None,
        *,
        filter: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> ScrollPage:
        """Points in id order (ints, then strs), `limit` at a time; pass `next_cursor` to continue."""
        check_consistency(consistency)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidParameter(f"limit must be an integer from 1 to 10000, not {limit!r}")
        after = decode_cursor(cursor)
        where = parse_filter(filter)
        with self._lock.read():
            self._check_open()
            order = self._sorted_ids()
            start = 0 if after is None else bisect_after(order, after)
            allowed: set[PointId] | None = None
            if where is not None:
                allowed = set(self._matching_ids(where))
            records: list[Record] = []
            i = start
            while i < len(order) and len(records) < limit:
                pid = order[i]
                i += 1
                if allowed is None or pid in allowed:
                    records.append(self._record(pid, self._where[pid], with_payload, with_vectors))
            more = i < len(order) and (allowed is None or any(p in allowed for p in order[i:]))
            next_cursor = encode_cursor(records[-1].id) if records and more else None
            return ScrollPage(records, next_cursor)

    def _sorted_ids(self) -> list[PointId]:
        if self._scroll_cache is None or self._scroll_cache[0] != self._seq:
            ids = sorted(self._where, key=id_key)
            self._scroll_cache = (self._seq, ids)
        return self._scroll_cache[1]

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
    ) -> list[list[Hit]]:
        """`search` for each row of `vectors`; one list of hits per query."""
        check_consistency(consistency)
        require_dense(self.config)
        k, offset = check_k_offset(k, offset)
        queries = check_queries(vectors, self.config.dim, self.config.metric, k + offset)
        where = parse_filter(filter)
        search_params = SearchParams.parse(params)
        fetch = k + offset
        with self._lock.read():
            self._check_open()
            found = []
            for seg, all_mask, all_allowed in self._masks(where):
                mask, n_allowed = seg.dense_mask(where, all_mask, all_allowed)
                if n_allowed == 0:
                    continue
                kk = min(fetch, n_allowed)
                exact = search_params.exact or planner.use_exact(
                    seg.index.kind, n_allowed, seg.n, mask is not None
                )
                while True:  # one row more shows whether rows left out tie with the last: ties go by id
                    want = min(kk + 1, n_allowed)
                    if exact:
                        scores, rows = seg.index.exact_search(queries, want, mask)
                    else:
                        scores, rows = seg.index.ann_search(
                            queries, want, mask, n_allowed / seg.n, search_params
                        )
                    # Python lists: cheaper than numpy for the few values each query returns.
                    score_lists, row_lists = scores.tolist(), rows.tolist()
                    if want == kk or not any(
                        r[kk] >= 0 and s[kk] == s[kk - 1] for s, r in zip(score_lists, row_lists, strict=True)
                    ):
                        break
                    kk = min(2 * kk, n_allowed)
                found.append((seg, score_lists, row_lists))
            results = []
            for qi in range(queries.shape[0]):
                sources = [seg.hits(scores[qi], rows[qi]) for seg, scores, rows in found]
                hits = merge_topk(sources, k, offset, disjoint=True)
                if with_payload or with_vectors:
                    for hit in hits:
                        seg, row = self._where[hit.id]
                        if with_payload:
                            hit.payload = seg.payload(row)
                        if with_vectors:
                            hit.vector = seg.vector(row)
                results.append(hits)
            return results

    def _masks(self, where: Where | None) -> Iterable[tuple[Segment, np.ndarray | None, int]]:
        """Each segment with live points, the mask of rows to consider (None: every row) and its count."""
        for seg in self._segments:
            if seg.n_live == 0:
                continue
            if where is None:
                yield seg, (None if seg.n_live == seg.n else seg.live), seg.n_live
            else:
                yield seg, *seg.filter_mask(where, functools.partial(self._filter_rows, seg, where))

    def _filter_rows(self, seg: Segment, where: Where) -> np.ndarray:
        rows_in = functools.partial(self._rows_in, seg)
        mask: np.ndarray = evaluate(where, seg.n, seg.payload_index, rows_in) & seg.live
        return mask

    def _rows_in(self, seg: Segment, ids: Iterable[PointId]) -> np.ndarray:
        rows = [loc[1] for pid in ids if (loc := self._where.get(pid)) is not None and loc[0] is seg]
        return np.asarray(rows, dtype=np.int64)

    def _matching_ids(self, where: Where) -> list[PointId]:
        out: list[PointId] = []
        for seg, mask, _ in self._masks(where):
            assert mask is not None
            out.extend(seg.ids[r] for r in np.flatnonzero(mask))
        return out

    # ------------------------------------------------------------------ maintenance
    def create_payload_index(self, field: str, schema: str = "keyword") -> None:
        """Build `field`'s index on every segment now; new segments build it as they start."""
        self._set_payload_indexes({**self.config.payload_indexes, check_index_field(field): schema})
        with self._lock.read():
            for seg in self._segments:
                seg.field(field)

    def delete_payload_index(self, field: str) -> None:
        indexes = dict(self.config.payload_indexes)
        if indexes.pop(check_index_field(field), None) is None:
            raise InvalidParameter(
                f"collection {self.name!r} has no payload index of {field!r} (it has: "
                f"{', '.join(map(repr, self.config.payload_indexes)) or 'none'})"
            )
        self._set_payload_indexes(indexes)

    def _set_payload_indexes(self, indexes: dict[str, Any]) -> None:
        """Record the declared payload indexes in the config, on disk before in memory."""
        config = checked_payload_indexes(self.config, indexes)
        with self._lock.write():
            self._check_writable()
            if self.folder is not None:
                write_json_atomic(self.folder / CONFIG_FILE, json.loads(config.model_dump_json()))
            self.config = config

    def info(self) -> dict[str, Any]:
        """Counts and sizes, for `vectorforge info` and /metrics."""
        with self._lock.read():
            self._check_open()
            wal_bytes = sum(p.stat().st_size for p in self._wal.files()) if self._wal else 0
            return {
                "name": self.name,
                **self.config.dense_info(),
                "vectors": self.config.vectors_spec(),
                "payload_indexes": dict(self.config.payload_indexes),
                "embedder": self.config.embedder.model_dump() if self.config.embedder else None,
                "max_segment_points": self.config.max_segment_points,
                "points": len(self._where),
                "segments": [
                    {
                        "name": s.name,
                        "rows": s.n,
                        "live": s.n_live,
                        "sealed": s.sealed,
                        **multi_info(s.named, self.config),
                    }
                    for s in self._segments
                ],
                "last_seq": self._seq,
                "wal_bytes": wal_bytes,
                "failed": self._writable_reason(),
                "seal_error": self._seal_error,
                "mirrors": [str(listener) for listener in self._listeners],  # e.g. a promotion's copy
            }

    def reshard(
        self, shards: int, *, n_probe: int | None = None, batch_size: int = 100, progress: bool = False
    ) -> None:
        """Only sharded collections can be resharded (see `ShardedCollection.reshard`)."""
        raise UsageError(
            f"collection {self.name!r} was created with one shard and one replica, as a plain collection, "
            "which cannot be resharded; create it with shards=2 or more (or copy its points into a "
            "new sharded collection) to change its shard count later"
        )

    def repair(self) -> dict[str, Any]:
        """Anti-entropy compares replicas; a collection with one copy has nothing to compare."""
        self._check_open()
        return {"shards": [], "repaired_points": 0, "diverged_replicas": 0}

    def close(self) -> None:
        """Seal what is in memory and release files. Further calls raise UsageError.

        A seal that fails here is logged, not raised: the log holds every write, and the next open
        replays it. A failed collection is not sealed at all."""
        self._closing = True
        if self._compactor is not None:
            self._compactor.join()
        with self._lock.write():
            if self._closed:
                return
            if self.folder is not None and self._writable_reason() is None:
                try:
                    self._seal_growing()
                except (StorageError, OSError) as exc:
                    logger.warning(
                        "collection %r closed without sealing (the log has it all): %s", self.name, exc
                    )
            if self._wal is not None:
                self._wal.close()
            self._closed = True
            # Let go of the segments: their memory maps (PLAID's and MUVERA's tokens, an IVF's
            # vectors) would otherwise hold the files, and a deleted collection's disk space, for
            # as long as anyone holds this object. Every read checks `_closed` first.
            self._segments = []
            self._where = {}
            self._scroll_cache = None

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(f"collection {self.name!r} is closed; get it again from an open database")

    def _writable_reason(self) -> str | None:
        if self._failed is not None:
            return self._failed
        if self._wal is not None and self._wal.broken is not None:
            return self._wal.broken
        return None

    def _check_writable(self) -> None:
        """Open, and not failed by an I/O error (then: CollectionFailed until it is reopened)."""
        self._check_open()
        reason = self._writable_reason()
        if reason is not None:
            raise CollectionFailed(
                f"collection {self.name!r} refuses writes since an I/O error ({reason}); reads still work. "
                "Fix the disk, then close the database and open it again: the log replays every "
                "acknowledged write",
                collection=self.name,
            )

    def _save_indexes(self, index: Any, named: dict[str, RowIndex], folder: Path) -> None:
        index.save(folder)
        for vector, rows in named.items():
            rows.save(folder / named_file(self.config, vector))

    def save_config(self) -> None:
        if self.folder is not None:
            write_json_atomic(self.folder / CONFIG_FILE, json.loads(self.config.model_dump_json()))


def checked_embedder(config: CollectionConfig) -> Embedder:
    """The embedder `config` names, refused if it no longer makes the vectors the collection holds."""
    if config.embedder is None:
        raise InvalidParameter(
            f"collection {config.name!r} has no embedder; create it with embedder='minilm' to use add/query"
        )
    emb = get_embedder(config.embedder.name)
    if emb.info != config.embedder:
        raise EmbedderMismatch(
            f"collection {config.name!r} was embedded with {config.embedder.model} "
            f"({config.embedder.version}) but embedder {emb.info.name!r} is now "
            f"{emb.info.model} ({emb.info.version}); re-embed the collection or register the "
            "original model",
            expected=config.embedder.model_dump(),
            got=emb.info.model_dump(),
        )
    return emb


def check_index_field(field: object) -> str:
    """A payload key to index: a non-empty string, the form filters name it in ("meta.lang")."""
    if not isinstance(field, str) or not field or len(field) > 256:
        raise InvalidParameter(f"a payload index needs a payload key (1-256 characters), not {field!r}")
    return field


def checked_payload_indexes(config: CollectionConfig, indexes: dict[str, Any]) -> CollectionConfig:
    """`config` with these payload indexes (InvalidParameter naming a schema that is unknown)."""
    try:
        return CollectionConfig.model_validate({**config.model_dump(), "payload_indexes": indexes})
    except ValidationError:
        known = "keyword, integer, float, bool, datetime, uuid, text"
        bad = next(v for v in indexes.values() if v not in known.split(", "))
        raise InvalidParameter(f"payload index schema {bad!r} is unknown; use one of {known}") from None
