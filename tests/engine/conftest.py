"""Fixtures for the engine tests: a database in memory and one on disk, both closed at teardown."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import vectorforge as vf
from tests.inprocess import InProcessTransport
from tests.serverproc import ServerProcess, start_server
from vectorforge.remote import RemoteDatabase
from vectorforge.server.app import create_app
from vectorforge.server.deps import ServerSettings


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


class ShardedByDefault:
    """A real clustered database whose collections default to 2 shards x 2 replicas, so that the
    same API tests run on a sharded, replicated collection too."""

    def __init__(self, db: vf.Database) -> None:
        self._db = db

    def create_collection(self, name: str, *args: object, **options: object) -> object:
        options.setdefault("shards", 2)
        options.setdefault("replicas", 2)
        return self._db.create_collection(name, *args, **options)  # type: ignore[arg-type]

    def get_or_create_collection(self, name: str, **options: object) -> object:
        options.setdefault("shards", 2)
        options.setdefault("replicas", 2)
        return self._db.get_or_create_collection(name, **options)  # type: ignore[arg-type]

    def __getattr__(self, attr: str) -> object:
        return getattr(self._db, attr)


@pytest.fixture(params=["memory", "disk", "remote", "in-process", "sharded"])
def any_db(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[vf.Database]:
    """The same API five ways: in memory, on disk, over HTTP through a real server, through the
    client and the app in this process, and sharded."""
    if request.param == "in-process":
        with _in_process(data_dir) as client:
            yield client  # type: ignore[misc]
        return
    if request.param == "sharded":
        db = vf.connect(data_dir)
        yield ShardedByDefault(db)  # type: ignore[misc]
        db.close()
        return
    if request.param == "remote":
        server = request.getfixturevalue("api_server")
        db = vf.connect(server.url)
        yield db  # type: ignore[misc]
        for alias in db.list_aliases():  # aliases first: a collection they point at is not deleted
            db.delete_alias(alias)
        for name in db.list_collections():
            db.delete_collection(name)
        db.close()
        return
    db = vf.connect() if request.param == "memory" else vf.connect(data_dir)
    yield db
    db.close()


@pytest.fixture(params=["memory", "disk", "remote", "in-process"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[vf.DatabaseAPI]:
    """A plain collection's database four ways: in memory, on disk, over HTTP to a real server
    process, and through the same client and app in this process (an httpx transport that calls
    the ASGI app: no socket, the server's code under the same debugger and coverage)."""
    if request.param == "in-process":
        with _in_process(tmp_path / "served") as client:
            yield client
        return
    if request.param == "remote":
        server = request.getfixturevalue("api_server")
        remote = vf.connect(server.url)
        yield remote
        for alias in remote.list_aliases():
            remote.delete_alias(alias)
        for name in remote.list_collections():
            remote.delete_collection(name)
        remote.close()
        return
    local = vf.connect(str(tmp_path / "d") if request.param == "disk" else None)
    yield local
    local.close()


@contextlib.contextmanager
def _in_process(folder: Path) -> Iterator[RemoteDatabase]:
    """The HTTP client against the app serving a database in `folder`, both in this process."""
    served = vf.connect(folder)
    client = RemoteDatabase(
        "http://in-process",
        transport=InProcessTransport(create_app(ServerSettings(served, None, require_keys=False))),
    )
    try:
        yield client
    finally:
        client.close()
        served.close()
