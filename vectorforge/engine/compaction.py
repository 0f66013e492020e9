"""Compaction: which sealed segments to merge (a contiguous run, since segment order decides which
copy of an id is live, of segments that are small or mostly dead), and the merge itself, built
beside reads and writes and swapped in under the write lock."""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.engine.named import needs_training, new_named, reload_named, seal_named
from vectorforge.engine.parts import MANIFEST_FILE, CollectionState
from vectorforge.engine.segment import Segment
from vectorforge.errors import WriteNotDurable
from vectorforge.index import index_class, new_index
from vectorforge.storage import Manifest, SegmentData, fsio, write_segment
from vectorforge.storage.fsio import UncertainCommit
from vectorforge.types import CollectionConfig, PointId

__all__ = ["Compaction", "compaction_run"]

logger = logging.getLogger(__name__)


def compaction_run(sealed: list[Segment], max_points: int, live_share: float = 0.7) -> list[Segment]:
    """The contiguous run of sealed segments worth merging (merging keeps segment order intact): small
    ones, ones whose live rows are below `live_share` of their rows, or ones with an index to train."""
    run: list[Segment] = []
    total = 0
    best: list[Segment] = []
    for seg in sealed:
        small_or_dirty = seg.n < max_points // 2 or _dirty(seg, live_share)
        if small_or_dirty and total + seg.n_live <= max_points:
            run.append(seg)
            total += seg.n_live
        else:
            if worth(run, live_share):
                best = run if len(run) > len(best) else best
            run, total = ([seg], seg.n_live) if small_or_dirty else ([], 0)
    if worth(run, live_share) and len(run) > len(best):
        best = run
    return best


def worth(run: list[Segment], live_share: float = 0.7) -> bool:
    return len(run) > 1 or (len(run) == 1 and _dirty(run[0], live_share))


def _dirty(seg: Segment, live_share: float) -> bool:
    """Worth rebuilding on its own: too many dead rows, or a PLAID codec still to train."""
    return seg.n_live < live_share * seg.n or needs_training(seg.named)


def live_share(config: CollectionConfig) -> float:
    """Below what share of live rows a segment is rebuilt: 0.7, or more if one of its multi-vector
    indexes asks (`rebuild_below_live`: 0.95 for PLAID, whose codec is trained again on what is
    left once more than ~5% of it changed)."""
    asked = (index_class(spec.index, "multi").rebuild_below_live for spec in config.multi.values())
    return max(asked, default=0.7)


