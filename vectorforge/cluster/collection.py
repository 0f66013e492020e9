"""A collection split over shards: routing writes, fanning out reads, merging top-k.

Each shard is a `ReplicaSet` of engine collections (each with its own log, segments, indexes).
The rules that keep a sharded collection equal to one unsharded collection holding the same points:

- every shard is asked for its own top `k + offset` (never k / N), with scores that are exact or
  re-scored at full precision, so they compare across shards;
- the coordinator merges with `merge_topk`, the function that merges segments inside a shard: best
  score first, ties by id, each id once (a point can sit on two shards for a moment while it moves),
  and only then skips `offset`;
- a filter is applied inside every shard, so a shard with fewer than k matches returns what it has.

Writes are atomic per shard; a batch spread over shards is acknowledged once every shard has it.
"""

from __future__ import annotations

import heapq
import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.cluster.backend import ShardBackend
from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.replicaset import ReadGuarantee, ReplicaSet
from vectorforge.cluster.routing import HashRouter, KeyRouter, Router, SemanticRouter
from vectorforge.engine.collection import encode_cursor
from vectorforge.engine.merge import merge_topk
from vectorforge.engine.validate import check_ids, check_k_offset, check_payloads, check_texts, check_vectors
from vectorforge.errors import InvalidParameter, UsageError
from vectorforge.storage.fsio import write_atomic
from vectorforge.types import (
    CollectionConfig,
    Consistency,
    Hit,
    PointId,
    Record,
    ScrollPage,
    Sharding,
    check_consistency,
)

__all__ = ["ShardedCollection", "make_router"]

ROUTER_FILE = "router.npy"
_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="vf-shard")


def make_router(config: CollectionConfig, folder: Path | None) -> Router:
    """The router a config asks for; a semantic router reloads its centroids from `folder`."""
    if config.sharding is Sharding.HASH:
        return HashRouter(config.shards)
    if config.sharding is Sharding.KEY:
        if not config.shard_key:
            raise InvalidParameter("sharding='key' needs shard_key='<payload field>'")
        return KeyRouter(config.shards, config.shard_key)
    centroids = None
    if folder is not None and (folder / ROUTER_FILE).exists():
        centroids = np.load(folder / ROUTER_FILE)
    return SemanticRouter(config.shards, config.metric, config.n_probe or 1, centroids)


