"""The metrics equal pytrec_eval's (trec_eval's reference code) to 1e-9 on random runs and qrels:
ties in scores, graded, zero and negative grades, empty runs, queries the run lacks, relevance
levels; ndcg_exp (no trec_eval measure) equals its definition written out here, and ranx's
ndcg_burges."""

from __future__ import annotations

import math
import random
import warnings
from typing import Any

import numpy as np
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
WHOLE = {"rprec": "Rprec", "recip_rank": "recip_rank", "mrr": "recip_rank"}  # no cutoff
CUTS = (1, 5, 10)
OURS = [f"{m}@{k}" for m in (*TREC, "mrr", "ndcg_exp") for k in CUTS] + list(WHOLE)
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


def ndcg_exp_by_definition(judged: dict[str, int], scored: dict[str, float], k: int) -> float:
    """Burges' nDCG: gain 2**grade - 1 (grades below 0 as 0), log2(rank + 1) discount, trec_eval's
    order, against the ideal ranking of the judged documents."""
    ranking = sorted(scored, key=lambda d: (scored[d], d), reverse=True)[:k]

    def gain(g: int) -> float:
        return 2.0 ** max(g, 0) - 1

    dcg = sum(gain(judged.get(d, 0)) / math.log2(i + 2) for i, d in enumerate(ranking))
    ideal = sorted((gain(g) for g in judged.values()), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def check_against_references(qrels: dict[str, Any], run: dict[str, Any], relevance_level: int) -> None:
    measures = {template.format(k=k) for template, _ in TREC.values() for k in CUTS} | set(WHOLE.values())
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=relevance_level).evaluate(run)
    ours = evaluate(qrels, run, OURS, per_query=True, relevance_level=relevance_level)
    assert isinstance(ours, dict)
    for qid, values in ours.items():
        # a query the run lacks is in pytrec_eval's output only if the run has it: 0 here
        want = reference.get(qid, {})
        for name, (_, key) in TREC.items():
            for k in CUTS:
                expected = want.get(key.format(k=k), 0.0)
                assert values[f"{name}@{k}"] == pytest.approx(expected, abs=1e-9), (qid, name, k)
        for name, key in WHOLE.items():
            assert values[name] == pytest.approx(want.get(key, 0.0), abs=1e-9), (qid, name)
        rr = want.get("recip_rank", 0.0)
        for k in CUTS:
            # the first relevant document is within the top k exactly when 1/rank >= 1/k
            assert values[f"mrr@{k}"] == pytest.approx(rr if rr >= 1 / k - 1e-12 else 0.0, abs=1e-9)
            expected = ndcg_exp_by_definition(qrels[qid], run.get(qid, {}), k)
            assert values[f"ndcg_exp@{k}"] == pytest.approx(expected, abs=1e-9), (qid, k)
    # every query of the qrels is scored: those the run has, as pytrec_eval; the others as 0
    assert set(ours) == set(qrels) and set(reference) <= set(ours)


@settings(max_examples=300, deadline=None)
@given(qrels=qrels_st, run=run_st, relevance_level=st.sampled_from([1, 1, 2]))
def test_every_metric_equals_pytrec_eval(
    qrels: dict[str, Any], run: dict[str, Any], relevance_level: int
) -> None:
    check_against_references(qrels, run, relevance_level)


def test_many_queries_with_ties_and_one_long_run_equal_pytrec_eval() -> None:
    """Beyond hypothesis' small inputs: hundreds of queries, scores with many ties, and one run far
    longer than the others (ranked without the padded matrix)."""
    rng = random.Random(5)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for i in range(400):
        docs = [f"d{j}" for j in rng.sample(range(60), 12)]
        qrels[f"q{i}"] = {d: rng.choice([-1, 0, 1, 1, 2, 3]) for d in docs[:6]}
        if i % 7:
            run[f"q{i}"] = {d: float(rng.choice([0, 1, 1, 2, 3])) for d in docs[3:]}
    run["q1"] = {f"d{j}": float(rng.randrange(40)) for j in range(5000)}
    qrels["q1"] = {f"d{j}": rng.choice([0, 1, 2]) for j in range(0, 5000, 97)}
    for relevance_level in (1, 2):
        check_against_references(qrels, run, relevance_level)


