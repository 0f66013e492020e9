"""The launch playbook, generated from a workload and its plan: SLOs and their Prometheus alert rules
(on the metrics `vectorforge serve` exports at /metrics), the load test, the rollout (shadow, canary,
A/B, full, each with its gate), rollback, the re-embedding runbook, and the day-2 checklist.
"""

from __future__ import annotations

from typing import Any

from vectorforge.extras import missing_extra
from vectorforge.planning.planner import Plan
from vectorforge.planning.workload import Workload

__all__ = ["SEARCH_ROUTES", "alert_rules", "alert_rules_yaml", "playbook_markdown"]

# The routes a user's search arrives by (the metrics label requests by route template).
SEARCH_ROUTES = ".*/points/search.*|.*/points/query|/experiments/.*/query"
REPLICA_LAG_ENTRIES = 1000  # log entries a replica may lag for 10 minutes before someone looks
WAL_ALERT_BYTES = 1 << 30


def alert_rules(workload: Workload, plan: Plan) -> dict[str, Any]:
    """Prometheus alerting rules (the rule file's document) for the workload's SLOs."""
    slo_s = workload.latency_p99_ms / 1000.0
    name = workload.name
    latency = (
        "histogram_quantile(0.99, sum by (le) (rate(vectorforge_request_seconds_bucket"
        f'{{route=~"{SEARCH_ROUTES}"}}[5m]))) > {slo_s:g}'
    )
    errors = (
        'sum(rate(vectorforge_requests_total{status=~"5.."}[5m])) '
        "/ sum(rate(vectorforge_requests_total[5m])) > 0.001"
    )
    rules: list[dict[str, Any]] = [
        _rule("SearchLatencyP99AboveSLO", latency, "10m", "page",
              f"search p99 above {workload.latency_p99_ms:g} ms for 10 minutes"),
        _rule("ErrorRateHigh", errors, "5m", "page", "more than 0.1% of requests fail with a 5xx"),
        _rule("CollectionRefusesWrites", "max by (collection) (vectorforge_collection_failed) > 0", "1m",
              "page", "a collection refuses writes after an I/O error: check the disk, then reopen it"),
        _rule("RecallBelowTarget",
              f'vectorforge_eval_metric{{segment="all", metric="recall@10"}} < {workload.recall:g}', "0m",
              "ticket", f"the newest evaluation's recall@10 is below the target {workload.recall:g}"),
        _rule("EvaluationRegressed", "vectorforge_eval_regressions > 0", "0m", "ticket",
              "the newest evaluation found a regression against its baseline"),
        _rule("EvaluationStale", "time() - vectorforge_eval_last_run_timestamp_seconds > 2 * 86400", "1h",
              "ticket", "no evaluation has run for two days"),
        _rule("DriftAlarm", "vectorforge_drift_alarm > 0", "0m", "ticket",
              "queries or documents have drifted from the reference window"),
        _rule("WriteAheadLogLarge", f"vectorforge_wal_bytes > {WAL_ALERT_BYTES}", "30m", "ticket",
              "the write-ahead log keeps growing: segments are not sealing"),
    ]  # fmt: skip
    if workload.availability.replicas > 1:
        rules.append(
            _rule("ReplicaLagging", f"vectorforge_replica_entries_behind > {REPLICA_LAG_ENTRIES}", "10m",
                  "page", "a replica lags: run anti-entropy (POST /collections/{name}/repair) or replace it")
        )  # fmt: skip
        rules.append(
            _rule("AntiEntropyRepaired", "vectorforge_repair_points > 0", "0m", "ticket",
                  "the last anti-entropy check had to rewrite points: the replicas had diverged")
        )  # fmt: skip
    for rule in rules:
        rule["labels"]["service"] = name
    return {"groups": [{"name": f"vectorforge-{name}", "rules": rules}]}


def alert_rules_yaml(workload: Workload, plan: Plan) -> str:
    """`alert_rules` as the rule file Prometheus reads (`rule_files`)."""
    with missing_extra("the launch playbook"):
        import yaml

    return str(yaml.safe_dump(alert_rules(workload, plan), sort_keys=False, width=110))


