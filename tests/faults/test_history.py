"""Randomized histories of a replicated, sharded collection under faults (see history.py): no
acknowledged write missing, no failed write present, no duplicate, strong reads never going back,
replicas equal after repair. A longer run is bench/faults.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.history import run_history

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_history_under_faults_has_no_anomaly(tmp_path: Path, seed: int) -> None:
    report = run_history(tmp_path / "d", seed, operations=250)
    assert report.anomalies == [], "\n".join(report.anomalies)
    assert report.outcomes["ok"] > 50 and report.reads > 20
    assert sum(report.faults.values()) > 20