@pytest.mark.slow  # numba loads ranx's kernels: about 10 s
def test_ndcg_and_ndcg_exp_equal_ranx() -> None:
    """ranx breaks ties its own way: scores here are distinct."""
    import ranx  # a dev dependency (requirements.txt): a missing one fails here, never skips

    rng = np.random.default_rng(3)
    qrels, run = {}, {}
    for i in range(200):
        docs = [f"d{j}" for j in rng.choice(300, 30, replace=False)]
        qrels[f"q{i}"] = {d: int(g) for d, g in zip(docs[:8], rng.integers(0, 4, 8), strict=True)}
        qrels[f"q{i}"][f"d{300 + i}"] = 1  # one relevant document at least: ranx needs it
        run[f"q{i}"] = dict(zip(docs, rng.random(30).tolist(), strict=True))
    ours = evaluate(qrels, run, ["ndcg@10", "ndcg_exp@10", "ndcg_exp@30"], per_query=True)
    ranx_run = ranx.Run.from_dict(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety warnings inside ranx
        ranx.evaluate(ranx.Qrels.from_dict(qrels), ranx_run, ["ndcg@10", "ndcg_burges@10", "ndcg_burges@30"])
    assert isinstance(ours, dict)
    pairs = [("ndcg@10", "ndcg@10"), ("ndcg_exp@10", "ndcg_burges@10"), ("ndcg_exp@30", "ndcg_burges@30")]
    for name, key in pairs:
        for qid in qrels:
            assert ours[qid][name] == pytest.approx(ranx_run.scores[key][qid], abs=1e-9), (qid, name)


def test_means_count_missing_queries_as_zero_unless_told() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": {"a": 1.0}}
    assert evaluate(qrels, run, ["recall@10"]) == {"recall@10": 0.5}
    assert evaluate(qrels, run, ["recall@10"], drop_missing=True) == {"recall@10": 1.0}


def test_ties_go_by_document_id_descending_as_in_trec_eval() -> None:
    qrels = {"q": {"a": 1}}
    assert evaluate(qrels, {"q": {"a": 1.0, "b": 1.0}}, ["mrr@10"]) == {"mrr@10": 0.5}


def test_a_metric_it_does_not_know_is_refused_naming_the_known() -> None:
    for wrong in ("ndcg", "ndcg@0", "ndcg@x", "rprec@10", "recip_rank@5", "bpref", "ndcg_exp"):
        with pytest.raises(vf.InvalidParameter, match=r"name@k with name one of ndcg, ndcg_exp.*alone"):
            evaluate({"q": {"a": 1}}, {}, [wrong])
    assert evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}}, ["mrr", "recip_rank", "rprec", "ndcg@03"]) == {
        "mrr": 1.0,
        "recip_rank": 1.0,
        "rprec": 1.0,
        "ndcg@3": 1.0,
    }


def test_a_relevance_level_below_1_and_nan_scores_are_refused() -> None:
    with pytest.raises(vf.InvalidParameter, match="at least 1"):
        evaluate({"q": {"a": 1}}, {}, ["ndcg@10"], relevance_level=0)
    with pytest.raises(vf.InvalidParameter, match="NaN"):
        evaluate({"q": {"a": 1}}, {"q": {"a": float("nan")}}, ["ndcg@10"])


def test_exponential_gain_weighs_high_grades_more() -> None:
    qrels = {"q": {"a": 1, "b": 3}}
    run = {"q": {"a": 2.0, "b": 1.0}}  # the grade-1 document above the grade-3 one
    scores = evaluate(qrels, run, ["ndcg@2", "ndcg_exp@2"])
    assert isinstance(scores, dict)
    ideal_lin, ideal_exp = 3 + 1 / math.log2(3), 7 + 1 / math.log2(3)
    assert scores["ndcg@2"] == pytest.approx((1 + 3 / math.log2(3)) / ideal_lin)
    assert scores["ndcg_exp@2"] == pytest.approx((1 + 7 / math.log2(3)) / ideal_exp)
    assert scores["ndcg_exp@2"] < scores["ndcg@2"]


def test_the_package_exports_the_metrics_and_the_statistics() -> None:
    import vectorforge.evaluation as evaluation

    assert evaluation.__all__ == sorted(evaluation.__all__)
    for name in ("METRICS", "evaluate", "compare", "paired_test", "bootstrap_ci", "holm", "PairedTest"):
        assert name in evaluation.__all__ and hasattr(evaluation, name)
    assert {"ndcg_exp", "rprec", "recip_rank"} <= set(evaluation.METRICS)
