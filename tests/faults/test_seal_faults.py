"""A seal that fails on an IVF collection leaves it taking writes (before: wedged, every upsert
raised, and yet all of them were there after a restart)."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

import vectorforge as vf
from vectorforge.index.ivfpq import MIN_TRAIN_ROWS
from vectorforge.storage import fsio

DIM = 8


@pytest.mark.parametrize("index", ["ivfpq", "ivfflat"])
def test_a_failed_seal_of_an_ivf_segment_keeps_it_taking_writes(tmp_path: Path, index: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((MIN_TRAIN_ROWS + 200, DIM)).astype("float32")
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("c", dim=DIM, index=index, max_segment_points=MIN_TRAIN_ROWS)
        col.upsert(list(range(MIN_TRAIN_ROWS - 1)), vectors[: MIN_TRAIN_ROWS - 1])
        # The upsert that fills the segment trains the IVF index; writing the segment then fails.
        with fsio.inject(fsio.FaultPlan("write", 2, errno.ENOSPC)) as plan:
            col.upsert([MIN_TRAIN_ROWS - 1], vectors[MIN_TRAIN_ROWS - 1 : MIN_TRAIN_ROWS])
        assert plan.fired and "segments" in plan.fired[0][1]
        assert col.info()["seal_error"] is not None
        for i in range(MIN_TRAIN_ROWS, MIN_TRAIN_ROWS + 200):  # not wedged: every write is taken
            col.upsert([i], vectors[i : i + 1])
        assert col.count() == MIN_TRAIN_ROWS + 200
        hits = col.search(vectors[MIN_TRAIN_ROWS + 100], k=1, params={"exact": True})
        assert hits[0].id == MIN_TRAIN_ROWS + 100
        col.flush()  # the seal now succeeds
        assert col.info()["seal_error"] is None
    with vf.connect(tmp_path / "d") as db:
        col = db.get_collection("c")
        assert col.count() == MIN_TRAIN_ROWS + 200
        assert col.search(vectors[7], k=1)[0].id == 7
