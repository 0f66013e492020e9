from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import vectorforge as vf

CLI = [sys.executable, "-m", "vectorforge.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_import_info_search(tmp_path: Path, shared: Path) -> None:
    data = tmp_path / "vf-data"
    out = run(
        "import",
        "--data",
        str(data),
        "--collection",
        "sci",
        "--beir",
        str(shared / "data" / "scifact"),
        "--limit",
        "40",
        "--batch-size",
        "16",
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "imported 40 documents" in out.stdout
    info = run("info", "--data", str(data))
    assert info.returncode == 0 and "sci" in info.stdout and "40" in info.stdout
    with vf.connect(data) as db:
        col = db.get_collection("sci")
        first = col.scroll(limit=1).records[0]
        assert first.payload is not None and first.payload["title"]
        title = first.payload["title"]
    found = run("search", "--data", str(data), "--collection", "sci", "-k", "3", title)
    assert found.returncode == 0, found.stderr
    assert str(first.id) in found.stdout


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    vf.connect(tmp_path / "d").close()
    out = run("info", "--data", str(tmp_path / "d"), "--collection", "../etc")
    assert out.returncode == 2
    assert "not allowed" in out.stderr and "Traceback" not in out.stdout + out.stderr
    missing = run("search", "--data", str(tmp_path / "d"), "--collection", "nope", "hello")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert not (tmp_path.parent / "etc").exists()


def _sharded(data: Path, n: int) -> list[tuple[object, object]]:
    import numpy as np

    with vf.connect(data) as db:
        col = db.create_collection("c", dim=8, index="flat", shards=2, replicas=2)
        vectors = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)
        col.upsert(list(range(n)), vectors, [{"i": i} for i in range(n)])
        return [(r.id, r.payload) for r in col.scroll(limit=10_000).records]


def test_reshard_from_the_shell(tmp_path: Path) -> None:
    data = tmp_path / "vf-data"
    before = _sharded(data, 500)
    out = run("reshard", "--data", str(data), "-c", "c", "--shards", "5")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "2 -> 5 shards, 500 points" in out.stdout
    info = run("info", "--data", str(data))
    assert info.returncode == 0 and "│ 5 " in info.stdout  # the shards column
    with vf.connect(data) as db:
        col = db.get_collection("c")
        assert col.info()["shards"] == 5
        assert [(r.id, r.payload) for r in col.scroll(limit=10_000).records] == before
    bad = run("reshard", "--data", str(data), "-c", "c", "--shards", "0")
    assert bad.returncode == 2 and "shards must be" in bad.stderr


def test_ctrl_c_during_a_reshard_leaves_the_collection_as_it_was(tmp_path: Path) -> None:
    import signal
    import time

    data = tmp_path / "vf-data"
    before = _sharded(data, 6000)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    args = ["reshard", "--data", str(data), "-c", "c", "--shards", "4", "--batch-size", "2"]
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    folder = data / "collections" / "c"
    deadline = time.monotonic() + 60
    while not list((folder / "shards-1").glob("*/replicas/*/wal")) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # some batches copied, far from all (3,000 batches of 2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr + stdout
    assert "interrupted" in stdout and "unchanged (2 shards)" in stdout
    assert not (folder / "shards-1").exists()  # the half-filled layout is gone
    with vf.connect(data) as db:
        col = db.get_collection("c")
        assert col.info()["shards"] == 2
        assert [(r.id, r.payload) for r in col.scroll(limit=10_000).records] == before
