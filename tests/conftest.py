from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Test Ray clusters stay on loopback and need no token; both must be set before Ray is imported.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "disabled"

REPO = Path(__file__).resolve().parent.parent


def shared_path() -> Path:
    """The shared data folder: $VECTORFORGE_SHARED or ../shared next to the repository."""
    return Path(os.environ.get("VECTORFORGE_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_path()
    if not (path / "data" / "scifact" / "corpus.jsonl").is_file():
        pytest.fail(
            f"shared data not found at {path}; set VECTORFORGE_SHARED to the folder holding data/scifact"
        )
    return path
