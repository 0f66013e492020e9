"""The metrics equal pytrec_eval's (trec_eval's reference code) to 1e-9 on random runs and qrels:
ties in scores, graded, zero and negative grades, empty runs, queries the run lacks."""

from __future__ import annotations

from typing import Any

import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.evaluation import evaluate

# ours -> pytrec_eval's measure and result key, for a cutoff k
TREC = {
    "ndcg": ("ndcg_cut.{k}", "ndcg_cut_{k}"),
    "recall": ("recall.{k}", "recall_{k}"),
    "precision": ("P.{k}", "P_{k}"),
    "map": ("map_cut.{k}", "map_cut_{k}"),
    "success": ("success.{k}", "success_{k}"),
}
CUTS = (1, 5, 10)

docs = st.sampled_from([f"d{i}" for i in range(12)])
qrels_st = st.dictionaries(
    st.sampled_from(["q1", "q2", "q3", "q4"]),
    st.dictionaries(docs, st.integers(-1, 3), min_size=1, max_size=8),
    min_size=1,
    max_size=4,
)
run_st = st.dictionaries(
    st.sampled_from(["q1", "q2", "q3", "q5"]),
    st.dictionaries(docs, st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.25, -1.0]), max_size=10),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(qrels=qrels_st, run=run_st)
def test_every_metric_equals_pytrec_eval(qrels: dict[str, Any], run: dict[str, Any]) -> None:
    measures = {template.format(k=k) for template, _ in TREC.values() for k in CUTS}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    ours = evaluate(qrels, run, [f"{m}@{k}" for m in TREC for k in CUTS], per_query=True)
    assert isinstance(ours, dict)
    for qid, values in ours.items():
        for name, (_, key) in TREC.items():
            for k in CUTS:
                # a query the run lacks is in pytrec_eval's output only if the run has it: 0 here
                want = reference[qid][key.format(k=k)] if qid in reference else 0.0
                assert values[f"{name}@{k}"] == pytest.approx(want, abs=1e-9), (qid, name, k)
    # every query of the qrels is scored: those the run has, as pytrec_eval; the others as 0
    assert set(ours) == set(qrels) and set(reference) <= set(ours)


def test_means_count_missing_queries_as_zero_unless_told() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 1.0}}
    assert evaluate(qrels, run, ["recall@10"]) == {"recall@10": 0.5}
    assert evaluate(qrels, run, ["recall@10"], drop_missing=True) == {"recall@10": 1.0}


def test_ties_go_by_document_id_descending_as_in_trec_eval() -> None:
    qrels = {"q": {"a": 1}}
    assert evaluate(qrels, {"q": {"a": 1.0, "b": 1.0}}, ["mrr@10"]) == {"mrr@10": 0.5}


def test_a_metric_it_does_not_know_is_refused_naming_the_known() -> None:
    with pytest.raises(vf.InvalidParameter, match="name@k with name one of ndcg"):
        evaluate({"q": {"a": 1}}, {}, ["ndcg"])
