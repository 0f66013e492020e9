"""Runs from vectorforge hits, and searching a collection for a gold set with any configuration
(a named sparse vector, hybrid fusion, filters, index parameters); Ctrl-C records nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import vectorforge as vf
from tests.evaluation.conftest import SciFactSmall, interrupted_command
from vectorforge.datasets import load_beir
from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import History
from vectorforge.evaluation.runs import Run, SearchConfig, search_goldset
from vectorforge.types import Hit


def test_from_hits_makes_string_ids_and_refuses_a_document_twice() -> None:
    run = Run.from_hits({"q1": [Hit(7, 0.9), Hit("a", 0.5)], 2: []})  # type: ignore[dict-item]
    assert run == {"q1": {"7": 0.9, "a": 0.5}, "2": {}}
    with pytest.raises(InvalidParameter, match="document '7' appears twice in the hits of query 'q1'"):
        Run.from_hits({"q1": [Hit(7, 0.9), Hit("7", 0.5)]})


def test_search_config_refuses_unknown_or_bad_keys(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="nprobe: Extra inputs"):
        SearchConfig.parse({"nprobe": 3})
    with pytest.raises(InvalidParameter, match="k: Input should be greater than or equal to 1"):
        SearchConfig.parse({"k": 0})
    (tmp_path / "c.yaml").write_text("mode: [1, 2]\n")
    with pytest.raises(InvalidParameter, match=r"c.yaml: mode"):
        SearchConfig.from_file(tmp_path / "c.yaml")


@pytest.fixture(scope="module")
def hybrid(scifact_small: SciFactSmall, shared: Path) -> vf.CollectionAPI:
    ds = load_beir(shared / "data" / "scifact", split=None)
    with vf.connect(scifact_small.data) as db:
        docs = [r.id for r in db.get_collection("sci").scroll(limit=1000).records]
    col = vf.connect().create_collection("both", embedder="minilm", sparse={"bm25": vf.Sparse()})
    col.add(
        [ds.doc_text(str(d)) for d in docs], ids=docs, payloads=[{"half": i % 2} for i in range(len(docs))]
    )
    return col


@pytest.mark.parametrize(
    "config",
    [
        SearchConfig(k=20),
        SearchConfig(k=20, using="bm25"),
        SearchConfig(k=20, mode="hybrid"),
        SearchConfig(k=20, mode="hybrid", fusion="weighted", weights=[0.3, 0.7]),
        SearchConfig(k=5, filter={"must": [{"key": "half", "match": 0}]}, params={"exact": True}),
    ],
)
def test_search_goldset_asks_the_collection_what_query_would(
    hybrid: vf.CollectionAPI, scifact_small: SciFactSmall, config: SearchConfig
) -> None:
    gold = scifact_small.goldset
    run = search_goldset(hybrid, gold, config)
    assert list(run) == gold.judged
    for qid in gold.judged[:10]:
        hits = hybrid.query(
            gold.queries[qid],
            config.k,
            using=config.using,
            mode=config.mode,
            fusion=config.fusion,
            weights=config.weights,
            filter=config.filter,
            params=config.params,
        )
        assert run[qid] == {str(h.id): h.score for h in hits}


def test_dense_bm25_and_hybrid_are_different_systems(
    hybrid: vf.CollectionAPI, scifact_small: SciFactSmall
) -> None:
    gold = scifact_small.goldset
    runs = [
        search_goldset(hybrid, gold, SearchConfig(k=10, using=u, mode=m))
        for u, m in ((None, None), ("bm25", None), (None, "hybrid"))
    ]
    assert runs[0] != runs[1] != runs[2]


def many_queries(gold: GoldSet, copies: int) -> GoldSet:
    queries = {f"{q}-{i}": gold.queries[q] for q in gold.judged for i in range(copies)}
    qrels = {f"{q}-{i}": dict(gold.qrels[q]) for q in gold.judged for i in range(copies)}
    return GoldSet("many", queries, qrels)


def test_ctrl_c_on_the_command_line_exits_130_and_records_nothing(
    scifact_small: SciFactSmall, tmp_path: Path
) -> None:
    data, code, stderr = interrupted_command(scifact_small, tmp_path, "eval", "run")
    assert code == 130, stderr
    assert "interrupted: nothing was recorded" in stderr
    assert History(data / "evaluation" / "history.sqlite").runs() == []
