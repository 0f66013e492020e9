"""`vectorforge collections ...`, `count`, `snapshot`, `restore`, `--version` and the errors every
read command gives, through the installed console script."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import vectorforge as vf
from tests.cli.conftest import BIN, Run, cli_env


def test_version(cli: Run) -> None:
    version = importlib.metadata.version("vectorforge")
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"vectorforge {version}"
    module = subprocess.run(
        [sys.executable, "-m", "vectorforge.cli", "--version"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert module.stdout == done.stdout


def test_create_list_info_delete(cli: Run, tmp_path: Path) -> None:
    created = cli("collections", "create", "docs", "--dim", "4", "--metric", "dot", "--index", "flat")
    assert created.returncode == 0, created.stderr
    assert "created collection docs (dim 4, dot, flat) in vf-data" in created.stdout
    listed = cli("collections", "list")
    assert listed.returncode == 0 and "│ docs │ 0      │ 4   │ dot" in listed.stdout
    info = cli("collections", "info", "docs", "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["metric"] == "dot"
    table = cli("collections", "info", "docs")
    assert "│ index     │ flat" in table.stdout and "│ points    │ 0" in table.stdout

    refused = cli("collections", "delete", "docs")  # stdin is not a terminal: no one to ask
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    with _connected(tmp_path) as db:
        assert db.has_collection("docs")
    deleted = cli("collections", "delete", "docs", "--yes")
    assert deleted.returncode == 0 and "deleted collection docs (0 points)" in deleted.stdout
    empty = cli("collections", "list")
    assert empty.returncode == 0 and "has no collections yet" in empty.stderr


def _connected(tmp_path: Path) -> vf.DatabaseAPI:
    return vf.connect(tmp_path / "vf-data")


def test_delete_asks_in_a_terminal(cli: Run, tmp_path: Path) -> None:
    assert cli("collections", "create", "docs", "--dim", "2").returncode == 0
    for answer, code, said in ((b"n\n", 1, "nothing deleted"), (b"y\n", 0, "deleted collection docs")):
        main, tty = os.openpty()
        try:
            proc = subprocess.Popen(
                [str(BIN), "collections", "delete", "docs"],
                stdin=tty,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
                env=cli_env(),
            )
            os.write(main, answer)
            out, errs = proc.communicate(timeout=60)
        finally:
            os.close(main)
            os.close(tty)
        assert proc.returncode == code, out + errs
        assert "delete collection 'docs' and its 0 points?" in out and said in out + errs
    with _connected(tmp_path) as db:
        assert not db.has_collection("docs")


def test_create_errors_speak_cli(cli: Run) -> None:
    no_dim = cli("collections", "create", "docs")
    assert no_dim.returncode == 2
    assert "--dim N" in no_dim.stderr and "--embedder minilm" in no_dim.stderr
    assert cli("collections", "create", "docs", "--dim", "3").returncode == 0
    twice = cli("collections", "create", "docs", "--dim", "3")
    assert twice.returncode == 2 and "collection 'docs' already exists" in twice.stderr
    assert "vectorforge collections delete docs" in twice.stderr and "get_collection" not in twice.stderr
    bad = cli("collections", "create", "other", "--dim", "3", "--metric", "cos")
    assert bad.returncode == 2 and "metric 'cos' is unknown" in bad.stderr
    name = cli("collections", "create", "../etc", "--dim", "3")
    assert name.returncode == 2 and "not allowed" in name.stderr


def test_read_commands_never_create_a_data_folder(cli: Run, tmp_path: Path) -> None:
    """Before: `info --data ./vf-dta` created the folder and printed an empty table, exit 0."""
    for args in (
        ["info"],
        ["collections", "list"],
        ["collections", "info", "docs"],
        ["count", "-c", "docs"],
        ["search", "-c", "docs", "hello"],
        ["points", "export", "-c", "docs"],
        ["snapshot", "-c", "docs", "s.tar"],
    ):
        done = cli(*args, "--data", "vf-dta")
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "error: no data folder at vf-dta" in done.stderr, args
        assert "vectorforge collections create NAME --dim N --data vf-dta" in done.stderr
        assert not (tmp_path / "vf-dta").exists(), args
    assert cli("collections", "create", "docs", "--dim", "2").returncode == 0  # ./vf-data
    near = cli("info", "--data", "vf-dta")
    assert near.returncode == 2 and "did you mean --data vf-data?" in near.stderr
    (tmp_path / "photos").mkdir()
    other = cli("collections", "list", "--data", "photos")
    assert other.returncode == 2 and "photos is not a vectorforge data folder" in other.stderr
    assert list((tmp_path / "photos").iterdir()) == []


def test_a_missing_collection_lists_the_others_and_the_nearest_name(cli: Run, tmp_path: Path) -> None:
    for name in ("scifact", "nfcorpus"):
        assert cli("collections", "create", name, "--dim", "3").returncode == 0
    for args in (["count", "-c", "scifct"], ["collections", "info", "scifct"], ["info", "-c", "scifct"]):
        done = cli(*args)
        assert done.returncode == 2, args
        assert "error: collection 'scifct' does not exist" in done.stderr
        assert "collections in vf-data: nfcorpus, scifact" in done.stderr
        assert "did you mean 'scifact'?" in done.stderr
        assert "create it with vectorforge collections create scifct --dim N" in done.stderr
        assert "list_collections()" not in done.stderr
    search = cli("search", "-c", "scifct", "query", "--data", tmp_path / "vf-data")
    assert search.returncode == 2
    assert f"collections create scifct --embedder minilm --data {tmp_path / 'vf-data'}" in search.stderr
    far = cli("count", "-c", "zzz")
    assert far.returncode == 2 and "did you mean" not in far.stderr


def test_count_snapshot_restore(cli: Run, tmp_path: Path) -> None:
    with _connected(tmp_path) as db:
        col = db.create_collection("docs", dim=3, index="flat")
        rows = np.random.default_rng(0).standard_normal((10, 3))
        col.upsert(list(range(10)), rows, [{"even": i % 2 == 0} for i in range(10)])
    assert cli("count", "-c", "docs").stdout.strip() == "10"
    even = cli("count", "-c", "docs", "--filter", '{"must": [{"key": "even", "match": true}]}')
    assert even.returncode == 0 and even.stdout.strip() == "5"
    bad = cli("count", "-c", "docs", "--filter", "{must")
    assert bad.returncode == 2 and "--filter is not JSON" in bad.stderr
    wrong = cli("count", "-c", "docs", "--filter", '{"bad": 1}')
    assert wrong.returncode == 2 and "unknown keys ['bad']" in wrong.stderr
    by_text = cli("search", "-c", "docs", "hello")
    assert by_text.returncode == 2 and "has no embedder to embed the query text" in by_text.stderr
    assert "vectorforge collections create NAME --embedder minilm" in by_text.stderr

    snap = cli("snapshot", "-c", "docs", "docs.tar")
    assert snap.returncode == 0 and "(10 points of docs)" in snap.stdout
    again = cli("snapshot", "-c", "docs", "docs.tar")
    assert again.returncode == 2 and "--force" in again.stderr
    assert cli("snapshot", "-c", "docs", "docs.tar", "--force").returncode == 0

    restored = cli("restore", "docs.tar", "--name", "copy")
    assert restored.returncode == 0 and "restored copy (10 points)" in restored.stdout
    taken = cli("restore", "docs.tar")
    assert taken.returncode == 2 and "collection 'docs' already exists" in taken.stderr
    assert "--name NEW" in taken.stderr
    missing = cli("restore", "nope.tar")
    assert missing.returncode == 2 and "no snapshot file at nope.tar" in missing.stderr
    fresh = cli("restore", "docs.tar", "--data", "elsewhere")  # a write: it may create the folder
    assert fresh.returncode == 0 and cli("count", "-c", "docs", "--data", "elsewhere").stdout.strip() == "10"


def test_create_collections_with_multi_vectors(cli: Run, tmp_path: Path) -> None:
    """--multi NAME (repeatable) with --multi-dim / --multi-encoder / --multi-index, alone (no dense
    vector) or next to --dim and --sparse; what is missing is said with the command that fixes it."""
    plaid = cli(
        "collections", "create", "late", "--multi", "t", "--multi-dim", "32", "--multi-index", "plaid"
    )
    assert plaid.returncode == 0, plaid.stderr
    assert "created collection late (no dense vector, multi t (dim 32, plaid)) in vf-data" in plaid.stdout
    both = cli(
        "collections", "create", "both", "--dim", "4", "--index", "flat", "--sparse", "bm25", "--multi", "t"
    )
    assert both.returncode == 2 and "--multi-dim N, or --multi-encoder NAME" in both.stderr
    assert "vectorforge collections create both --multi t --multi-dim 128" in both.stderr
    both = cli(
        "collections", "create", "both", "--dim", "4", "--index", "flat", "--sparse", "bm25",
        "--multi", "a", "--multi", "b", "--multi-dim", "8",
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    assert (
        "(dim 4, cosine, flat, sparse bm25 (BM25), multi a (dim 8, flat), multi b (dim 8, flat))"
        in both.stdout
    )
    info = json.loads(cli("collections", "info", "late", "--json").stdout)
    assert info["dim"] is None and info["vectors"]["t"]["kind"] == "multi"
    assert info["vectors"]["t"]["index"] == "plaid" and info["vectors"]["t"]["dim"] == 32
    assert "│ vectors   │ t: multi" in cli("collections", "info", "late").stdout
    for args, said in [
        (["--multi-dim", "8"], "name one with --multi"),
        (["--multi-index", "plaid", "--dim", "3"], "name one with --multi"),
        (
            ["--multi", "t", "--multi-dim", "8", "--multi-index", "ivf"],
            "index 'ivf' is unknown for multi vectors",
        ),
        (["--multi", "t", "--multi-dim", "0"], "vf.Multi(dim=...): Input should be greater than 0"),
        (["--multi", "t", "--multi-encoder", "nope"], "unknown token encoder 'nope'"),
        (["--multi", "dense", "--multi-dim", "8", "--dim", "3"], "the dense vector is called 'dense' here"),
    ]:
        bad = cli("collections", "create", "bad", *args)
        assert bad.returncode == 2 and said in bad.stderr, (args, bad.stderr)
    assert cli("collections", "list").stdout.count("│ bad") == 0

    # what the CLI made is what the API makes: a PLAID collection that takes token matrices
    rng = np.random.default_rng(0)
    docs = [rng.normal(size=(int(rng.integers(3, 9)), 32)).astype(np.float32) for _ in range(50)]
    with _connected(tmp_path) as db:
        col = db.get_collection("late")
        col.upsert(list(range(50)), {"t": docs})
        col.flush()
        # PLAID's defaults: below 2M tokens a segment is scored exactly (and says so)
        (segment,) = [s["multi"]["t"] for s in col.info()["segments"] if s["sealed"]]
        assert segment["index"] == "plaid" and segment["mode"] == "exact"
        assert col.search(docs[7], 1, using="t")[0].id == 7
        other = db.get_collection("both")
        assert other.config.dense_name == "dense" and sorted(other.config.multi) == ["a", "b"]


def test_create_a_colbert_collection(cli: Run, tmp_path: Path) -> None:
    """--multi-encoder colbert-minilm: the checkpoint VECTORFORGE_COLBERT names (one made here from
    the bundled MiniLM), its token width taken for the vector's."""
    from vectorforge.multivector.colbert import ColBERTEncoder

    texts = ["late interaction scores every query token", "a page of tokens", "vectors in a database"]
    folder = ColBERTEncoder.from_base(pca_texts=texts * 8, cache=False).save(tmp_path / "colbert")
    env = {"VECTORFORGE_COLBERT": str(folder)}
    done = cli(
        "collections", "create", "cb", "--multi", "tokens", "--multi-encoder", "colbert-minilm", env=env
    )
    assert done.returncode == 0, done.stderr
    assert "(no dense vector, multi tokens (dim 128, flat, encoder colbert-minilm))" in done.stdout
    spec = json.loads(cli("collections", "info", "cb", "--json", env=env).stdout)["vectors"]["tokens"]
    assert spec == {
        "kind": "multi", "dim": 128, "metric": "cosine", "index": "flat", "index_params": {},
        "encoder": "colbert-minilm",
    }  # fmt: skip
    narrow = cli(
        "collections", "create", "cb2", "--multi", "tokens", "--multi-encoder", "colbert-minilm",
        "--multi-dim", "64", env=env,
    )  # fmt: skip
    assert narrow.returncode == 2
    assert "--multi-dim 64 but token encoder 'colbert-minilm' makes 128-dimensional tokens" in narrow.stderr
