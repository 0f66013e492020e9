"""A small real SciFact collection (MiniLM, 400 abstracts holding every relevant one of 80 test
claims) and its gold set, shared by the evaluation tests; and a real local webhook receiver."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import vectorforge as vf
from tests.cli.conftest import (
    BIN,
    cli,  # noqa: F401 - the real binary, for the eval commands' tests
    cli_env,
)
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


def interrupted_command(scifact_small: SciFactSmall, tmp_path: Path, *command: str) -> tuple[Path, int, str]:
    """Copy the collection, import a gold set of 16,000 queries (each real query 200 times), run
    `vectorforge COMMAND -d DATA -c sci -g many`, send SIGINT once it is searching: (data folder,
    exit code, stderr)."""
    data = tmp_path / "data"
    shutil.copytree(scifact_small.data, data)
    gold = scifact_small.goldset
    many = {f"{q}-{i}": q for q in gold.judged for i in range(200)}
    lines = [json.dumps({"id": c, "text": gold.queries[q], "qrels": gold.qrels[q]}) for c, q in many.items()]
    (tmp_path / "many.jsonl").write_text("\n".join(lines) + "\n")
    env = cli_env()
    imported = subprocess.run(
        [str(BIN), "goldset", "import", "many", "-d", str(data), "--jsonl", str(tmp_path / "many.jsonl")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    proc = subprocess.Popen(
        [str(BIN), *command, "-d", str(data), "-c", "sci", "-g", "many"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "searching many" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.read(1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    return data, proc.returncode, seen + rest
