"""Offline evaluation: IR metrics with trec_eval's definitions (gold sets, continuous evaluation and
the rest of issue 11 come next)."""

from __future__ import annotations

from vectorforge.evaluation.metrics import METRICS, evaluate

__all__ = ["METRICS", "evaluate"]