def _rule(alert: str, expr: str, wait: str, severity: str, summary: str) -> dict[str, Any]:
    return {
        "alert": f"Vectorforge{alert}",
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def playbook_markdown(workload: Workload, plan: Plan) -> str:
    """The playbook as one Markdown document."""
    w, p = workload, plan
    peak = w.qps.peak
    rules = alert_rules_yaml(w, p)
    repair = (
        ["- Anti-entropy: `POST /collections/{name}/repair` daily; the ReplicaLagging and "
         "AntiEntropyRepaired alerts watch it."]
        if w.availability.replicas > 1 else []
    )  # fmt: skip
    lines = [
        f"# Launch playbook: {w.name}",
        "",
        f"From the plan: {p.nodes} x {p.instance}, {p.shards} shard(s) x {p.replicas} replica(s), "
        f"predicted p99 {p.p99_ms:.2f} ms against an SLO of {w.latency_p99_ms:g} ms, "
        f"${p.monthly['total']:,.0f} a month (catalog {p.catalog['name']}, as of {p.catalog['as_of']}).",
        "",
        "## 1. SLOs and alerts",
        "",
        f"- Search latency: p99 <= {w.latency_p99_ms:g} ms over 5 minutes, on the search routes.",
        "- Availability: fewer than 0.1% of requests answered with a 5xx.",
        f"- Quality: recall@10 >= {w.recall:g} on the gold set (continuous evaluation), no regression.",
        "- Durability: no collection refusing writes; "
        + ("replicas within 1,000 log entries." if w.availability.replicas > 1 else "one replica (no lag)."),
        "",
        "Prometheus rules (save as `vectorforge-alerts.yml`, listed under `rule_files`):",
        "",
        "```yaml",
        rules.rstrip(),
        "```",
        "",
        "## 2. Load test",
        "",
        f"Before launch, on the planned instance type, with the corpus at its horizon size ({p.points:,} "
        f"points; scaled down: the same points per shard, {-(-p.points // p.shards):,}):",
        "",
        "```bash",
        "python bench/server_load.py --n POINTS_PER_SHARD --clients 8 --seconds 600",
        "```",
        "",
        f"Pass: search p99 <= {w.latency_p99_ms:g} ms at {peak:g} QPS per replica set "
        f"({peak / max(1, p.replicas):g} per replica), 0 errors, 0 acknowledged points missing after the "
        "run; then kill one node mid-run (a replica lost): reads go on, p99 stays within 2x the SLO.",
        "",
        "## 3. Rollout",
        "",
        "Each step has a gate; a step whose gate fails goes to Rollback.",
        "",
        "1. **Shadow** (`POST /online/shadows`, share 0.1, k 10): the candidate answers a copy of live "
        "searches off the request path. Gate, over >= 1,000 queries: mean RBO >= 0.8 against the "
        f"primary, latency delta <= {0.2 * w.latency_p99_ms:g} ms, no failed mirrors.",
        "2. **Canary** (`POST /experiments`, kind ab, split 95/5, unit user, guardrails "
        "`latency_p95_ratio` 1.5 and `zero_result_increase` 0.05): Gate, after a day: no guardrail "
        "stopped it; error rate and p99 of the canary arm within the SLOs.",
        "3. **A/B** (split 50/50, the same guardrails): Gate: the primary metric (CTR@10) not "
        "significantly worse (`GET /experiments/{name}/results`: the CUPED comparison's interval above "
        "-1% relative), sample size as its power analysis says.",
        "4. **Full**: `vectorforge alias switch` (or `models promote`, which gates on the gold set) "
        "points the alias at the candidate; the old collection stays for the rollback window (7 days).",
        "",
        "## 4. Rollback",
        "",
        "Criteria: a page-severity alert for 10 minutes after a change, an experiment's guardrail stop, "
        "or an evaluation regression on the new collection.",
        "",
        "Steps: stop the experiment (`POST /experiments/{name}/stop`: traffic returns to the control); "
        "switch the alias back (`vectorforge models rollback --alias ALIAS`, or `alias switch`); confirm "
        "with `vectorforge eval run` on the gold set; keep the candidate for the post-mortem.",
        "",
        "## 5. Re-embedding (a new model)",
        "",
        f"{w.model_releases_per_year:g} release(s) a year, blue/green: the new collection is built beside "
        f"the old one, so memory doubles for ~{w.reembed_days:g} day(s) a release "
        f"(${p.monthly['reembedding']:,.0f} a month averaged over the year in the plan).",
        "",
        "1. `vectorforge models promote --alias ALIAS --model NAME@VERSION --goldset GOLDSET --queries "
        "logged.txt --min-rbo 0.5`: re-embeds into a new collection, gates on the gold set and the "
        "logged queries' overlap, then switches the alias.",
        "2. Shadow the new collection first if the model changed more than its fine-tuning (step 3.1).",
        "3. After the rollback window, delete the old collection.",
        "",
        "## 6. Day 2",
        "",
        "- Snapshots: `vectorforge snapshot` of every collection daily, kept 14 days, one restore "
        "drill a month (`vectorforge restore` into a scratch folder, then `eval run` on it).",
        *repair,
        "- Evaluation: `vectorforge eval watch` (or the server's `--eval-schedule`) daily on each gold "
        "set, per segment; pin the launch run as the baseline.",
        "- Drift: a drift watch on every served collection (`PUT /online/drift/{name}`), checked hourly.",
        "- Capacity: re-run `vectorforge plan` each quarter with the measured growth and QPS; "
        "re-calibrate after a hardware or index change.",
        "- Keys: rotate API keys each quarter (`vectorforge keys create`, then `keys revoke`).",
        "",
    ]
    return "\n".join(lines)
