from __future__ import annotations

import errno
from pathlib import Path

import pytest

from vectorforge.errors import CollectionFailed, CorruptionError, WriteNotDurable
from vectorforge.storage import WriteAheadLog, fsio
from vectorforge.storage.wal import MAGIC


def _write(folder: Path, n: int, start: int = 1) -> WriteAheadLog:
    wal = WriteAheadLog(folder)
    wal.open_for_append(start)
    for seq in range(start, start + n):
        wal.append({"seq": seq, "op": "upsert", "blob": b"x" * seq})
    wal.close()
    return wal


def test_replay_returns_records_after_position(tmp_path: Path) -> None:
    wal = _write(tmp_path, 5)
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1, 2, 3, 4, 5]
    assert [r["seq"] for r in wal.replay(after_seq=3)] == [4, 5]
    assert next(iter(wal.replay(after_seq=4)))["blob"] == b"x" * 5


@pytest.mark.parametrize("cut", [1, 4, 8, 11])
def test_torn_last_record_is_dropped_and_truncated(tmp_path: Path, cut: int) -> None:
    wal = _write(tmp_path, 3)
    (path,) = wal.files()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - cut)
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1, 2]
    # the torn bytes are gone, so the next append starts on a record boundary
    wal.open_for_append(3)
    wal.append({"seq": 3, "op": "delete"})
    wal.close()
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1, 2, 3]


def test_checksum_mismatch_in_last_record_is_dropped(tmp_path: Path) -> None:
    wal = _write(tmp_path, 3)
    (path,) = wal.files()
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF  # flip bits inside the last record's body
    path.write_bytes(bytes(data))
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1, 2]


def test_garbage_appended_after_last_record_is_dropped(tmp_path: Path) -> None:
    wal = _write(tmp_path, 2)
    (path,) = wal.files()
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage-garbage")
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1, 2]


def test_damage_in_an_older_file_is_reported_not_skipped(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.open_for_append(1)
    wal.append({"seq": 1, "op": "upsert"})
    wal.append({"seq": 2, "op": "upsert"})
    wal.rotate(3)
    wal.append({"seq": 3, "op": "upsert"})
    wal.close()
    first = wal.files()[0]
    first.write_bytes(first.read_bytes()[:-3])
    with pytest.raises(CorruptionError, match="damaged"):
        list(wal.replay(after_seq=0))


def test_drop_through_keeps_files_with_newer_records(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.open_for_append(1)
    wal.append({"seq": 1, "op": "upsert"})
    wal.rotate(2)
    wal.append({"seq": 2, "op": "upsert"})
    wal.rotate(3)
    wal.drop_through(1)
    assert [int(p.stem) for p in wal.files()] == [2, 3]
    wal.drop_through(2)
    assert [int(p.stem) for p in wal.files()] == [3]
    wal.close()


# -- format 2: the checksum covers the length; damage before valid records is corruption ----------
def _offsets(path: Path) -> list[int]:
    """Where each record of a format-2 file starts."""
    data = path.read_bytes()
    pos, out = len(MAGIC), []
    while pos < len(data):
        out.append(pos)
        pos += 8 + int.from_bytes(data[pos : pos + 4], "little")
    return out


def test_a_damaged_length_is_caught_by_the_checksum(tmp_path: Path) -> None:
    wal = _write(tmp_path, 3)
    (path,) = wal.files()
    data = bytearray(path.read_bytes())
    last = _offsets(path)[-1]
    data[last] ^= 0x01  # the last record claims one byte less (or more): same body, wrong length
    path.write_bytes(bytes(data))
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1, 2]


@pytest.mark.parametrize("field", [0, 4, 9])  # the length, the checksum, the body
def test_damage_before_valid_records_refuses_to_open_and_cuts_nothing(tmp_path: Path, field: int) -> None:
    wal = _write(tmp_path, 4)
    (path,) = wal.files()
    second = _offsets(path)[1]
    data = bytearray(path.read_bytes())
    data[second + field] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptionError, match=f"byte {second}") as info:
        list(wal.replay(after_seq=0))
    assert info.value.details == {"file": str(path), "offset": second}
    assert path.read_bytes() == bytes(data)  # the valid records after it are still there


def test_a_failed_append_is_rolled_back_and_the_next_one_survives(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.open_for_append(1)
    wal.append({"seq": 1, "op": "upsert", "blob": b"a" * 100})
    size = wal.files()[0].stat().st_size
    with fsio.inject(fsio.FaultPlan("write", 1, errno.ENOSPC)), pytest.raises(WriteNotDurable):
        wal.append({"seq": 2, "op": "upsert", "blob": b"b" * 10_000})  # half of it reaches the file
    assert wal.files()[0].stat().st_size == size  # cut back to the last good record
    wal.append({"seq": 2, "op": "delete"})
    wal.close()
    assert [(r["seq"], r["op"]) for r in wal.replay(after_seq=0)] == [(1, "upsert"), (2, "delete")]


def test_a_failed_fsync_cuts_the_record_and_refuses_further_appends(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.open_for_append(1)
    wal.append({"seq": 1, "op": "upsert"})
    with fsio.inject(fsio.FaultPlan("fsync", 1, errno.EIO)), pytest.raises(CollectionFailed):
        wal.append({"seq": 2, "op": "upsert"})
    with pytest.raises(CollectionFailed, match="refuses writes"):
        wal.append({"seq": 2, "op": "delete"})  # never written over a failed fsync
    wal.close()
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1]


def test_a_failed_rollback_fails_the_log(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    wal.open_for_append(1)
    fail_two = fsio.FaultPlan("any", 1, errno.ENOSPC, count=2)  # the write, then the truncate
    with fsio.inject(fail_two) as plan, pytest.raises(CollectionFailed, match="rolling back failed too"):
        wal.append({"seq": 1, "op": "upsert", "blob": b"x" * 1000})
    assert [kind for kind, _ in plan.fired] == ["write", "truncate"]
    assert wal.broken is not None
    with pytest.raises(CollectionFailed):
        wal.append({"seq": 1, "op": "upsert"})
    wal.close()


def test_a_torn_file_header_is_an_empty_file(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path)
    path = tmp_path / f"{1:020d}.log"
    path.write_bytes(MAGIC[:3])  # a crash while the header of a new file was written
    assert list(wal.replay(after_seq=0)) == []
    wal.open_for_append(1)
    wal.append({"seq": 1, "op": "upsert"})
    wal.close()
    assert path.read_bytes().startswith(MAGIC)
    assert [r["seq"] for r in wal.replay(after_seq=0)] == [1]
