"""`vectorforge points import|export` through the installed console script: every format, the
errors, interrupting an import (SIGKILL, Ctrl-C) and resuming it, and one line while a model loads."""

from __future__ import annotations

import csv
import importlib.util
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vectorforge as vf
from tests.cli.conftest import BIN, Run, cli_env


def _records(data: Path, name: str) -> dict[Any, tuple[dict[str, Any] | None, list[float] | None]]:
    with vf.connect(data) as db:
        page = db.get_collection(name).scroll(limit=10_000, with_vectors=True)
        return {r.id: (r.payload, r.vector) for r in page.records}


def _create(cli: Run, name: str, *options: str) -> None:
    done = cli("collections", "create", name, *options)
    assert done.returncode == 0, done.stderr


def test_import_jsonl_ids_payloads_and_nested_payload(cli: Run, tmp_path: Path) -> None:
    rows = [
        {"id": 1, "vector": [1, 0, 0], "lang": "en"},
        {"id": "doc-2", "vector": [0, 1, 0], "payload": {"lang": "de", "n": 2}},
        {"id": 3, "vector": [0, 0, 1], "lang": None, "tags": ["a", "b"]},
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    _create(cli, "docs", "--dim", "3", "--index", "flat")
    done = cli("points", "import", "p.jsonl", "-c", "docs", "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert "imported 3 rows in 2 batches into docs; docs holds 3 points" in done.stdout
    got = _records(tmp_path / "vf-data", "docs")
    assert {k: p for k, (p, _) in got.items()} == {
        1: {"lang": "en"},
        "doc-2": {"lang": "de", "n": 2},
        3: {"tags": ["a", "b"]},
    }
    assert got[1][1] == pytest.approx([1.0, 0.0, 0.0])


def test_import_csv_numbers_text_and_payload_columns(cli: Run, tmp_path: Path) -> None:
    with open(tmp_path / "p.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "emb", "zip", "price", "note"])
        w.writerow(["7", "[1, 2]", "007", "1.5", ""])
        w.writerow(["b", "[2, 1]", "10115", "-3", "x"])
    _create(cli, "shop", "--dim", "2", "--index", "flat")
    base = ["points", "import", "p.csv", "-c", "shop", "--id-column", "key", "--vector-column", "emb"]
    done = cli(*base)
    assert done.returncode == 0, done.stderr
    got = _records(tmp_path / "vf-data", "shop")
    assert {k: p for k, (p, _) in got.items()} == {
        7: {"zip": "007", "price": 1.5},  # "007" stays text; an empty cell is left out
        "b": {"zip": 10115, "price": -3, "note": "x"},
    }
    again = cli(*base, "--payload-columns", "price")  # other options: another import, written again
    assert again.returncode == 0 and "skipped" not in again.stdout
    assert _records(tmp_path / "vf-data", "shop")[7][0] == {"price": 1.5}


def test_import_npy_ids_are_row_numbers(cli: Run, tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).standard_normal((25, 4)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    _create(cli, "vec", "--dim", "4", "--metric", "dot", "--index", "flat")
    done = cli("points", "import", "v.npy", "-c", "vec", "--batch-size", "10")
    assert done.returncode == 0 and "imported 25 rows in 3 batches" in done.stdout, done.stderr
    got = _records(tmp_path / "vf-data", "vec")
    assert sorted(got) == list(range(25))
    assert np.allclose([got[i][1] for i in range(25)], vectors, atol=1e-6)
    np.save(tmp_path / "flat.npy", np.arange(4.0))
    flat = cli("points", "import", "flat.npy", "-c", "vec")
    assert flat.returncode == 2 and "2-D array" in flat.stderr


def test_parquet_needs_pyarrow(cli: Run, tmp_path: Path) -> None:
    _create(cli, "docs", "--dim", "2", "--index", "flat")
    if importlib.util.find_spec("pyarrow") is None:
        (tmp_path / "p.parquet").write_bytes(b"PAR1 not really")
        done = cli("points", "import", "p.parquet", "-c", "docs")
        assert done.returncode == 2
        assert "reading Parquet needs pyarrow, which is not installed" in done.stderr
        assert "pip install pyarrow" in done.stderr
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [1, 2], "vector": [[1.0, 0.0], [0.0, 1.0]], "lang": ["en", "de"]})
    pq.write_table(table, tmp_path / "p.parquet")
    done = cli("points", "import", "p.parquet", "-c", "docs")
    assert done.returncode == 0, done.stderr
    assert {k: p for k, (p, _) in _records(tmp_path / "vf-data", "docs").items()} == {
        1: {"lang": "en"},
        2: {"lang": "de"},
    }


def test_rows_without_ids_get_the_same_ids_on_every_run(cli: Run, tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"vector": [i, 1]}) + "\n" for i in range(5)))
    _create(cli, "docs", "--dim", "2", "--index", "flat")
    first = cli("points", "import", "p.jsonl", "-c", "docs")
    again = cli("points", "import", "p.jsonl", "-c", "docs", "--no-resume")  # written again, same ids
    assert first.returncode == again.returncode == 0
    assert "docs holds 5 points" in again.stdout and "skipped" not in again.stdout
    assert all(isinstance(k, str) and len(k) == 36 for k in _records(tmp_path / "vf-data", "docs"))


