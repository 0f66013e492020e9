"""The write-ahead log: every write is appended here and fsynced before it is acknowledged.

File layout: `wal/<first-seq, 20 digits>.log`, each a run of records::

    record := u32 length | u32 crc32(body) | body          (little-endian)
    body   := msgpack map with at least {"seq": int, "op": str}

A crash can tear only the last record of the last file (a new file starts only after everything before
it was sealed into a segment). On open, a record whose length runs past the end of the file or whose
checksum fails is dropped, and the file is truncated before it: a partial batch is never applied.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from vectorforge.errors import CorruptionError
from vectorforge.storage.fsio import fsync_dir

__all__ = ["WriteAheadLog"]

logger = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_SUFFIX = ".log"


class WriteAheadLog:
    """An append-only, checksummed, fsynced log of operations in sequence order.

    Args:
        folder: where the log files live (created if missing).
        sync: fsync every append before returning; turn off only for data you can lose.
    """

    def __init__(self, folder: Path, sync: bool = True) -> None:
        self.folder = folder
        self.sync = sync
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        self._bytes = 0

    # -- reading -------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The log files, oldest first."""
        return sorted(p for p in self.folder.iterdir() if p.suffix == _SUFFIX)

    def replay(self, after_seq: int) -> Iterator[dict[str, Any]]:
        """Yield every intact record with seq > after_seq, oldest first; cut a torn tail off the log."""
        files = self.files()
        for i, path in enumerate(files):
            last = i == len(files) - 1
            good_end = 0
            data = path.read_bytes()
            pos = 0
            while pos < len(data):
                record = _decode_at(data, pos)
                if record is None:
                    if not last:
                        raise CorruptionError(
                            f"write-ahead log {path.name} is damaged at byte {pos} and is not the last "
                            "file; restore the collection from a snapshot",
                            file=str(path),
                            offset=pos,
                        )
                    logger.warning("dropping a torn record at %s:%d (%d bytes)", path, pos, len(data) - pos)
                    break
                body, pos = record
                good_end = pos
                if body["seq"] > after_seq:
                    yield body
            if last and good_end < len(data):
                with open(path, "r+b") as f:
                    f.truncate(good_end)
                    f.flush()
                    os.fsync(f.fileno())

    # -- writing -------------------------------------------------------------------------------
    def open_for_append(self, next_seq: int) -> None:
        """Append to the newest file, or start one named after `next_seq` if there is none."""
        files = self.files()
        path = files[-1] if files else self._path_for(next_seq)
        self._file = open(path, "ab")  # noqa: SIM115 - held open for the life of the log
        self._bytes = self._file.tell()
        if not files:
            fsync_dir(self.folder)

    def append(self, body: dict[str, Any]) -> None:
        """Write one record; when this returns (sync=True) the record survives a crash."""
        if self._file is None:
            raise RuntimeError("write-ahead log is not open for appending")
        payload = msgpack.packb(body, use_bin_type=True)
        self._file.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._file.flush()
        if self.sync:
            os.fsync(self._file.fileno())
        self._bytes += _HEADER.size + len(payload)

    @property
    def current_bytes(self) -> int:
        """Size of the file being appended to."""
        return self._bytes

    def rotate(self, next_seq: int) -> None:
        """Start a new file whose first record will be `next_seq`."""
        self.close()
        self._file = open(self._path_for(next_seq), "ab")  # noqa: SIM115
        self._bytes = 0
        fsync_dir(self.folder)

    def drop_through(self, seq: int) -> None:
        """Delete every file whose records all have seq <= `seq` (they are sealed in segments)."""
        files = self.files()
        for path, successor in itertools.pairwise(files):
            if int(successor.stem) <= seq + 1:
                path.unlink()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _path_for(self, seq: int) -> Path:
        return self.folder / f"{seq:020d}{_SUFFIX}"


def _decode_at(data: bytes, pos: int) -> tuple[dict[str, Any], int] | None:
    if pos + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    end = start + length
    if end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(payload) != crc:
        return None
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("seq"), int):
        return None
    return body, end
