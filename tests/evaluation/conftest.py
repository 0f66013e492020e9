"""A small real SciFact collection (MiniLM, 400 abstracts holding every relevant one of 80 test
claims) and its gold set, shared by the evaluation tests; and a real local webhook receiver."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import vectorforge as vf
from tests.cli.conftest import cli  # noqa: F401 - the real binary, for the eval commands' tests
from vectorforge.datasets import load_beir
from vectorforge.evaluation.goldsets import GoldSet, from_beir, segments_by_length

N_QUERIES, N_DOCS = 80, 400


@dataclass
class SciFactSmall:
    data: Path  # a data folder holding collection "sci"
    goldset: GoldSet
    queries_jsonl: Path  # the same gold set as JSONL, with a `half` field to segment by


@pytest.fixture(scope="session")
def scifact_small(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> SciFactSmall:
    ds = load_beir(shared / "data" / "scifact", split="test")
    full = from_beir(shared / "data" / "scifact", name="sci")
    qids = sorted(full.qrels)[:N_QUERIES]
    relevant = sorted({d for q in qids for d in full.qrels[q]})
    others = [d for d in ds.corpus if d not in set(relevant)]
    random.Random(0).shuffle(others)
    docs = relevant + others[: N_DOCS - len(relevant)]
    data = tmp_path_factory.mktemp("eval") / "data"
    with vf.connect(data) as db:
        col = db.create_collection("sci", embedder="minilm", index="hnsw")
        col.add(
            [ds.doc_text(d) for d in docs],
            ids=docs,
            payloads=[{"n": i, "half": i % 2} for i in range(len(docs))],
        )
    gold = GoldSet("sci", {q: full.queries[q] for q in qids}, {q: dict(full.qrels[q]) for q in qids})
    gold = gold.with_segments("length", segments_by_length(dict(gold.queries)))
    jsonl = data.parent / "sci.jsonl"
    with open(jsonl, "w") as f:
        for i, q in enumerate(qids):
            row = {"id": q, "text": gold.queries[q], "qrels": gold.qrels[q], "half": "ab"[i % 2]}
            f.write(json.dumps(row) + "\n")
    return SciFactSmall(data, gold, jsonl)


HIDE_HALF = {"must": [{"key": "half", "match": 1}]}
"""A search configuration mistake that hides half the corpus: a degraded system."""


@dataclass
class Receiver:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    """A real HTTP server on loopback that records the JSON bodies POSTed to it."""
    receiver = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if receiver.fail_first > 0:
                receiver.fail_first -= 1
                self.send_response(500)
            else:
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
