"""Fixtures of the fine-tuning tests: the evaluation tests' MiniLM SciFact collection, a local
OpenAI-compatible server in its own process, and a small SciFact collection with BM25 beside the
dense vector holding the passages whose LLM answers are recorded."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import vectorforge as vf
from tests.evaluation.conftest import scifact_small  # noqa: F401 - the real MiniLM collection to mine from
from tests.models.conftest import two_models  # noqa: F401 - MiniLM saved again, and a noisy copy
from vectorforge.datasets import load_beir

HERE = Path(__file__).parent
N_DOCS = 200


@dataclass
class LLMServer:
    """The running server: its base URL (what LLMConfig.base_url takes) and its admin endpoints."""

    base_url: str

    def faults(self, **settings: Any) -> None:
        httpx.post(f"{self.root}/admin/faults", json=settings).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.root}/admin/stats").json()
        return answer

    def reset(self) -> None:
        httpx.post(f"{self.root}/admin/reset").raise_for_status()

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")


@pytest.fixture(scope="session")
def llm_process() -> Iterator[LLMServer]:
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(HERE / "llm_server.py"), "--port", str(port)])
    server = LLMServer(f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + 30
    while True:
        try:
            server.stats()
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("the local LLM server did not start")
            time.sleep(0.1)
    yield server
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def llm(llm_process: LLMServer) -> LLMServer:
    """The local LLM server, with its counters and faults reset for this test."""
    llm_process.reset()
    return llm_process


@dataclass
class RecordedSciFact:
    data: Path  # collections "sci" (all the passages) and "rec" (the recorded ones), MiniLM and "bm25"
    recorded: dict[str, str]  # the passages (doc id -> "title text") whose answers are recorded
    corpus: dict[str, str]  # every passage of the collection


@pytest.fixture(scope="session")
def recorded_scifact(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> RecordedSciFact:
    ds = load_beir(shared / "data" / "scifact", split=None)
    rows = json.loads((HERE / "data" / "llm_recorded.json").read_text())["answers"].values()
    recorded = {row["doc"]: ds.doc_text(row["doc"]) for row in rows}
    others = [d for d in ds.corpus if d not in recorded]
    random.Random(0).shuffle(others)
    docs = list(recorded) + others[: N_DOCS - len(recorded)]
    corpus = {d: ds.doc_text(d) for d in docs}
    data = tmp_path_factory.mktemp("llm") / "data"
    with vf.connect(data) as db:
        col = db.create_collection("sci", embedder="minilm", sparse={"bm25": vf.Sparse()})
        col.add(list(corpus.values()), ids=docs, payloads=[{"title": ds.corpus[d]["title"]} for d in docs])
        only = db.create_collection("rec", embedder="minilm", sparse={"bm25": vf.Sparse()})
        only.add(
            list(recorded.values()),
            ids=list(recorded),
            payloads=[{"title": ds.corpus[d]["title"]} for d in recorded],
        )
    return RecordedSciFact(data, recorded, corpus)
