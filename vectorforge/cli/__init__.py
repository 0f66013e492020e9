"""`vectorforge ...`: the command line for the whole life of a collection.

`vectorforge.cli:app` is the console script; `python -m vectorforge.cli` runs the same app.
"""

from __future__ import annotations

import os

# Set before transformers or huggingface_hub are imported: a command shows one line while a model
# loads ("loading model ..."), not their weight-loading bars and advisories. setdefault: a user's
# own settings win.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from vectorforge.cli.main import app  # after the environment above

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry point
    app()
