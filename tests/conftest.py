from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# A harness that starts the suite in the background leaves SIGINT ignored (POSIX shells do so for
# asynchronous commands, and an ignored signal stays ignored across exec): every Ctrl-C test, here
# and in the processes it starts, would then wait for an interrupt that never comes. Take the
# default back (a caught signal is reset to the default in children).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
