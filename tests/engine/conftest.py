"""Fixtures for the engine tests: a database in memory and one on disk, both closed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import vectorforge as vf


@pytest.fixture
def mem_db() -> Iterator[vf.Database]:
    db = vf.connect()
    yield db
    db.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The data folder, one level below tmp_path so that writes outside it can be detected."""
    return tmp_path / "data"


@pytest.fixture
def disk_db(data_dir: Path) -> Iterator[vf.Database]:
    db = vf.connect(data_dir)
    yield db
    db.close()


@pytest.fixture(params=["memory", "disk"])
def any_db(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[vf.Database]:
    db = vf.connect() if request.param == "memory" else vf.connect(data_dir)
    yield db
    db.close()
