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
    out = run("info", "--data", str(tmp_path / "d"), "--collection", "../etc")
    assert out.returncode == 2
    assert "not allowed" in out.stdout and "Traceback" not in out.stdout + out.stderr
    missing = run("search", "--data", str(tmp_path / "d"), "--collection", "nope", "hello")
    assert missing.returncode == 2 and "does not exist" in missing.stdout
    assert not (tmp_path.parent / "etc").exists()
