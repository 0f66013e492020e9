"""Offline evaluation: IR metrics with trec_eval's definitions (`evaluate`) and the statistics that
compare two runs on the same queries (`compare`, `paired_test`, `bootstrap_ci`, `holm`); gold sets,
the history and continuous evaluation are in the submodules. See docs/evaluation.md."""

from __future__ import annotations

from vectorforge.extras import missing_extra

with missing_extra("evaluation"):
    from vectorforge.evaluation.metrics import METRICS, evaluate
    from vectorforge.evaluation.stats import PairedTest, bootstrap_ci, compare, holm, paired_test

__all__ = ["METRICS", "PairedTest", "bootstrap_ci", "compare", "evaluate", "holm", "paired_test"]
