"""Sealed segment folders: written once into a temporary folder, fsynced, then renamed into place.

A segment folder holds `points.msgpack` (ids, payloads, rows dead at sealing, tombstones for older
segments, the last sequence number it covers, rows without the primary dense vector) and the index
files (`index.faiss`, and `vectors.npy` for indexes that keep full vectors outside FAISS). A folder
is part of a collection only once the manifest lists it, so a failure anywhere here leaves nothing
that counts: the folder is removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from vectorforge.errors import CorruptionError
from vectorforge.storage import fsio
from vectorforge.types import PointId

__all__ = ["SegmentData", "read_points", "write_segment"]


@dataclass
class SegmentData:
    ids: list[PointId]
    payloads: list[bytes | None]
    dead_rows: list[int]
    tombstones: list[PointId]
    max_seq: int
    absent: list[int] = field(default_factory=list)  # rows without the primary dense vector


def write_segment(folder: Path, data: SegmentData, save_index: Any) -> None:
    """Write `data` and the index (via `save_index(tmp_folder)`) as the segment folder `folder`.

    On any error nothing is left behind (neither the temporary folder nor `folder`) and it is raised."""
    tmp = folder.with_name(folder.name + ".tmp")
    fsio.remove_tree(tmp)
    try:
        tmp.mkdir(parents=True)
        points = msgpack.packb(
            {
                "ids": data.ids,
                "payloads": data.payloads,
                "dead_rows": data.dead_rows,
                "tombstones": data.tombstones,
                "max_seq": data.max_seq,
                "absent": data.absent,
            },
            use_bin_type=True,
        )
        fsio.write_file(tmp / "points.msgpack", points)
        save_index(tmp)  # each file through fsio.write_with, which fsyncs it
        fsio.fsync_dir(tmp)
        fsio.replace(tmp, folder)
        fsio.fsync_dir(folder.parent)
    except BaseException:
        fsio.remove_tree(tmp)
        fsio.remove_tree(folder)
        raise


def read_points(folder: Path) -> SegmentData:
    """Read a segment's points (not its index)."""
    try:
        raw = msgpack.unpackb((folder / "points.msgpack").read_bytes(), raw=False, strict_map_key=False)
        return SegmentData(
            ids=raw["ids"],
            payloads=raw["payloads"],
            dead_rows=raw["dead_rows"],
            tombstones=raw["tombstones"],
            max_seq=raw["max_seq"],
            absent=raw.get("absent", []),  # segments written before points could lack it
        )
    except (OSError, ValueError, KeyError, msgpack.UnpackException) as exc:
        raise CorruptionError(f"segment {folder} cannot be read ({exc}); restore from a snapshot") from exc
