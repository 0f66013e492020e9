"""A collection split over shards: routing writes, fanning out reads, merging top-k.

Each shard is a `ReplicaSet` of engine collections (each with its own log, segments, indexes).
The rules that keep a sharded collection equal to one unsharded collection holding the same points:

- every shard is asked for its own top `k + offset` (never k / N), with scores that are exact or
  re-scored at full precision, so they compare across shards;
- the coordinator merges with `merge_topk`, the function that merges segments inside a shard: best
  score first, ties by id, each id once (a point can sit on two shards for a moment while it moves),
  and only then skips `offset`;
- a filter is applied inside every shard, so a shard with fewer than k matches returns what it has.

Writes are atomic per shard; a batch spread over shards is acknowledged once every shard has it,
and writers and `strong` readers take turns, so a strong read (and a snapshot) sees every shard at
one instant. The shards live in a `ShardLayout`; `reshard` fills a second one while the first
answers reads, then switches (see `cluster/layout.py` and docs/distributed.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import heapq
import io
import json
import logging
import os
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from vectorforge.cluster.backend import ShardBackend
from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.layout import ROUTER_FILE, ShardLayout, _part, remove_stale_layouts
from vectorforge.cluster.replicaset import ReadGuarantee, ReplicaSet, ReplicaStore
from vectorforge.cluster.routing import Router, SemanticRouter
from vectorforge.engine.collection import (
    CONFIG_FILE,
    KEY_WINDOW,
    check_index_field,
    checked_payload_indexes,
)
from vectorforge.engine.cursor import encode_cursor
from vectorforge.engine.filters import parse_delete_filter, parse_filter
from vectorforge.engine.front import CollectionFront
from vectorforge.engine.locks import RWLock, StripedLock, TurnLock
from vectorforge.engine.merge import merge_topk
from vectorforge.engine.named import (
    check_dense,
    check_sparse,
    check_tokens,
    record_vectors,
    require_dense,
    split_vectors,
)
from vectorforge.engine.validate import (
    check_idempotency_key,
    check_ids,
    check_k_offset,
    check_n_probe,
    check_payloads,
    check_queries,
)
from vectorforge.errors import (
    InvalidParameter,
    ReplicaLost,
    UnavailableError,
    UsageError,
    VectorForgeError,
    WriteNotDurable,
)
from vectorforge.index.sparse import CorpusStats
from vectorforge.storage import fsio
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import (
    Consistency,
    Hit,
    PointId,
    Record,
    ScrollPage,
    Sharding,
    UpdateResult,
    check_consistency,
)

__all__ = ["ShardedCollection", "session_token"]

# A client's own session token, when it is not this object: the server sets it for each request
# from the token the HTTP client carries, so that `session` reads wait for that client's writes only.
_SESSION_TOKEN: contextvars.ContextVar[int | None] = contextvars.ContextVar("vf_session_token", default=None)


@contextlib.contextmanager
def session_token(ts: int | None) -> Iterator[None]:
    """`session` reads inside this block wait for writes up to `ts` (a client's last write), not
    for this collection object's own last write."""
    reset = _SESSION_TOKEN.set(ts)
    try:
        yield
    finally:
        _SESSION_TOKEN.reset(reset)


logger = logging.getLogger(__name__)
KEYS_FILE = "keys.json"  # idempotency keys carried over from earlier layouts
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="vf-shard")
T = TypeVar("T")
X = TypeVar("X")
_STRONG = ReadGuarantee(Consistency.STRONG, None)
_WRITERS, _READERS = 0, 1  # the two groups of the turn lock


