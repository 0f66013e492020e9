"""The write-ahead log: every write is appended here and fsynced before it is acknowledged.

File layout: `wal/<first-seq, 20 digits>.log`, each a header and a run of records::

    file   := "VFWAL2\\r\\n" record*                         (files of format 1 have no header)
    record := u32 length | u32 crc32(length | body) | body  (little-endian; format 1: crc32(body))
    body   := msgpack map with at least {"seq": int, "op": str}

The checksum covers the length, so a damaged length is caught like a damaged body.

Failure rules:
- a crash can tear only the last record of the last file: on open, a bad record with nothing valid
  after it is a torn tail and is cut off (it was never acknowledged);
- a bad record followed by a valid one is corruption, not a torn tail: opening refuses with
  `CorruptionError` naming the file and offset, and truncates nothing;
- an append whose write fails is rolled back (truncated to the last good offset and fsynced)
  and raises `WriteNotDurable`: the log is as it was, and takes the next append;
- an append whose fsync fails (or whose rollback fails) is truncated away if possible, and the log
  then refuses every append (`CollectionFailed`) until it is opened again: after a failed fsync the
  kernel may have dropped the pages, and a retried fsync can report success over lost data.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from vectorforge.errors import CollectionFailed, CorruptionError, WriteNotDurable
from vectorforge.storage import fsio

__all__ = ["MAGIC", "WriteAheadLog"]

logger = logging.getLogger(__name__)

MAGIC = b"VFWAL2\r\n"
_LEN = struct.Struct("<I")
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
        fsio.make_dirs(self.folder)
        self._fd: int | None = None
        self._path: Path | None = None
        self._bytes = 0
        self.broken: str | None = None  # why appends are refused (None: they are not)

    # -- reading -------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The log files, oldest first."""
        return sorted(p for p in self.folder.iterdir() if p.suffix == _SUFFIX)

    def replay(self, after_seq: int) -> Iterator[dict[str, Any]]:
        """Yield every intact record with seq > after_seq, oldest first; cut a torn tail off the log."""
        files = self.files()
        for i, path in enumerate(files):
            last = i == len(files) - 1
            data = path.read_bytes()
            version, pos = _version(data, path, last)
            good_end = pos
            while pos < len(data):
                record = _decode_at(data, pos, version)
                if record is None:
                    later = _next_valid(data, pos + 1, version)
                    if not last or later is not None:
                        raise CorruptionError(
                            f"write-ahead log {path} is damaged at byte {pos}"
                            + (f" and holds valid records after it (at byte {later})" if later else "")
                            + "; it is not a torn tail, so nothing was cut off: restore the collection "
                            "from a snapshot (or a replica)",
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
                _truncate_file(path, good_end)

    # -- writing -------------------------------------------------------------------------------
    def open_for_append(self, next_seq: int) -> None:
        """Append to the newest file, or start one named after `next_seq` if there is none (or if the
        newest is of format 1, which is read but never appended to)."""
        files = self.files()
        newest = files[-1] if files else None
        if newest is not None and newest.stat().st_size > 0 and not _has_magic(newest):
            newest = None
        self._start(newest or self._path_for(next_seq))

    def _start(self, path: Path) -> None:
        fd = fsio.open_append(path)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                fsio.write_all(fd, MAGIC, path)
                fsio.fsync(fd, path)
                fsio.fsync_dir(self.folder)
                size = len(MAGIC)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._path, self._bytes = fd, path, size

    def append(self, body: dict[str, Any], sync: bool | None = None) -> None:
        """Write one record; when this returns (sync=True) the record survives a crash.

        `sync` overrides the log's setting for this record (a record whose loss is harmless).

        Raises WriteNotDurable (rolled back: nothing changed) or CollectionFailed (the log refuses
        appends from now on); in both cases the record will not be replayed.
        """
        if self.broken is not None:
            raise CollectionFailed(
                f"write-ahead log {self.folder} refuses writes since an earlier I/O error ({self.broken}); "
                "close the database and open it again to recover",
                folder=str(self.folder),
            )
        if self._fd is None:
            raise RuntimeError("write-ahead log is not open for appending")
        payload = msgpack.packb(body, use_bin_type=True)
        length = _LEN.pack(len(payload))
        record = length + _LEN.pack(zlib.crc32(payload, zlib.crc32(length))) + payload
        start = self._bytes
        try:
            fsio.write_all(self._fd, record, self._path)
        except OSError as exc:
            self._roll_back(start, exc, synced=False)
        if self.sync if sync is None else sync:
            try:
                fsio.fsync(self._fd, self._path)
            except OSError as exc:
                self._roll_back(start, exc, synced=True)
        self._bytes = start + len(record)

    def _roll_back(self, offset: int, exc: OSError, synced: bool) -> None:
        """Cut the failed record off the file; raise the error that says what state the log is in."""
        assert self._fd is not None
        try:
            fsio.truncate(self._fd, offset, self._path)
            fsio.fsync(self._fd, self._path)
        except OSError as again:
            self.broken = f"{exc}; rolling back failed too: {again}"
        else:
            if synced:  # the kernel may have dropped pages: trust nothing it writes from here on
                self.broken = f"fsync failed: {exc}"
        if self.broken is not None:
            raise CollectionFailed(
                f"write-ahead log {self._path}: {self.broken}. The write was not acknowledged; the log "
                "refuses writes until the collection is opened again",
                file=str(self._path),
            ) from exc
        raise WriteNotDurable(
            f"write-ahead log {self._path}: {exc.strerror or exc}; the write was rolled back and changed "
            "nothing. Retry once the disk has room (or the device is healthy)",
            file=str(self._path),
            errno=exc.errno,
        ) from exc

    @property
    def current_bytes(self) -> int:
        """Size of the file being appended to."""
        return self._bytes

    def rotate(self, next_seq: int) -> None:
        """Start a new file whose first record will be `next_seq`. If that fails the log refuses
        appends (a half-made file must not sit after the records still to come)."""
        self.close()
        try:
            self._start(self._path_for(next_seq))
        except OSError as exc:
            self.broken = f"could not start a new log file: {exc}"
            raise CollectionFailed(
                f"write-ahead log {self.folder}: {self.broken}; close the database and open it again",
                folder=str(self.folder),
            ) from exc

    def drop_through(self, seq: int) -> None:
        """Delete every file whose records all have seq <= `seq` (they are sealed in segments).

        A file that cannot be deleted stays; replay skips what it holds, so that is only space."""
        files = self.files()
        for path, successor in itertools.pairwise(files):
            if int(successor.stem) <= seq + 1:
                try:
                    path.unlink()
                except OSError as exc:
                    logger.warning("could not remove the sealed log file %s: %s", path, exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _path_for(self, seq: int) -> Path:
        return self.folder / f"{seq:020d}{_SUFFIX}"


def _has_magic(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _version(data: bytes, path: Path, last: bool) -> tuple[int, int]:
    """The file's format and where its records start. A header torn by a crash (a prefix of it, in
    the last file) reads as a format-2 file whose records start at 0: all of it is torn tail."""
    if data.startswith(MAGIC):
        return 2, len(MAGIC)
    if data and MAGIC.startswith(data) and last:
        return 2, 0
    return 1, 0


def _truncate_file(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        fsio.truncate(fd, size, path)
        fsio.fsync(fd, path)
    finally:
        os.close(fd)


def _decode_at(data: bytes, pos: int, version: int) -> tuple[dict[str, Any], int] | None:
    if pos + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, pos)
    start = pos + _HEADER.size
    end = start + length
    if end > len(data):
        return None
    payload = data[start:end]
    seed = zlib.crc32(data[pos : pos + 4]) if version == 2 else 0
    if zlib.crc32(payload, seed) != crc:
        return None
    try:
        body = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("seq"), int):
        return None
    return body, end


def _next_valid(data: bytes, start: int, version: int) -> int | None:
    """The first offset at or after `start` where a valid record begins (None: there is none).

    Candidates are the offsets whose length field fits in the file (found with numpy, a pass over
    the tail), and only those are checksummed: a torn tail of a large record is cleared quickly."""
    n = len(data)
    step = 1 << 22
    for base in range(start, n - _HEADER.size + 1, step):
        stop = min(n - _HEADER.size + 1, base + step)
        window = np.frombuffer(data, dtype=np.uint8, count=stop + 3 - base, offset=base).astype(np.uint64)
        lengths = window[:-3] | window[1:-2] << 8 | window[2:-1] << 16 | window[3:] << 24
        offsets = np.arange(base, stop, dtype=np.uint64)
        for pos in np.flatnonzero(offsets + _HEADER.size + lengths <= n).tolist():
            if _decode_at(data, base + pos, version) is not None:
                return base + pos
    return None
