"""Run the installed `vectorforge` console script (the real binary) in a scratch folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

BIN = Path(sys.executable).parent / "vectorforge"  # installed by `pip install -e .` next to python

Run = Callable[..., subprocess.CompletedProcess[str]]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VECTORFORGE_DATA"}
    return {**env, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **extra}


@pytest.fixture
def cli(tmp_path: Path) -> Run:
    """`cli("collections", "list")`: run the binary in tmp_path (so ./vf-data is the test's own)."""
    if not BIN.is_file():
        pytest.fail(f"{BIN} is missing: install the package (make setup)")

    def run(
        *args: str | Path, env: dict[str, str] | None = None, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(BIN), *map(str, args)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=cli_env(**(env or {})),
            timeout=120,
            stdin=subprocess.DEVNULL,
            **options,
        )
        assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
        return done

    return run
