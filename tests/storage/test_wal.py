from __future__ import annotations

from pathlib import Path

import pytest

from vectorforge.errors import CorruptionError
from vectorforge.storage import WriteAheadLog


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