def test_export_and_import_round_trip(cli: Run, tmp_path: Path) -> None:
    with vf.connect(tmp_path / "vf-data") as db:
        col = db.create_collection("src", dim=3, index="flat")
        vectors = np.random.default_rng(1).standard_normal((30, 3))
        col.upsert([*range(20), *(f"s{i}" for i in range(10))], vectors, [{"i": i} for i in range(30)])
        db.create_collection("dst", dim=3, index="flat")
    out = cli("points", "export", "-c", "src", "-o", "all.jsonl", "--with-vectors", "--batch-size", "7")
    assert out.returncode == 0 and "exported 30 points of src to all.jsonl" in out.stderr, out.stderr
    back = cli("points", "import", "all.jsonl", "-c", "dst")
    assert back.returncode == 0, back.stderr
    assert _records(tmp_path / "vf-data", "dst") == _records(tmp_path / "vf-data", "src")
    some = cli("points", "export", "-c", "src", "--filter", '{"must": [{"key": "i", "range": {"lt": 2}}]}')
    assert some.returncode == 0
    assert [json.loads(line) for line in some.stdout.splitlines()] == [
        {"id": 0, "payload": {"i": 0}},
        {"id": 1, "payload": {"i": 1}},
    ]


def test_import_errors_speak_cli(cli: Run, tmp_path: Path) -> None:
    _create(cli, "docs", "--dim", "4", "--index", "flat")
    (tmp_path / "three.jsonl").write_text('{"id": 1, "vector": [1, 2, 3]}\n{"id": 2, "vector": [3, 2, 1]}\n')
    (tmp_path / "cols.csv").write_text("id,title,body\n1,a,b\n")
    (tmp_path / "broken.jsonl").write_text('{"id": 1, "vector": [1, 2, 3, 4]}\n{"id": 2,\n')
    (tmp_path / "p.txt").write_text("hello\n")
    cases = [
        (["nope.jsonl"], "error: no such file: nope.jsonl"),
        (["p.txt"], "cannot tell the format of p.txt from its extension"),
        (["cols.csv"], "cols.csv has no vector or text column"),
        (["cols.csv", "--vector-column", "vec"], "--vector-column 'vec' is not a column of cols.csv"),
        (["broken.jsonl"], "broken.jsonl line 2 is not JSON"),
        (["three.jsonl"], "three.jsonl rows 1-2: the vectors have 3 numbers but the collection expects 4"),
        (
            ["cols.csv", "--text-column", "body"],
            "column 'body' holds texts, and collection 'docs' has no embedder",
        ),
    ]
    for args, message in cases:
        done = cli("points", "import", *args, "-c", "docs")
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
    assert "columns found: id, title, body" in cli("points", "import", "cols.csv", "-c", "docs").stderr
    assert (
        "vectorforge collections create NAME --dim 3"
        in cli("points", "import", "three.jsonl", "-c", "docs").stderr
    )
    missing = cli("points", "import", "three.jsonl", "-c", "doc")
    assert missing.returncode == 2 and "did you mean 'docs'?" in missing.stderr
    assert "create it with vectorforge collections create doc --dim 3" in missing.stderr
    with vf.connect(tmp_path / "vf-data") as db:
        assert db.get_collection("docs").count() == 0