class ShardedCollection(CollectionFront):
    """The `Collection` API over several shards. Obtain one with `create_collection(..., shards=N)`."""

    def __init__(
        self,
        layout: ShardLayout,
        folder: Path | None,
        clock: HybridLogicalClock,
        backend: ShardBackend,
        repair_interval: float | None = None,
    ) -> None:
        self.config = layout.config
        self.folder = folder
        self.clock = clock
        self.backend = backend  # opens the shards of a new layout (resharding)
        self._layout = layout
        self._next: ShardLayout | None = None  # while resharding: the layout being filled
        # Writes share `_writes`; a reshard takes it alone to copy a batch and to switch layouts.
        # Reads share `_reads`; the switch takes it alone, so no read runs on a layout being closed.
        self._writes = RWLock()
        self._reads = RWLock()
        self._resharding = threading.Lock()
        # Writers and strong readers take turns: a strong read sees no batch half-written over shards.
        self._turns = TurnLock()
        # Writers of one id wait for each other: a move between shards (key, semantic sharding) is
        # a write and then deletes, and two of them interleaved would lose the id.
        self._ids = StripedLock()
        self._next_failed: Exception | None = None  # a write the next layout refused
        self._closed = False
        # The session token: the timestamp of this object's last write ("session" reads wait for it).
        self.session_ts = 0
        # Idempotency keys of writes made in earlier layouts (a reshard carries them over), so a
        # retry after a reshard still applies once; the current layout's shards remember the rest.
        self._earlier_keys: dict[str, int] = {}
        if folder is not None and (folder / KEYS_FILE).exists():
            self._earlier_keys = {str(k): int(v) for k, v in json.loads((folder / KEYS_FILE).read_text())}
        self._stopping = threading.Event()
        self._repairer: threading.Thread | None = None
        if repair_interval is not None and self.config.replicas > 1:
            self._repairer = threading.Thread(
                target=self._repair_every, args=(repair_interval,), name=f"vf-repair-{self.name}", daemon=True
            )
            self._repairer.start()

    def _repair_every(self, seconds: float) -> None:
        """Anti-entropy on a schedule; a failed run is logged and the next one comes on time."""
        while not self._stopping.wait(seconds):
            try:
                report = self.repair()
            except Exception:
                if self._closed:
                    return
                logger.exception("scheduled anti-entropy of %r failed", self.name)
            else:
                if report["repaired_points"]:
                    logger.warning(
                        "anti-entropy of %r repaired %d points", self.name, report["repaired_points"]
                    )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dim(self) -> int | None:
        """The dense vector's length (None: the collection has no dense vector)."""
        return self.config.dense_dim

    @property
    def shards(self) -> list[ReplicaSet]:
        """The replica sets of the current layout, one per shard."""
        return self._layout.shards

    @property
    def router(self) -> Router:
        return self._layout.router

    def __repr__(self) -> str:
        mode = self.config.sharding.value
        return f"ShardedCollection({self.name!r}, shards={len(self.shards)}, sharding={mode!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(f"collection {self.name!r} is closed; get it again from an open database")

    # ------------------------------------------------------------------ writes
    def upsert(
        self,
        ids: Sequence[PointId],
        vectors: Any,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Insert or replace points on their shards; returns once every shard has its part durably
        (`operation_id`: the write's hybrid-clock timestamp).

        With `idempotency_key`, a retry writes only the shards' parts that did not land and returns
        the first result. While the collection is resharded, the write goes to the current layout
        first; if it then fails on the next one, the reshard is abandoned (the write stays)."""
        self._check_open()
        key = check_idempotency_key(idempotency_key)
        checked = check_ids(ids)
        if key is not None and key in self._earlier_keys:  # made before a reshard
            return UpdateResult(self._earlier_keys[key], len(checked))
        vecs, named = split_vectors(self.config, vectors, len(checked))
        check_payloads(payloads, len(checked))
        plist = list(payloads) if payloads is not None else [None] * len(checked)
        self._settle_moves()
        with self._ids.hold(checked):
            return UpdateResult(self._write_held(checked, vecs, plist, named, key), len(checked))

    def _write_held(
        self,
        checked: list[PointId],
        vecs: np.ndarray,
        plist: list[Any],
        named: dict[str, list[Any]],
        key: str | None,
        kept: bool = False,
    ) -> int:
        """`upsert`'s write, its ids' locks held by the caller (`kept`: see `ReplicaSet.upsert`)."""
        with self._writes.read(), self._turns.group(_WRITERS):
            layouts = [self._layout] if self._next is None else [self._layout, self._next]
            # Every placement is known (and a bad payload refused) before any shard is written.
            placements = [layout.place(checked, vecs, plist) for layout in layouts]
            # Already normalized (cosine): the shard's own check finds unit length and stores
            # these bits, the same an unsharded collection stores.
            ts = self._layout.upsert(checked, vecs, plist, placements[0], key, named, kept)
            if len(layouts) > 1:
                self._also_next(
                    lambda: layouts[1].upsert(checked, vecs, plist, placements[1], key, named, kept)
                )
            self.session_ts = max(self.session_ts, ts)
            return ts

    def _settle_moves(self) -> None:
        """Settle the moves between shards that failed earlier, under their ids' locks."""
        for layout in (self._layout, self._next):
            if layout is not None and layout.unsettled:
                ids = [pid for _, part, _ in layout.unsettled for pid in part]
                with self._ids.hold(ids), self._writes.read():
                    layout.settle_pending()

    def _also_next(self, write: Callable[[], object]) -> None:
        """Repeat a write on the layout a reshard fills; if it fails there, abandon the reshard (a
        switch would lose the write), never the write, which the current layout has."""
        try:
            write()
        except (VectorForgeError, OSError) as exc:
            logger.error("resharding %r is abandoned: a write failed on the new layout: %s", self.name, exc)
            self._next_failed = exc

    def delete(
        self,
        ids: Sequence[PointId] | None = None,
        filter: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> UpdateResult:
        """Delete by id and/or filter on every shard that may hold the points."""
        self._check_open()
        key = check_idempotency_key(idempotency_key)
        if key is not None and key in self._earlier_keys:  # made before a reshard
            return UpdateResult(self._layout.last_ts, self._earlier_keys[key])
        if ids is None and filter is None:
            raise InvalidParameter(
                "delete needs ids=[...] or filter={...}; to drop everything use delete_collection"
            )
        checked = check_ids(ids, unique=False) if ids is not None else None
        if filter is not None:
            parse_delete_filter(filter)  # refused here, before any shard deletes
        self._settle_moves()
        with self._ids.hold(checked or []), self._writes.read(), self._turns.group(_WRITERS):
            total = self._layout.delete(checked, filter, key)
            following = self._next
            if following is not None:
                self._also_next(lambda: following.delete(checked, filter, key))
            self.session_ts = max(self.session_ts, self._layout.last_ts)
            return UpdateResult(self._layout.last_ts, total)

    def _rewrite_payloads(
        self,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        ids: list[PointId] | None,
        filter: dict[str, Any] | None,
        key: str | None,
    ) -> UpdateResult:
        """A payload update: the chosen points (read strongly) are written again with their own
        vectors and `change(payload)`, their ids' locks held from the read to the write, so no
        write of them comes between; a changed shard key moves the point as an upsert does."""
        self._check_open()
        marker = None if key is None else _part(key, 0, "p")
        if key is not None and key in self._earlier_keys:  # made before a reshard
            return UpdateResult(self._layout.last_ts, self._earlier_keys[key])
        if marker is not None and (done := self._layout.shards[0].recall(marker)) is not None:
            return UpdateResult(self._layout.last_ts, done)
        asked = list(dict.fromkeys(ids or []))
        targets = list(asked)  # ids that do not exist drop out at the read under the locks
        if filter is not None:
            seen = set(targets)
            targets += [pid for pid in self._matching(filter) if pid not in seen]
        self._settle_moves()
        with self._ids.hold(targets):
            if filter is not None:  # a point that stopped matching before the locks were taken is left
                by_id = set(asked)
                chosen = [pid for pid in targets if pid not in by_id]
                still = set(self._matching({"must": [filter, {"has_id": chosen}]})) if chosen else set()
                targets = [pid for pid in targets if pid in by_id or pid in still]
            records = self.get(targets, with_payload=True, with_vectors=True, consistency="strong")
            payloads = [change(r.payload) for r in records]
            check_payloads(payloads, len(records))
            found = [r.id for r in records]
            if found:
                vecs, named = split_vectors(self.config, record_vectors(self.config, records), len(found))
                self._write_held(found, vecs, payloads, named, key, kept=True)  # vectors as stored
            count = len(found)
            if marker is not None:  # what a retry answers, written once every part has landed
                count = self._layout.shards[0].remember(marker, count)
            self.session_ts = max(self.session_ts, self._layout.last_ts)
            return UpdateResult(self._layout.last_ts, count)

    def _matching(self, filter: dict[str, Any]) -> list[PointId]:
        """The ids of every point that matches `filter`, read strongly, page by page."""
        out: list[PointId] = []
        cursor: str | None = None
        while True:
            page = self.scroll(10_000, cursor, filter=filter, with_payload=False, consistency="strong")
            out.extend(r.id for r in page.records)
            if page.next_cursor is None:
                return out
            cursor = page.next_cursor

    def embedder(self) -> Any:
        """The collection's embedder (every shard has the same)."""
        return self.shards[0].embedder()

    def search_sparse(
        self,
        using: str,
        vector: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """BM25 on every shard with the statistics of all of them, gathered first (Elasticsearch's
        dfs_query_then_fetch), so that a point scores exactly as in one collection; then merged."""
        self._check_open()
        spec = self.sparse_spec(using)
        k, offset = check_k_offset(k, offset)
        query = check_sparse(vector, spec, "the sparse query")
        parse_filter(filter)
        terms = query.indices.tolist()
        options: dict[str, Any] = {
            "filter": filter,
            "with_payload": with_payload,
            "with_vectors": with_vectors,
        }
        with self._read_view(consistency) as guarantee:
            if spec.modifier != "idf":
                return self._merged(
                    guarantee, lambda c: c.search_sparse(using, query, k + offset, **options), k, offset
                )
            # One replica per shard for both steps: its statistics and its scores come from the same
            # log position (two replicas of a shard may differ under a relaxed consistency level).
            while True:
                pinned = list(zip(self.shards, self._each_shard(lambda s: s.reader(guarantee)), strict=True))
                try:
                    parts = _on_replicas(pinned, lambda c: c.sparse_stats(using, terms))
                    options["stats"] = functools.reduce(CorpusStats.merged, parts, CorpusStats())
                    lists = _on_replicas(
                        pinned, lambda c: c.search_sparse(using, query, k + offset, **options)
                    )
                    break
                except ReplicaLost:  # that replica is fenced now: the next round picks another
                    continue
            return merge_topk(lists, k, offset)

    def search_multi(
        self,
        using: str,
        query: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """MaxSim on every shard (exact, or PLAID re-scored exactly), merged (a score depends on the
        point alone)."""
        self._check_open()
        check_tokens(query, self.multi_spec(using), "the multi-vector query")  # refused here, sent as given
        return self._on_each_shard(
            lambda c: c.search_multi,
            using,
            np.asarray(query),
            k,
            offset,
            filter,
            with_payload,
            with_vectors,
            consistency,
            params,
        )

    def search_dense(
        self,
        using: str,
        query: Any,
        k: int = 10,
        *,
        offset: int = 0,
        filter: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Hit]:
        """Exact search of a second dense vector on every shard, merged."""
        self._check_open()
        spec = self.config.extra_dense.get(using)
        if spec is None:
            raise InvalidParameter(f"collection {self.name!r} has no second dense vector {using!r}")
        check_dense(query, spec, "the query")  # refused here, sent as given
        return self._on_each_shard(
            lambda c: c.search_dense,
            using,
            np.asarray(query),
            k,
            offset,
            filter,
            with_payload,
            with_vectors,
            consistency,
            params,
        )

    def _on_each_shard(
        self,
        method: Callable[[ReplicaStore], Callable[..., list[Hit]]],
        using: str,
        query: Any,
        k: int,
        offset: int,
        filter: dict[str, Any] | None,
        with_payload: bool,
        with_vectors: bool,
        consistency: str | None,
        params: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """A named vector's search (`method` of a replica) on every shard, merged: scores are exact
        on every shard (a PLAID index re-scores its candidates), so they merge without loss."""
        k, offset = check_k_offset(k, offset)
        parse_filter(filter)
        options = {
            "filter": filter,
            "with_payload": with_payload,
            "with_vectors": with_vectors,
            "params": params,
        }
        with self._read_view(consistency) as guarantee:
            return self._merged(
                guarantee, lambda c: method(c)(using, query, k + offset, **options), k, offset
            )

    def _merged(
        self, guarantee: ReadGuarantee, call: Callable[[ReplicaStore], list[Hit]], k: int, offset: int
    ) -> list[Hit]:
        """Each shard's own top k + offset by `call` (on a replica that meets `guarantee`), merged."""
        return merge_topk(self._each_shard(lambda s: s.read(guarantee, call)), k, offset)

    def _each_shard(self, call: Callable[[ReplicaSet], T]) -> list[T]:
        """`call` on every shard, in parallel threads when there are several."""
        return _each(self.shards, call)

    def flush(self) -> None:
        with self._reads.read():
            for shard in self.shards:
                shard.flush()

    def optimize(self) -> bool:
        with self._reads.read():
            return any([shard.optimize() for shard in self.shards])

    def create_payload_index(self, field: str, schema: str = "keyword") -> None:
        self._payload_indexes({**self.config.payload_indexes, check_index_field(field): schema})
        with self._reads.read():
            for shard in self.shards:
                shard.create_payload_index(field, schema)

    def delete_payload_index(self, field: str) -> None:
        indexes = dict(self.config.payload_indexes)
        if indexes.pop(check_index_field(field), None) is None:
            raise InvalidParameter(f"collection {self.name!r} has no payload index of {field!r}")
        self._payload_indexes(indexes)
        with self._reads.read():
            for shard in self.shards:
                shard.delete_payload_index(field)

    def _payload_indexes(self, indexes: dict[str, Any]) -> None:
        """Record them in config.json (new layouts and replicas take them from it), then here."""
        config = checked_payload_indexes(self.config, indexes)
        with self._writes.write():
            if self._next is not None:
                raise UsageError(
                    f"collection {self.name!r} is being resharded; change its payload indexes after"
                )
            if self.folder is not None:
                write_json_atomic(self.folder / CONFIG_FILE, json.loads(config.model_dump_json()))
            self.config = config
            self._layout.config = config

    def repair(self) -> dict[str, Any]:
        """Anti-entropy: check that the replicas of each shard hold the same points (a summary per
        range of ids first, points only where summaries differ) and rewrite any replica that
        differs from the majority. Writes go on meanwhile. Returns one report per shard."""
        self._check_open()
        with self._reads.read():
            reports = [shard.repair() for shard in self.shards]
        return {
            "shards": reports,
            "repaired_points": sum(r["repaired_points"] for r in reports),
            "diverged_replicas": sum(len(r["diverged_buckets"]) for r in reports),
        }

    # ------------------------------------------------------------------ resharding
    def reshard(
        self, shards: int, *, n_probe: int | None = None, batch_size: int = 100, progress: bool = False
    ) -> None:
        """Move every point to a layout of `shards` shards while reads and writes go on.

        The current layout keeps answering every read until the switch; every write meanwhile goes
        to both layouts, and the points are copied shard by shard in batches (each batch while writes
        wait, so that a copy never overwrites a newer write). Then, with reads and writes held for a
        moment, `config.json` names the new layout and the old one is removed. An interrupted reshard
        (an error, Ctrl-C, a crash) leaves the collection as it was.

        Args:
            shards: the new number of shards (1-1024).
            n_probe: semantic sharding: shards a query asks in the new layout (default: unchanged).
            batch_size: points copied per batch; writes wait for one batch at a time, and the writes
                that queued behind a batch go before the next one.
            progress: show a progress bar.
        """
        self._check_open()
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1024:
            raise InvalidParameter(f"shards must be an integer from 1 to 1024, not {shards!r}")
        semantic = self.config.sharding is Sharding.SEMANTIC
        n_probe = check_n_probe(n_probe, semantic, shards)
        if n_probe is None and semantic and self.config.n_probe is not None:
            n_probe = min(self.config.n_probe, shards)  # unchanged, as far as the new count allows
        if shards == self.config.shards and n_probe == self.config.n_probe:
            raise InvalidParameter(
                f"collection {self.name!r} already has {shards} shards; nothing to reshard "
                "(give another count)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidParameter(f"batch_size must be a positive integer, not {batch_size!r}")
        if not self._resharding.acquire(blocking=False):
            raise UsageError(f"collection {self.name!r} is already being resharded; wait for it to finish")
        try:
            self._reshard(shards, n_probe, batch_size, progress)
        finally:
            self._resharding.release()

    def _reshard(self, shards: int, n_probe: int | None, batch_size: int, progress: bool) -> None:
        old = self._layout
        config = self.config.model_copy(
            update={"shards": shards, "n_probe": n_probe, "layout": old.generation + 1}
        )
        if self.folder is not None:
            remove_stale_layouts(self.folder, old.generation)  # a reshard interrupted earlier
        new = ShardLayout.open(config, self.folder, self.backend, self.clock)
        try:
            if isinstance(new.router, SemanticRouter):
                self._train_semantic(new)
            with self._writes.write():
                self._next, self._next_failed = new, None
            total = self.count(consistency="strong")
            with tqdm(total=total, desc=f"resharding {self.name}", unit="pt", disable=not progress) as bar:
                for shard in old.shards:
                    cursor: str | None = None
                    while True:
                        with self._writes.write():  # no write between reading a batch and copying it
                            self._check_next()
                            page = shard.read(
                                _STRONG,
                                lambda c, cur=cursor: c.scroll(batch_size, cur, with_vectors=True),  # type: ignore[misc]
                            )
                            if page.records:
                                self._copy(page.records, new)
                        bar.update(len(page.records))  # writes that queued behind the batch go next
                        cursor = page.next_cursor
                        if cursor is None:
                            break
            with self._writes.write(), self._reads.write():
                self._check_next()
                carried = _newest({**self._earlier_keys, **old.remembered_keys()})
                if self.folder is not None:  # the commit point: config.json names the new layout
                    write_json_atomic(self.folder / KEYS_FILE, [[k, v] for k, v in carried.items()])
                    write_json_atomic(self.folder / CONFIG_FILE, json.loads(config.model_dump_json()))
                self.config, self._layout, self._next = config, new, None
                self._earlier_keys = carried
        except BaseException:
            with self._writes.write():
                self._next = None
            new.destroy()
            raise
        old.destroy()

    def _check_next(self) -> None:
        """Abandon the reshard if a write failed on the new layout (writes held: none can fail now)."""
        if self._next_failed is not None:
            raise UnavailableError(
                f"resharding {self.name!r} was abandoned: a write failed on the new layout "
                f"({self._next_failed}); the collection is unchanged, reshard again"
            ) from self._next_failed

    def _train_semantic(self, new: ShardLayout) -> None:
        """Centroids for the new layout from a random sample of the points it will hold: 1,000 per
        new shard (FAISS k-means uses at most 256 per centroid). Ids are listed first, without
        vectors, then the sample is fetched in small batches, so no read or write waits long."""
        rng = np.random.default_rng(0)
        quota = -(-1_000 * len(new.shards) // len(self.shards))
        sample: list[list[float]] = []
        for shard in self._layout.shards:
            ids: list[PointId] = []
            cursor: str | None = None
            while True:
                page = shard.read(
                    _STRONG,
                    lambda c, cur=cursor: c.scroll(10_000, cur, with_payload=False),  # type: ignore[misc]
                )
                ids.extend(r.id for r in page.records)
                cursor = page.next_cursor
                if cursor is None:
                    break
            chosen = [ids[i] for i in sorted(rng.choice(len(ids), min(quota, len(ids)), replace=False))]
            for start in range(0, len(chosen), 500):
                part = chosen[start : start + 500]
                records = shard.read(
                    _STRONG,
                    lambda c, part=part: c.get(part, with_payload=False, with_vectors=True),  # type: ignore[misc]
                )
                sample.extend(r.vector for r in records if r.vector is not None)
        if sample:  # an empty collection trains on its first batch, as a new one does
            new.train(np.asarray(sample, dtype=np.float32))

    @staticmethod
    def _copy(records: list[Record], new: ShardLayout) -> None:
        ids = [r.id for r in records]
        vectors, named = split_vectors(new.config, record_vectors(new.config, records), len(ids))
        payloads = [r.payload for r in records]
        # the vectors as the old shards keep them (pooled once, say): not transformed again
        new.upsert(ids, vectors, payloads, new.place(ids, vectors, payloads), named=named, kept=True)

    # ------------------------------------------------------------------ reads
    def count(self, filter: dict[str, Any] | None = None, *, consistency: str | None = None) -> int:
        self._check_open()
        parse_filter(filter)  # refused here with the field named, before any shard or router sees it
        with self._read_view(consistency) as guarantee:
            return sum(shard.read(guarantee, lambda c: c.count(filter)) for shard in self.shards)

    @contextlib.contextmanager
    def _read_view(self, consistency: str | None) -> Iterator[ReadGuarantee]:
        """Hold the layout for one read and yield its guarantee. A strong read also waits for the
        writes in flight and holds new ones back while it runs: it sees every shard at one instant."""
        level = check_consistency(consistency)
        with self._reads.read():
            if level is Consistency.STRONG and len(self.shards) > 1:
                with self._turns.group(_READERS):
                    yield self._guarantee(level)
            else:
                yield self._guarantee(level)

    def _guarantee(self, level: Consistency) -> ReadGuarantee:
        """One guarantee for the whole read, taken once, so every shard is held to the same instant."""
        if level is Consistency.STRONG:
            return ReadGuarantee(level, self.clock.now())
        if level is Consistency.BOUNDED:
            staleness_ms = int(self.shards[0].max_staleness * 1000)
            return ReadGuarantee(level, self.clock.now() - (staleness_ms << 16))
        if level is Consistency.SESSION:
            token = _SESSION_TOKEN.get()
            return ReadGuarantee(level, self.session_ts if token is None else token)
        return ReadGuarantee(level, None)

    def get(
        self,
        ids: Sequence[PointId],
        *,
        with_payload: bool = True,
        with_vectors: bool = False,
        consistency: str | None = None,
    ) -> list[Record]:
        self._check_open()
        checked = check_ids(ids, unique=False)
        found: dict[PointId, Record] = {}
        with self._read_view(consistency) as guarantee:
            for shard_no, part in self._layout.by_shard(list(dict.fromkeys(checked))).items():
                records = self.shards[shard_no].read(
                    guarantee,
                    lambda c, part=part: c.get(part, with_payload=with_payload, with_vectors=with_vectors),  # type: ignore[misc]
                )
                for rec in records:
                    found.setdefault(rec.id, rec)
        return [found[pid] for pid in checked if pid in found]

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
        """All shards' points in one id order (a k-way merge of the shards' own pages)."""
        self._check_open()
        parse_filter(filter)
        with self._read_view(consistency) as guarantee:
            pages = [
                shard.read(
                    guarantee,
                    lambda c: c.scroll(
                        limit, cursor, filter=filter, with_payload=with_payload, with_vectors=with_vectors
                    ),
                )
                for shard in self.shards
            ]
        merged = list(heapq.merge(*(p.records for p in pages), key=lambda r: (isinstance(r.id, str), r.id)))
        records: list[Record] = []
        for rec in merged:  # an id moving between shards may show up twice
            if not records or records[-1].id != rec.id:
                records.append(rec)
        page = records[:limit]
        more = len(records) > limit or any(p.next_cursor is not None for p in pages)
        return ScrollPage(page, encode_cursor(page[-1].id) if page and more else None)

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
        """Ask each shard for its own top k + offset, merge, then skip offset."""
        self._check_open()
        require_dense(self.config)
        k, offset = check_k_offset(k, offset)
        queries = check_queries(vectors, self.config.dim, self.config.metric, k + offset)
        parse_filter(filter)  # refused with the field named, before the router reads it
        with self._read_view(consistency) as guarantee:
            return self._search(queries, guarantee, k, offset, filter, params, with_payload, with_vectors)

    def _search(
        self,
        queries: np.ndarray,
        guarantee: ReadGuarantee,
        k: int,
        offset: int,
        filter: dict[str, Any] | None,
        params: dict[str, Any] | None,
        with_payload: bool,
        with_vectors: bool,
    ) -> list[list[Hit]]:
        probes = self.router.probe(queries, filter)
        per_query: list[list[list[Hit]]] = [[] for _ in range(len(queries))]
        work = []
        for shard_no, shard in enumerate(self.shards):
            asking = [qi for qi, shards in enumerate(probes) if shard_no in shards]
            if asking:
                work.append((shard, asking))

        def ask(item: tuple[ReplicaSet, list[int]]) -> list[list[Hit]]:
            shard, asking = item
            return shard.read(
                guarantee,
                lambda c: c.search_batch(
                    queries[asking],
                    k + offset,
                    filter=filter,
                    params=params,
                    with_payload=with_payload,
                    with_vectors=with_vectors,
                ),
            )

        # Shards answer in parallel threads: FAISS releases the GIL while it searches.
        answers = list(_POOL.map(ask, work)) if len(work) > 1 else [ask(w) for w in work]
        for (_, asking), results in zip(work, answers, strict=True):
            for qi, hits in zip(asking, results, strict=True):
                per_query[qi].append(hits)
        return [merge_topk(sources, k, offset) for sources in per_query]

    # ------------------------------------------------------------------ maintenance
    def info(self) -> dict[str, Any]:
        self._check_open()
        with self._reads.read():
            parts = [shard.stats() for shard in self.shards]
            sets = [shard.info() for shard in self.shards]
        return {
            "name": self.name,
            **self.config.dense_info(),
            "vectors": self.config.vectors_spec(),
            "payload_indexes": dict(self.config.payload_indexes),
            "embedder": self.config.embedder.model_dump() if self.config.embedder else None,
            "max_segment_points": self.config.max_segment_points,
            "shards": len(parts),
            "sharding": self.config.sharding.value,
            "shard_key": self.config.shard_key,
            "n_probe": self.config.n_probe,
            "points": sum(p["points"] for p in parts),
            "segments": [s for p in parts for s in p["segments"]],
            "points_per_shard": [p["points"] for p in parts],
            "last_seq": max(p["last_seq"] for p in parts),
            "wal_bytes": sum(p["wal_bytes"] for p in parts),
            "replicas": self.config.replicas,
            "write_quorum": self.config.write_quorum,
            "layout": self.config.layout,
            "resharding": self._next is not None,
            "failed": next((p["failed"] for p in parts if p.get("failed")), None),
            "replica_sets": sets,
        }

    def snapshot(self, path: str | Path) -> Path:
        """Write the whole collection into one file that `Database.restore` reads: the config, the
        router and each shard's leader. Writes wait while the shards are copied, so the file holds
        every shard at one instant (no batch half-written across shards)."""
        self._check_open()
        if self.folder is None:
            raise UsageError("snapshots need a persistent database: vf.connect('./path')")
        target = Path(path)
        partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.tmp")  # one per snapshot
        with self._writes.write(), tempfile.TemporaryDirectory(dir=self.folder, prefix=".snapshot-") as tmp:
            layout = self._layout
            config = self.config.model_copy(update={"layout": 0})  # restored as a first layout

            def write_tar(out: Path) -> None:
                with tarfile.open(out, "w") as tar:
                    _add_bytes(tar, CONFIG_FILE, config.model_dump_json().encode())
                    centroids = layout.router_bytes()
                    if centroids is not None:
                        _add_bytes(tar, ROUTER_FILE, centroids)
                    for i, shard in enumerate(layout.shards):
                        part = shard.read(_STRONG, lambda c, i=i: c.snapshot(Path(tmp) / f"{i}.tar"))  # type: ignore[misc]
                        tar.add(part, arcname=f"shards/{i}.tar")

            try:  # complete and durable under its name, or not there at all
                fsio.write_with(partial, write_tar)
                fsio.replace(partial, target)
                fsio.fsync_dir(target.parent)
            except OSError as exc:
                partial.unlink(missing_ok=True)
                raise WriteNotDurable(f"snapshot {target} could not be written: {exc}") from exc
        return target

    def close(self) -> None:
        if self._closed:
            return
        self._stopping.set()
        if self._repairer is not None:
            self._repairer.join()
        with self._writes.write(), self._reads.write():
            self._layout.close()
            if self._next is not None:  # a reshard in progress fails on its next batch and cleans up
                self._next.close()
            self._closed = True


def _each(items: Sequence[X], call: Callable[[X], T]) -> list[T]:
    """`call` on each item (a shard, a replica of each shard), in parallel threads when there are several."""
    return list(_POOL.map(call, items)) if len(items) > 1 else [call(item) for item in items]


def _on_replicas(pinned: list[tuple[ReplicaSet, ReplicaStore]], call: Callable[[ReplicaStore], T]) -> list[T]:
    """`call` on one chosen replica of each shard; a replica found lost is fenced before the error
    goes on."""

    def guarded(pair: tuple[ReplicaSet, ReplicaStore]) -> T:
        try:
            return call(pair[1])
        except ReplicaLost:
            pair[0].lost(pair[1])
            raise

    return _each(pinned, guarded)


def _newest(keys: dict[str, int]) -> dict[str, int]:
    """At most KEY_WINDOW of them (the last ones in order)."""
    items = list(keys.items())[-KEY_WINDOW:]
    return dict(items)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
