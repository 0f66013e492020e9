"""Data folders written by the previous release open and answer the same (format-1 logs included)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np

import vectorforge as vf
from vectorforge.storage import WriteAheadLog
from vectorforge.storage.wal import MAGIC

FIXTURE = Path(__file__).parent.parent / "fixtures" / "release-0.1.0.tar.gz"


def _unpack(tmp_path: Path) -> tuple[Path, dict[str, dict[str, object]]]:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp_path, filter="data")
    return tmp_path / "data", json.loads((tmp_path / "answers.json").read_text())


def _answers(col: object) -> dict[str, object]:
    vectors = np.random.default_rng(7).standard_normal((300, 16)).astype("float32")
    return {
        "count": col.count(),  # type: ignore[attr-defined]
        "even": col.count(filter={"must": [{"key": "tag", "match": "even"}]}),  # type: ignore[attr-defined]
        "get": [[r.id, r.payload] for r in col.get([0, 3, 7, 299, 119])],  # type: ignore[attr-defined]
        "search": [[h.id, round(h.score, 5)] for h in col.search(vectors[11], k=5)],  # type: ignore[attr-defined]
    }


def test_a_folder_of_the_previous_release_answers_the_same(tmp_path: Path) -> None:
    data, answers = _unpack(tmp_path)
    with vf.connect(str(data)) as db:
        for name in ("plain", "sharded"):
            assert _answers(db.get_collection(name)) == answers[name], name


def test_writes_after_a_format_1_log_go_to_a_new_file_and_survive(tmp_path: Path) -> None:
    data, answers = _unpack(tmp_path)
    wal = data / "collections" / "plain" / "wal"
    (old,) = list(wal.iterdir())
    assert not old.read_bytes().startswith(MAGIC)  # the fixture really is format 1
    with vf.connect(str(data)) as db:
        db.get_collection("plain").upsert([1000], np.ones((1, 16), dtype="float32"), [{"n": 1000}])
        newest = sorted(wal.iterdir())[-1]
        assert newest != old and newest.read_bytes().startswith(MAGIC)
    with vf.connect(str(data)) as db:
        col = db.get_collection("plain")
        assert col.count() == int(answers["plain"]["count"]) + 1  # type: ignore[call-overload]
        assert col.get([1000])[0].payload == {"n": 1000}


def test_format_1_records_replay(tmp_path: Path) -> None:
    data, _ = _unpack(tmp_path)
    log = WriteAheadLog(data / "collections" / "plain" / "wal")
    assert [r["op"] for r in log.replay(after_seq=0)][-2:] == ["delete", "upsert"]
