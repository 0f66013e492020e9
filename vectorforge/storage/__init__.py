"""Durability: the write-ahead log, sealed segment folders, the manifest, atomic file writes."""

from __future__ import annotations

from vectorforge.storage.manifest import Manifest
from vectorforge.storage.segments import SegmentData, read_points, write_segment
from vectorforge.storage.wal import WriteAheadLog

__all__ = ["Manifest", "SegmentData", "WriteAheadLog", "read_points", "write_segment"]