def _big_import(tmp_path: Path, n: int) -> list[str]:
    (tmp_path / "big.jsonl").write_text(
        "".join(json.dumps({"id": i, "vector": [1, i % 5, i % 7], "i": i}) + "\n" for i in range(n))
    )
    return [str(BIN), "points", "import", "big.jsonl", "-c", "big", "--batch-size", "5"]


def _wait_for_batches(tmp_path: Path, proc: subprocess.Popen[str]) -> None:
    """Until the collection's log holds a few batches (each write appends to it)."""
    wal = tmp_path / "vf-data" / "collections" / "big" / "wal"
    deadline = time.monotonic() + 60
    while sum(f.stat().st_size for f in wal.glob("*.log")) < 2000 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)


@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_an_interrupted_import_resumes_where_it_stopped(cli: Run, tmp_path: Path, how: str) -> None:
    n = 300  # 60 batches of 5, 0.05 s apart: about 3 s
    args = _big_import(tmp_path, n)
    _create(cli, "big", "--dim", "3", "--index", "flat")
    slow = cli_env(VECTORFORGE_TEST_BATCH_DELAY="0.05")
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=slow, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for_batches(tmp_path, proc)
    proc.send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
    out, errs = proc.communicate(timeout=60)
    if how == "Ctrl-C":  # stops after the batch in flight, says so and how to go on
        assert proc.returncode == 130, out + errs
        assert "interrupted after" in errs and "they are stored" in errs
        assert "vectorforge points import big.jsonl -c big --batch-size 5" in errs
    else:
        assert proc.returncode == -signal.SIGKILL
    with vf.connect(tmp_path / "vf-data") as db:
        landed = db.get_collection("big").count()
    assert 0 < landed < n and landed % 5 == 0  # whole batches only

    done = cli(*args[1:])
    assert done.returncode == 0, done.stderr
    assert f"skipped {landed // 5} batches an earlier run had imported" in done.stdout
    assert f"big holds {n} points" in done.stdout
    got = _records(tmp_path / "vf-data", "big")
    assert sorted(got) == list(range(n))  # every row, once
    assert all(payload == {"i": i} for i, (payload, _) in got.items())


def test_texts_are_embedded_and_a_model_load_is_one_line(cli: Run, tmp_path: Path) -> None:
    texts = ["the cat sat on the mat", "vitamin D and depression", "a recipe for bread", "stock markets fell"]
    (tmp_path / "t.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    )
    _create(cli, "notes", "--embedder", "minilm", "--sparse", "bm25")
    cache = {"VECTORFORGE_CACHE": str(tmp_path / "cache")}  # an empty cache: the model must load
    done = cli("points", "import", "t.jsonl", "-c", "notes", env=cache)
    assert done.returncode == 0 and "notes holds 4 points" in done.stdout, done.stderr
    assert done.stderr.count("loading model") == 1 and "Loading weights" not in done.stderr
    found = cli("search", "-c", "notes", "-k", "1", "sunlight vitamins and mood", env=cache)
    assert found.returncode == 0, found.stderr
    assert "vitamin D and depression" in found.stdout
    assert found.stderr.splitlines() == ["loading model all-MiniLM-L6-v2 (minilm) ..."]
    with vf.connect(tmp_path / "vf-data") as db:
        assert db.get_collection("notes").get([1])[0].payload == {"text": "vitamin D and depression"}