class ShardedCollection:
    """The `Collection` API over several shards. Obtain one with `create_collection(..., shards=N)`."""

    def __init__(
        self,
        config: CollectionConfig,
        shards: list[ReplicaSet],
        folder: Path | None,
        clock: HybridLogicalClock,
        backend: ShardBackend,
    ) -> None:
        self.config = config
        self.shards = shards
        self.folder = folder
        self.clock = clock
        self.backend = backend  # opens new shards (resharding)
        self.router = make_router(config, folder)
        self._closed = False
        # The session token: the timestamp of this object's last write ("session" reads wait for it).
        self.session_ts = 0

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dim(self) -> int:
        return self.config.dim

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
    ) -> int:
        """Insert or replace points on their shards; returns once every shard has its part durably."""
        self._check_open()
        checked = check_ids(ids)
        vecs = check_vectors(vectors, self.dim, self.config.metric, expected_rows=len(checked))
        check_payloads(payloads, len(checked))
        plist = list(payloads) if payloads is not None else [None] * len(checked)
        router = self.router
        if isinstance(router, SemanticRouter) and not router.trained:
            router.train(vecs)
            if self.folder is not None:
                _save_array(self.folder / ROUTER_FILE, router.centroids)
        placement = router.place(checked, vecs, plist)
        seq = 0
        for shard_no in np.unique(placement).tolist():
            rows = np.flatnonzero(placement == shard_no)
            part_ids = [checked[r] for r in rows]
            # Already normalized (cosine): the shard's own check finds unit length and stores these bits,
            # the same an unsharded collection stores.
            seq = max(seq, self.shards[shard_no].upsert(part_ids, vecs[rows], [plist[r] for r in rows]))
            self.session_ts = max(self.session_ts, seq)
            if router.moves_points:  # the id may have lived on another shard before: remove that copy
                for other, shard in enumerate(self.shards):
                    if other != shard_no:
                        shard.delete(ids=part_ids)
        return seq

    def delete(self, ids: Sequence[PointId] | None = None, filter: dict[str, Any] | None = None) -> int:
        """Delete by id and/or filter on every shard that may hold the points."""
        self._check_open()
        if ids is None and filter is None:
            raise InvalidParameter(
                "delete needs ids=[...] or filter={...}; to drop everything use delete_collection"
            )
        total = 0
        if ids is not None:
            checked = check_ids(ids, unique=False)
            for shard_no, part in self._by_shard(checked).items():
                total += self.shards[shard_no].delete(ids=part)
        if filter is not None:
            total += sum(shard.delete(filter=filter) for shard in self.shards)
        self.session_ts = max([self.session_ts, *(shard.last_ts for shard in self.shards)])
        return total

    def _by_shard(self, ids: list[PointId]) -> dict[int, list[PointId]]:
        """Where ids live: one shard each for hash sharding, every shard otherwise."""
        if isinstance(self.router, HashRouter):
            groups: dict[int, list[PointId]] = {}
            for pid, shard_no in zip(ids, self.router.place(ids, np.empty(0), []).tolist(), strict=True):
                groups.setdefault(shard_no, []).append(pid)
            return groups
        return dict.fromkeys(range(len(self.shards)), ids)

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[PointId] | None = None,
        payloads: Sequence[dict[str, Any] | None] | None = None,
        *,
        batch_size: int = 64,
        progress: bool = False,
    ) -> int:
        """Embed with the collection's embedder and upsert (text in payload["text"])."""
        text_list, checked, merged = check_texts(texts, ids, payloads)
        vectors = self.shards[0].embedder().encode(text_list, batch_size=batch_size, progress=progress)
        return self.upsert(checked, vectors, merged)

    def query(self, text: str, k: int = 10, **search_args: Any) -> list[Hit]:
        """Embed `text` with the collection's embedder and search every shard."""
        if not isinstance(text, str) or not text:
            raise InvalidParameter("query text must be a non-empty string")
        vector = self.shards[0].embedder().encode([text])[0]
        return self.search(vector, k, **search_args)

    def flush(self) -> None:
        for shard in self.shards:
            shard.flush()

    def optimize(self) -> bool:
        return any([shard.optimize() for shard in self.shards])

    # ------------------------------------------------------------------ reads
    def count(self, filter: dict[str, Any] | None = None, *, consistency: str | None = None) -> int:
        self._check_open()
        guarantee = self._guarantee(consistency)
        return sum(shard.read(guarantee, lambda c: c.count(filter)) for shard in self.shards)

    def _guarantee(self, consistency: str | None) -> ReadGuarantee:
        """One guarantee for the whole read, taken once, so every shard is held to the same instant."""
        level = check_consistency(consistency)
        if level is Consistency.STRONG:
            return ReadGuarantee(level, self.clock.now())
        if level is Consistency.BOUNDED:
            staleness_ms = int(self.shards[0].max_staleness * 1000)
            return ReadGuarantee(level, self.clock.now() - (staleness_ms << 16))
        if level is Consistency.SESSION:
            return ReadGuarantee(level, self.session_ts)
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
        guarantee = self._guarantee(consistency)
        checked = check_ids(ids, unique=False)
        found: dict[PointId, Record] = {}
        for shard_no, part in self._by_shard(list(dict.fromkeys(checked))).items():
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
        guarantee = self._guarantee(consistency)
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

    def search(
        self,
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
        arr = np.asarray(vector)
        if arr.ndim != 1:
            raise InvalidParameter(f"search takes one vector (1-D); got shape {arr.shape}; use search_batch")
        return self.search_batch(
            arr,
            k,
            offset=offset,
            filter=filter,
            params=params,
            with_payload=with_payload,
            with_vectors=with_vectors,
            consistency=consistency,
        )[0]

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
        guarantee = self._guarantee(consistency)
        k, offset = check_k_offset(k, offset)
        queries = check_vectors(vectors, self.dim, self.config.metric)
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
        parts = [shard.stats() for shard in self.shards]
        return {
            "name": self.name,
            "dim": self.dim,
            "metric": self.config.metric.value,
            "index": self.config.index.value,
            "index_params": self.config.index_params,
            "embedder": self.config.embedder.model_dump() if self.config.embedder else None,
            "max_segment_points": self.config.max_segment_points,
            "shards": len(self.shards),
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
            "replica_sets": [shard.info() for shard in self.shards],
        }

    def snapshot(self, path: str | Path) -> Path:
        raise UsageError(
            "snapshots of sharded collections are not available yet; snapshot each shard's data folder"
        )

    def close(self) -> None:
        if self._closed:
            return
        for shard in self.shards:
            shard.close()
        self._closed = True


def _save_array(path: Path, array: Any) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_atomic(path, buffer.getvalue())
