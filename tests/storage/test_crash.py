"""Kill a writer with SIGKILL at random moments; every acknowledged write must survive, no partial batch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from tests.storage.crash_writer import DIM, batch_vectors

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = int(os.environ.get("VF_CRASH_ROUNDS", "20"))


def _run_and_kill(data: Path, rnd: int, rng: random.Random) -> list[str]:
    """Start the writer, kill it after a random delay; return the lines it printed."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(data), str(rnd), str(rng.randrange(2**31))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 60
    while "ready\n" not in lines:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"writer did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.01)
    time.sleep(rng.uniform(0.05, 1.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    return [line.strip() for line in lines]


def _delete_in_flight(name: str, acked_up: dict[str, int]) -> bool:
    """The writer deletes batch b right after batch b+3 is acknowledged (see crash_writer.py)."""
    rnd, b = name[1:].split("b")
    return f"r{rnd}b{int(b) + 3}" in acked_up and int(b) % 5 == 1


@pytest.mark.slow
def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(1234)
    data = tmp_path / "data"
    acked_up: dict[str, int] = {}
    acked_del: set[str] = set()
    total_acks = 0
    for rnd in range(ROUNDS):
        for line in _run_and_kill(data, rnd, rng):
            parts = line.split()
            if parts[:2] == ["ack", "up"]:
                acked_up[parts[2]] = int(parts[3])
                total_acks += 1
            elif parts[:2] == ["ack", "del"]:
                acked_del.add(parts[2])
        with vf.connect(data) as db:
            col = db.get_collection("c")
            present: dict[str, list[int]] = defaultdict(list)
            cursor = None
            while True:
                page = col.scroll(limit=1000, cursor=cursor, with_vectors=True)
                for rec in page.records:
                    assert rec.payload is not None
                    present[rec.payload["batch"]].append(rec.payload["i"])
                    name, i = str(rec.id).rsplit("-", 1)
                    assert name == rec.payload["batch"] and int(i) == rec.payload["i"]
                    expected = batch_vectors(name)[int(i)]
                    np.testing.assert_allclose(rec.vector, expected, rtol=1e-6)
                cursor = page.next_cursor
                if cursor is None:
                    break
            for name, n in acked_up.items():
                rows = sorted(present.get(name, []))
                if name in acked_del:
                    assert not rows, f"deleted batch {name} came back"
                elif _delete_in_flight(name, acked_up):
                    # its delete was sent but not acknowledged when the writer died: all or nothing
                    assert rows in ([], list(range(n))), f"batch {name} partly deleted"
                else:
                    assert rows == list(range(n)), f"acknowledged batch {name} incomplete"
            for name, rows in present.items():
                # a batch that was being written at the kill is all there or not there at all
                assert sorted(rows) == list(range(len(rows))) and len(rows) in (
                    acked_up.get(name, len(rows)),
                )
            assert col.count() == sum(len(r) for r in present.values())
            hits = col.search(np.zeros(DIM, dtype=np.float32), k=5, params={"exact": True})
            assert len(hits) == min(5, col.count())
    assert total_acks > ROUNDS  # the writer really got work acknowledged before being killed
