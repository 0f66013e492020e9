from __future__ import annotations

from tests.evaluation.conftest import scifact_small  # noqa: F401 - the real MiniLM collection to mine from