class Compaction(CollectionState):
    """Mixed into `Collection` (see engine/parts.py)."""

    def optimize(self) -> bool:
        """Merge sealed segments that are small or hold many dead rows into one; True if it merged.

        The merged segment is built and written without blocking reads or writes; only the swap takes
        the write lock. Writes arrive on the growing segment meanwhile: a row they replace or delete
        is dead in the merged segment, and on disk the newer segment that killed it still says so.
        """
        with self._maintenance:
            with self._lock.read():
                self._check_writable()
                run = compaction_run(
                    [s for s in self._segments if s.sealed],
                    self.config.max_segment_points,
                    live_share(self.config),
                )
                if not run:
                    return False
                ids: list[PointId] = []
                payloads: list[bytes | None] = []
                vec_parts = []
                sources: list[tuple[Segment, int]] = []
                absent: list[int] = []  # rows of the merged segment without the primary dense vector
                named_rows: dict[str, list[Any]] = {v: [] for v in self._growing.named}
                for seg in run:
                    rows = np.flatnonzero(seg.live)
                    absent.extend(len(ids) + i for i, r in enumerate(rows.tolist()) if not seg.has_dense(r))
                    ids.extend(seg.ids[r] for r in rows)
                    payloads.extend(seg.payloads[r] for r in rows)
                    for vector, kept in named_rows.items():
                        kept.extend(seg.named[vector].row(int(r)) for r in rows)
                    vec_parts.append(np.asarray(seg.index.vectors()[rows], dtype=np.float32))
                    sources.extend((seg, int(r)) for r in rows)
                # Tombstones only matter for segments older than the run; none if it starts at the oldest.
                tombstones = (
                    set().union(*(s.tombstones for s in run)) if run[0] is not self._segments[0] else set()
                )
                max_seq = max(s.max_seq for s in run)
                name = self._manifest.new_segment_name() if self.folder else f"mem-c{uuid.uuid4().hex[:8]}"
            index = new_index(
                self.config.index, self.config.dim, self.config.metric, self.config.index_params
            )
            vectors = np.concatenate(vec_parts) if vec_parts else np.empty((0, self.config.dim), np.float32)
            for start in range(0, len(ids), 20_000):  # in steps, so that close() need not wait long
                if self._closing:
                    return False
                index.add(np.ascontiguousarray(vectors[start : start + 20_000]))
            index.seal()
            named = new_named(self.config)
            for vector, kept in named_rows.items():
                named[vector].add_kept(kept)  # as the old segments keep them (pooled once, say)
            seal_named(named)
            path = self.folder / "segments" / name if self.folder else None
            if path is not None:  # not yet in the manifest: a crash here leaves a folder that open() removes
                try:
                    save = functools.partial(self._save_indexes, index, named)
                    write_segment(
                        path, SegmentData(ids, payloads, [], list(tombstones), max_seq, absent), save
                    )
                except OSError as exc:  # write_segment left nothing behind
                    raise WriteNotDurable(
                        f"collection {self.name!r}: a compaction could not write segment {name} ({exc}); "
                        "nothing changed",
                        collection=self.name,
                    ) from exc
                if index.vectors_on_disk:  # full vectors stay on disk
                    index = index_class(index.kind).load(
                        path, self.config.dim, self.config.metric, self.config.index_params
                    )
                for vector, held in list(named.items()):
                    if getattr(held, "vectors_on_disk", False):  # PLAID, MUVERA: tokens memory-mapped
                        named[vector] = reload_named(self.config, path, vector, len(ids))
            with self._lock.write():
                if self._closed or self._failed is not None:
                    if path is not None:
                        fsio.remove_tree(path)
                    return False
                first = self._segments.index(run[0])
                merged = self._indexed(
                    Segment(
                        name,
                        index,
                        ids,
                        payloads,
                        tombstones,
                        max_seq,
                        sealed=True,
                        named=named,
                        absent=absent,
                    )
                )
                segments = [*self._segments[:first], merged, *self._segments[first + len(run) :]]
                if self.folder is not None and path is not None:
                    self._commit_compaction(segments, path)  # the memory changes only once the disk has
                where = self._where
                for row, (seg, old_row) in enumerate(sources):
                    if where.get(ids[row]) == (seg, old_row):
                        where[ids[row]] = (merged, row)
                    else:  # replaced or deleted while we were building
                        merged.kill(row)
                self._segments = segments
                self._scroll_cache = None
            if self.folder is not None:
                for seg in run:
                    fsio.remove_tree(self.folder / "segments" / seg.name)
            return True

    def _commit_compaction(self, segments: list[Segment], path: Path) -> None:
        """Save the manifest that swaps a run of segments for the merged one at `path`."""
        assert self.folder is not None
        manifest = Manifest(
            segments=[s.name for s in segments if s.sealed],
            checkpoint_seq=self._manifest.checkpoint_seq,
            meta=dict(self._manifest.meta),
            next_segment=self._manifest.next_segment,
            keys=self._manifest.keys,
        )
        try:
            manifest.save(self.folder / MANIFEST_FILE)
        except UncertainCommit as exc:  # either manifest may be the durable one: keep every folder
            raise self._fail(f"the manifest of a compaction may not be durable: {exc}") from exc
        except OSError as exc:
            fsio.remove_tree(path)
            raise WriteNotDurable(
                f"collection {self.name!r}: a compaction could not save its manifest ({exc}); "
                "nothing changed",
                collection=self.name,
            ) from exc
        self._manifest = manifest

    def _compact_in_background(self) -> None:
        """Start a compaction thread unless one runs (called after a seal, with the write lock held)."""
        if self._compactor is not None and self._compactor.is_alive():
            return
        sealed = [s for s in self._segments if s.sealed]
        if not compaction_run(sealed, self.config.max_segment_points, live_share(self.config)):
            return
        self._compactor = threading.Thread(
            target=self._compact_loop, name=f"vf-compact-{self.name}", daemon=True
        )
        self._compactor.start()

    def _compact_loop(self) -> None:
        try:
            while not self._closing and self.optimize():
                pass
        except Exception:  # a background task must not die silently, nor take the process down
            logger.exception("background compaction of collection %r failed", self.name)
