"""A real server with API keys for the hostile-input suite, and helpers to build hostile snapshots."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import create_key
from tests.serverproc import ServerProcess, start_server

DIM = 4


@dataclass
class Hostile:
    """One server (1 MiB body limit, so restores may unpack 4 MiB) and an admin key."""

    server: ServerProcess
    root: Path
    admin: str

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=self.headers(), timeout=60, **kwargs)

    def restore(self, name: str, data: bytes) -> httpx.Response:
        return self.call("POST", f"/collections/{name}/restore", content=data)

    def listed(self) -> list[str]:
        return list(self.call("GET", "/collections").json()["collections"])

    def folders(self) -> list[str]:
        return sorted(p.name for p in (self.root / "collections").iterdir())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    root = tmp_path_factory.mktemp("hostile") / "data"
    root.mkdir(parents=True)
    _, admin = create_key(root, "admin")
    server = start_server(root, "--max-body-mb", "1")
    yield Hostile(server, root, admin)
    server.stop()


def members(data: bytes) -> dict[str, bytes]:
    """A tar's files (not its folders) by name, in order."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[m.name] = f.read()
    return out


def pack(files: dict[str, bytes], mode: str = "w", dirs: list[str] | None = None) -> bytes:
    """A tar of `files` (in order), optionally compressed (mode "w:gz")."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:  # type: ignore[call-overload]
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for name in dirs or []:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    return buffer.getvalue()
