"""Fixtures for the engine tests: a database in memory and one on disk, both closed at teardown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import vectorforge as vf
from tests.serverproc import ServerProcess, start_server


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


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real server process for the session; each test cleans up its collections."""
    server = start_server(tmp_path_factory.mktemp("server") / "data")
    yield server
    server.stop()


@pytest.fixture(params=["memory", "disk", "remote"])
def any_db(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[vf.Database]:
    """The same API three ways: in memory, on disk, and over HTTP through a real server."""
    if request.param == "remote":
        server = request.getfixturevalue("api_server")
        db = vf.connect(server.url)
        yield db  # type: ignore[misc]
        for name in db.list_collections():
            db.delete_collection(name)
        db.close()
        return
    db = vf.connect() if request.param == "memory" else vf.connect(data_dir)
    yield db
    db.close()
