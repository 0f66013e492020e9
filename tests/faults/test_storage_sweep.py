"""The storage fault sweep: every disk call of an upsert, a delete, a seal, a flush, a compaction
and a snapshot is failed in turn, each in a fresh folder (cases in storage_cases.py).

Each case runs twice: here, closing the database afterwards, and in a worker process that dies
without closing anything (a crash). Then a fresh process reopens every folder and the test checks
that every acknowledged write is there, no failed one is, the log's sequence numbers are unique and
increasing, the collection takes writes again, and an acknowledged snapshot restores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.storage_cases import listing, sweep

HERE = Path(__file__).parent


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HERE / script), *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_every_disk_call_of_every_write_can_fail(tmp_path: Path) -> None:
    closed = listing(sweep(tmp_path / "closed", close=True))
    worker = _run("sweep_worker.py", str(tmp_path / "crashed"), str(tmp_path / "crashed.json"))
    assert worker.returncode == 0, worker.stderr[-4000:]
    cases = closed + json.loads((tmp_path / "crashed.json").read_text())
    outcomes = {c["outcome"] for c in cases}
    assert {"ok", "WriteNotDurable", "CollectionFailed"} <= outcomes, outcomes  # every path was taken
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    # Reopened in a fresh process: nothing of the writer's memory can hide a loss.
    checked = _run("check_folders.py", str(tmp_path / "cases.json"))
    assert checked.returncode == 0, checked.stderr[-4000:]
    seen = [json.loads(line) for line in checked.stdout.splitlines()]
    assert len(seen) == len(cases) > 200
    for case, after in zip(cases, seen, strict=True):
        name = f"{case['name']} ({case['outcome']})"
        assert after["error"] is None, f"{name}: does not reopen: {after['error']}"
        assert after["points"] == case["model"], f"{name}: the reopened collection differs"
        seqs = after["seqs"]
        assert seqs == sorted(set(seqs)), f"{name}: log sequence numbers repeat: {seqs}"
        assert after["write_again"] == "ok", f"{name}: {after['write_again']}"
        if case["snapshot"]:
            model = {k: v for k, v in case["model"].items() if k != "50"}  # type: ignore[union-attr]
            assert after["snapshot"] == model, f"{name}: the snapshot restores to something else"
