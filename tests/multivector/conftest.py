from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vectorforge as vf
from tests.inprocess import InProcessTransport
from vectorforge.datasets import load_beir
from vectorforge.multivector.colbert import ColBERTEncoder
from vectorforge.remote import RemoteDatabase
from vectorforge.server.app import create_app
from vectorforge.server.deps import ServerSettings


@pytest.fixture(scope="session")
def scifact_docs(shared: Path) -> dict[str, str]:
    """20 SciFact abstracts by id."""
    ds = load_beir(shared / "data" / "scifact", split=None)
    return {d: ds.doc_text(d) for d in list(ds.corpus)[:20]}


@pytest.fixture(scope="session")
def pca_encoder(scifact_docs: dict[str, str]) -> ColBERTEncoder:
    """A ColBERT over the bundled MiniLM, projection by PCA of the 20 abstracts' tokens (no cache)."""
    return ColBERTEncoder.from_base(pca_texts=list(scifact_docs.values()), name="colbert-test", cache=False)


@pytest.fixture(params=["disk", "sharded", "http"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A database embedded on disk, sharded in two, or over HTTP to an in-process server."""
    if request.param == "http":
        served = vf.connect(tmp_path / "served")
        remote = RemoteDatabase(
            "http://in-process",
            transport=InProcessTransport(create_app(ServerSettings(served, None, require_keys=False))),
        )
        yield remote
        remote.close()
        served.close()
        return
    database = vf.connect(tmp_path / "data")
    database.shards = 2 if request.param == "sharded" else 1  # type: ignore[attr-defined]
    yield database
    database.close()
