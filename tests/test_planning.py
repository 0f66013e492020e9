"""The capacity planner: workload checks, the planner's monotonicity (property tests), calibration on
this machine, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectorforge as vf
from vectorforge.index import estimate_bytes
from vectorforge.planning import (
    load_catalog,
    load_profile,
    load_workload,
    parse_workload,
    plan,
    render,
    what_ifs,
)
from vectorforge.planning.calibrate import calibrate

CASES = Path(__file__).parents[1] / "docs" / "case-studies"
CATALOG = load_catalog("aws-us-east-1")
PROFILE = load_profile()
DENSE = [(i, q) for i, q in PROFILE.configurations() if i in ("flat", "hnsw", "ivfflat")]


def _workload(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t",
        "corpus": {"points": 100_000},
        "vectors": [{"name": "dense", "kind": "dense", "dim": 384}],
        "qps": {"peak": 50, "average": 10},
        "latency_p99_ms": 50,
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"corpus": {"points": -1}}, "corpus.points"),
        ({"qps": {"peak": 5, "average": 10}}, "qps"),
        ({"vectors": [{"kind": "dense", "dim": 0}]}, "vectors.0.dim"),
        ({"vectors": [{"kind": "image"}]}, "vectors.0.kind"),
        ({"vectors": [{"kind": "dense", "quantization": "sq9"}]}, "vectors.0.quantization"),
        ({"availability": {"replicas": 1, "zones": 3}}, "availability"),
        ({"latency_p99_ms": "fast"}, "latency_p99_ms"),
        ({"replicas": 3}, "replicas"),  # a field that does not exist (it belongs under availability)
        ({"vectors": [{"kind": "dense", "use": "rerank"}, {"name": "b", "kind": "sparse"}]}, "rerank"),
        ({"vectors": [{"kind": "multi", "use": "rerank"}]}, "search"),  # nothing to re-rank
        ({"vectors": [{"name": f"v{i}"} for i in range(9)]}, "vectors"),  # at most 8
        ({"qps": {"peak": float("inf"), "average": 1}}, "qps.peak"),  # JSON's Infinity, YAML's .inf
        ({"corpus": {"points": 10**13}}, "corpus.points"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(vf.InvalidParameter, match=rf"\b{field}\b"):
        parse_workload(_workload(**change))


def test_a_workload_file_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "w.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(vf.InvalidParameter, match="not YAML"):
        load_workload(bad)
    with pytest.raises(vf.InvalidParameter, match="does not exist"):
        load_workload(tmp_path / "missing.yaml")


def test_memory_comes_from_the_registrys_estimate() -> None:
    w = parse_workload(
        _workload(vectors=[{"kind": "dense", "dim": 384, "index": "hnsw", "quantization": "none"}])
    )
    p = plan(w, CATALOG, PROFILE)
    (v,) = p.vectors
    assert v.ram_bytes == estimate_bytes("hnsw", 100_000, 384, {})
    assert p.ram_bytes == v.ram_bytes + 100_000 * (256 + int(PROFILE.engine_bytes_per_point))
    assert p.rules_of_thumb == {
        "qdrant_1.5x": int(1.5 * 100_000 * 384 * 4),
        "weaviate_2x": 2 * 100_000 * 384 * 4,
    }


def test_auto_chooses_the_cheapest_configuration_that_meets_the_slo() -> None:
    w = parse_workload(_workload(corpus={"points": 50_000_000}, qps={"peak": 2000, "average": 500}))
    chosen = plan(w, CATALOG, PROFILE)
    assert chosen.meets_slo
    for index, quantization in DENSE:
        fixed = parse_workload(_workload(
            corpus={"points": 50_000_000}, qps={"peak": 2000, "average": 500},
            vectors=[{"kind": "dense", "dim": 384, "index": index, "quantization": quantization}],
        ))  # fmt: skip
        other = plan(fixed, CATALOG, PROFILE)
        if other.meets_slo:
            assert chosen.monthly["total"] <= other.monthly["total"] + 1e-6


def test_a_configuration_the_profile_lacks_is_named() -> None:
    w = parse_workload(
        _workload(vectors=[{"kind": "dense", "dim": 384, "index": "ivfpq", "quantization": "none"}])
    )
    with pytest.raises(vf.InvalidParameter, match="no measurement of index 'ivfpq'"):
        plan(w, CATALOG, PROFILE)


points = st.integers(1_000, 2_000_000_000)
configs = st.sampled_from([("auto", "auto"), *DENSE])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=points, more=st.integers(1, 10**9), config=configs, dim=st.sampled_from([128, 384, 768]))
def test_more_vectors_never_need_less_memory_or_cost_less(
    n: int, more: int, config: tuple[str, str], dim: int
) -> None:
    vectors = [{"kind": "dense", "dim": dim, "index": config[0], "quantization": config[1]}]
    small = plan(parse_workload(_workload(corpus={"points": n}, vectors=vectors)), CATALOG, PROFILE)
    large = plan(parse_workload(_workload(corpus={"points": n + more}, vectors=vectors)), CATALOG, PROFILE)
    assert large.ram_bytes >= small.ram_bytes
    assert large.disk_bytes >= small.disk_bytes
    if small.meets_slo and large.meets_slo:
        assert large.monthly["total"] >= small.monthly["total"] - 1e-6


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=points, replicas=st.integers(1, 8), config=configs, peak=st.floats(1, 5000))
def test_more_replicas_never_cost_less(n: int, replicas: int, config: tuple[str, str], peak: float) -> None:
    def at(r: int) -> Any:
        w = _workload(
            corpus={"points": n},
            qps={"peak": peak, "average": peak / 2},
            availability={"replicas": r, "zones": 1},
            vectors=[{"kind": "dense", "dim": 384, "index": config[0], "quantization": config[1]}],
        )
        return plan(parse_workload(w), CATALOG, PROFILE)

    fewer, more = at(replicas), at(replicas + 1)
    assert more.monthly["total"] >= fewer.monthly["total"] - 1e-6
    assert more.nodes >= more.replicas


def test_the_case_studies_plan_and_render() -> None:
    for name in ("support-bot", "legal-research"):
        w = load_workload(CASES / f"{name}.yaml")
        p = plan(w, load_catalog(w.catalog), PROFILE)
        alternatives = what_ifs(w, load_catalog(w.catalog), PROFILE)
        doc = json.loads(render(p, alternatives, "json"))
        assert doc["plan"]["workload"] == name and doc["plan"]["nodes"] >= w.availability.replicas
        md = render(p, alternatives, "md")
        assert "## What-ifs" in md and PROFILE.name in md and "as of" in md
        assert "<html>" in render(p, alternatives, "html")
    bot = plan(load_workload(CASES / "support-bot.yaml"), CATALOG, PROFILE)
    assert bot.nodes == 1 and bot.meets_slo  # the small case fits one node
    workload = load_workload(CASES / "legal-research.yaml")
    legal = plan(workload, CATALOG, PROFILE)
    # every vector is priced (the dense stage, and the tokens' re-ranking of its candidates), and
    # what the profile did not measure (a recall, a corpus that large) is said
    assert all(v.calibrated for v in legal.vectors)
    assert any("reached recall@10" in n for n in legal.notes)
    assert any("extrapolated" in n for n in legal.notes)
    # searching the tokens with PLAID instead of re-ranking: far more CPU a query
    searched = [v.model_copy(update={"use": "search"}) for v in workload.vectors]
    full = plan(workload.model_copy(update={"vectors": searched}), CATALOG, PROFILE)
    assert full.core_ms_per_query > legal.core_ms_per_query


def test_calibration_measures_this_machine_and_plans_use_it(tmp_path: Path) -> None:
    profile = calibrate(
        sizes=(2_000, 4_000), corpora=(40_000,), configurations=[("hnsw", "none", {"M": 16})],
        multi_points=(1_000,), queries=50, progress=False, fanout=False,
    )  # fmt: skip
    kinds = [(p.index, p.n, p.corpus_points) for p in profile.points]
    assert kinds == [
        ("hnsw", 2_000, 2_000),
        ("hnsw", 4_000, 4_000),
        ("hnsw", 4_000, 40_000),  # a segment of the largest size, drawn from a larger corpus
        ("inverted", 2_000, 2_000),
        ("inverted", 4_000, 4_000),
        ("plaid", 1_000, 1_000),
        ("rerank", 100, 100),  # MaxSim re-ranking of that many candidates (has_id searches)
        ("rerank", 1_000, 1_000),
    ]
    assert all(p.recall >= 0.95 and p.qps_per_core > 0 and p.p99_ms >= p.p50_ms for p in profile.points)
    model = profile.model("hnsw", "none")
    assert model.mean_ms(4_000, 384) >= model.mean_ms(2_000, 384)  # more points never cost less
    segment_of_larger, whole = (1000.0 / profile.points[i].qps_per_core for i in (2, 1))
    # a larger corpus's segment costs what it measured (never less than the whole corpus's)
    assert model.mean_ms(4_000, 384, corpus=40_000) == pytest.approx(max(segment_of_larger, whole))
    saved = profile.save(tmp_path / "profile.json")
    again = load_profile(saved)
    assert again.points == profile.points
    dense = {"kind": "dense", "dim": 384, "index": "hnsw", "quantization": "none"}
    w = parse_workload(_workload(vectors=[dense]))
    alone = plan(w, CATALOG, again)
    assert alone.profile["name"] == profile.name
    # a hybrid query searches both vectors: BM25's measured cost is added, and the note is gone
    hybrid = plan(
        parse_workload(_workload(vectors=[dense, {"name": "bm25", "kind": "sparse"}])), CATALOG, again
    )
    assert hybrid.core_ms_per_query > alone.core_ms_per_query
    assert not [n for n in hybrid.notes if "bm25" in n]
    late = plan(
        parse_workload(_workload(vectors=[{"name": "t", "kind": "multi", "dim": 128}])), CATALOG, again
    )
    assert late.core_ms_per_query > 0 and late.vectors[0].calibrated
    # late interaction over dense candidates: priced as re-ranking, more candidates cost more
    rerank = {"name": "t", "kind": "multi", "dim": 128, "tokens_per_point": 32, "use": "rerank"}
    shallow, deep = (
        plan(parse_workload(_workload(vectors=[dense, {**rerank, "rerank_depth": d}])), CATALOG, again)
        for d in (100, 1000)
    )
    assert alone.core_ms_per_query < shallow.core_ms_per_query <= deep.core_ms_per_query
    assert all(v.calibrated for v in deep.vectors)


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vectorforge.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_plans_a_workload_file(tmp_path: Path) -> None:
    done = _cli("plan", CASES / "support-bot.yaml", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"]["workload"] == "support-bot"
    out = tmp_path / "plan.html"
    done = _cli(
        "plan", CASES / "legal-research.yaml", "--format", "html", "--out", out, "--playbook", tmp_path / "pb"
    )
    assert done.returncode == 0, done.stderr
    assert "legal-research" in out.read_text()
    assert "# Launch playbook: legal-research" in (tmp_path / "pb" / "playbook.md").read_text()
    assert (tmp_path / "pb" / "vectorforge-alerts.yml").read_text().startswith("groups:")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncorpus: {points: 0}\nqps: {peak: 1, average: 1}\nlatency_p99_ms: 10\n")
    done = _cli("plan", bad)
    assert done.returncode == 2 and "corpus.points" in done.stderr
    done = _cli("plan", CASES / "support-bot.yaml", "--format", "pdf")
    assert done.returncode == 2 and "pdf" in done.stderr


def test_the_playbooks_alerts_watch_metrics_a_real_server_exports(tmp_path: Path) -> None:
    import re

    import httpx
    import numpy as np
    import yaml

    from tests.serverproc import start_server
    from vectorforge.planning import alert_rules, playbook_markdown
    from vectorforge.planning.playbook import alert_rules_yaml

    w = load_workload(CASES / "legal-research.yaml")  # replicated: every rule is in its file
    p = plan(w, CATALOG, PROFILE)
    rules = yaml.safe_load(alert_rules_yaml(w, p))
    assert rules == alert_rules(w, p)  # the file says what the rules are
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert any(f"> {w.latency_p99_ms / 1000:g}" in e for e in exprs)  # the SLO itself, in seconds
    used = {name for e in exprs for name in re.findall(r"vectorforge_[a-z0-9_]+", e)}
    server = start_server(tmp_path / "data")
    try:
        with vf.connect(server.url) as db:
            col = db.create_collection("c", dim=4, metric="l2", index="flat")
            col.upsert([1], np.ones((1, 4), dtype=np.float32))
            col.search([1.0, 1.0, 1.0, 1.0], k=1)
        scraped = httpx.get(server.url + "/metrics").text
    finally:
        server.stop()
    exported = set(re.findall(r"^(vectorforge_[a-z0-9_]+)", scraped, flags=re.M))
    exported |= set(re.findall(r"^# TYPE (vectorforge_[a-z0-9_]+)", scraped, flags=re.M))
    assert used <= exported, f"rules watch metrics the server does not export: {used - exported}"
    routes = set(re.findall(r'route="([^"]+)"', scraped))
    search = next(r for r in routes if "search" in r)
    pattern = re.search(r'route=~"([^"]+)"', exprs[0])
    assert pattern is not None and re.fullmatch(pattern.group(1), search)  # the latency rule sees searches
    book = playbook_markdown(w, p)
    for section in ("SLOs and alerts", "Load test", "Rollout", "Rollback", "Re-embedding", "Day 2"):
        assert section in book
    assert "Anti-entropy" in book and f"{p.shards} shard(s) x {p.replicas} replica(s)" in book


def test_a_selective_filter_is_priced_as_the_engines_exact_scan() -> None:
    from vectorforge.planning.planner import SEGMENT_POINTS

    dense = {"kind": "dense", "dim": 384, "index": "hnsw", "quantization": "none"}
    base = _workload(vectors=[dense], corpus={"points": 2 * SEGMENT_POINTS})
    unfiltered = plan(parse_workload(base), CATALOG, PROFILE)
    broad = plan(parse_workload({**base, "filter_selectivity": 0.5}), CATALOG, PROFILE)
    assert broad.core_ms_per_query == pytest.approx(unfiltered.core_ms_per_query)  # ID selector: same
    assert any("priced as unfiltered" in n for n in broad.notes)
    narrow = plan(parse_workload({**base, "filter_selectivity": 0.01}), CATALOG, PROFILE)
    flat = PROFILE.model("flat", "none")
    scans = narrow.shards * 2 * flat.mean_ms(SEGMENT_POINTS // 100, 384)  # two segments, 1% of each
    assert narrow.core_ms_per_query == pytest.approx(scans)
    assert any("scanned exactly" in n for n in narrow.notes)


def test_calibration_on_a_sample_of_your_own_vectors(tmp_path: Path) -> None:
    import numpy as np

    from vectorforge.planning.calibrate import clustered

    rows, _ = clustered(3_050, 64, 1, seed=7)
    given = rows.copy()
    profile = calibrate(
        configurations=[("hnsw", "none", {"M": 16})], sparse=False, multi_points=(), queries=50,
        progress=False, data=rows, fanout=False,
    )  # fmt: skip
    assert np.array_equal(rows, given)  # the caller's array is left as it was
    assert [(p.index, p.n, p.dim, p.corpus_points) for p in profile.points] == [("hnsw", 3_000, 64, 3_000)]
    assert profile.data.startswith("a sample of 3,050")
    # drawn from a larger corpus: a segment need find only its share of the corpus's top 10
    of_more = calibrate(
        configurations=[("hnsw", "none", {"M": 16})], sparse=False, multi_points=(), queries=50,
        progress=False, data=rows, data_corpus=300_000, fanout=False,
    )  # fmt: skip
    assert "of a corpus of 300,000" in of_more.data
    assert of_more.points[0].setting["ef"] <= profile.points[0].setting["ef"]
    # a uniform sample is what a segment of any corpus of that data holds: no extrapolation to say
    dense = {"kind": "dense", "dim": 64, "index": "hnsw", "quantization": "none"}
    big = plan(parse_workload(_workload(vectors=[dense], corpus={"points": 10_000_000})), CATALOG, profile)
    assert not [n for n in big.notes if "extrapolated" in n]
    with pytest.raises(vf.InvalidParameter, match="2-d array"):
        calibrate(
            configurations=[], sparse=False, multi_points=(), progress=False, data=rows[0], fanout=False
        )
    bad = tmp_path / "bad.npy"
    bad.write_text("not an array")
    done = _cli("plan", "calibrate", "--data", bad, "--out", tmp_path / "p.json")
    assert done.returncode == 2 and "--data" in done.stderr


@given(n=st.integers(1, 10_000_000), more=st.integers(0, 100_000_000))
def test_rank_weights_count_a_segments_share_of_the_corpus_top_k(n: int, more: int) -> None:
    import numpy as np

    from vectorforge.planning.calibrate import K, rank_weights

    w = rank_weights(n, n + more)
    # w[r - 1] = P(X >= r) for X ~ Binomial(K, share): it falls with the rank, and sums to E[X]
    assert np.all(np.diff(w) <= 1e-12) and np.all((w >= 0) & (w <= 1))
    assert w.sum() == pytest.approx(K * n / (n + more), rel=1e-9, abs=1e-12)
    assert np.array_equal(rank_weights(n), np.ones(K))  # the whole corpus: plain recall@K


def test_going_to_several_shards_costs_what_calibration_measured(tmp_path: Path) -> None:
    from dataclasses import replace

    from vectorforge.planning.calibrate import measure_fanout

    p99, core = measure_fanout(tmp_path / "db", n=2_000, queries=50)
    assert p99 > 0 and core >= 0  # a thread pool's dispatch and the merge are never free
    # a latency SLO that only sharding meets: its fan-out is added to the p99 of every shard count
    dense = {"kind": "dense", "dim": 384, "index": "flat", "quantization": "none"}
    w = parse_workload(_workload(vectors=[dense], corpus={"points": 400_000}, latency_p99_ms=20))
    free = plan(w, CATALOG, replace(PROFILE, fanout_p99_ms=0.0, fanout_core_ms=0.0))
    assert free.shards > 1
    costly = plan(w, CATALOG, replace(PROFILE, fanout_p99_ms=5.0, fanout_core_ms=1.0))
    assert costly.p99_ms == pytest.approx(free.p99_ms + 5.0) or costly.shards > free.shards
    assert costly.core_ms_per_query > free.core_ms_per_query
    never = plan(w, CATALOG, replace(PROFILE, fanout_p99_ms=1e6))  # fanning out never pays
    assert not never.meets_slo and never.shards == 1


def test_rerank_is_priced_along_the_line_through_its_calibrated_depths() -> None:
    from dataclasses import replace

    from vectorforge.planning import Measured

    def rerank(depth: int, ms: float) -> Measured:
        return Measured(
            "rerank", "maxsim", 128, depth, {"depth": depth}, 1.0, 1000 / ms, ms, ms, 0.0, tokens=32
        )

    lined = replace(PROFILE, points=[p for p in PROFILE.points if p.index != "rerank"]
                    + [rerank(100, 1.0), rerank(1000, 4.0)])  # fmt: skip
    dense = {"kind": "dense", "dim": 384, "index": "hnsw", "quantization": "none"}
    colbert = {"name": "t", "kind": "multi", "dim": 128, "tokens_per_point": 64, "use": "rerank"}
    alone = plan(parse_workload(_workload(vectors=[dense])), CATALOG, lined)
    for depth, notes in ((400, False), (4000, True)):
        w = _workload(vectors=[dense, {**colbert, "rerank_depth": depth}])
        both = plan(parse_workload(w), CATALOG, lined)
        line = 1.0 + (depth - 100) * 3.0 / 900  # ms at 32 tokens; 64 tokens: twice
        assert both.shards == 1
        assert both.core_ms_per_query - alone.core_ms_per_query == pytest.approx(2 * line)
        assert any("extrapolated along a line" in n for n in both.notes) == notes


def test_too_many_auto_combinations_are_refused() -> None:
    auto = [{"name": f"v{i}", "kind": "dense", "dim": 64} for i in range(6)]  # 5 ** 6 configurations
    with pytest.raises(vf.InvalidParameter, match="combinations"):
        plan(parse_workload(_workload(vectors=auto)), CATALOG, PROFILE)


def test_profiles_from_before_token_counts_price_plaid_as_measured() -> None:
    from vectorforge.planning import Profile

    doc = PROFILE.to_json()
    for point in doc["points"]:
        point.pop("tokens", None)
    old = Profile.from_json(doc)
    assert old.model("plaid", "none").anchor.tokens == 32
    assert old.model("hnsw", "none").anchor.tokens == 1


def test_a_segments_recall_counts_its_best_as_the_corpus_does() -> None:
    import numpy as np

    from vectorforge.planning.calibrate import _recall, rank_weights

    truth = np.arange(10)[None, :]
    found = [[0, 1, 2, 90, 91, 92, 93, 94, 95, 96]]  # the three best, then misses
    assert _recall(found, truth) == pytest.approx(0.3)
    # a segment of 1/8 of the corpus holds ~1.25 of its top 10: finding its best three is most of it
    assert _recall(found, truth, rank_weights(1, 8)) > 0.95
