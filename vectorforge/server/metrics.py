"""Prometheus metrics: per-route request counts and latencies, and per-collection gauges."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vectorforge.evaluation.history import EvalRun

__all__ = ["Metrics"]


class _CollectionStats(Collector):
    """Read at scrape time, so the figures are never stale and cost nothing between scrapes."""

    def __init__(self, stats: Callable[[], list[dict[str, Any]]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        points = GaugeMetricFamily("vectorforge_collection_points", "Live points", labels=["collection"])
        segments = GaugeMetricFamily("vectorforge_collection_segments", "Segments", labels=["collection"])
        wal = GaugeMetricFamily(
            "vectorforge_wal_bytes", "Write-ahead log size in bytes", labels=["collection"]
        )
        failed = GaugeMetricFamily(
            "vectorforge_collection_failed",
            "1 if the collection refuses writes after an I/O error (reopen it to recover)",
            labels=["collection"],
        )
        behind = GaugeMetricFamily(
            "vectorforge_replica_entries_behind",
            "Log entries the furthest-behind replica of each shard lacks, summed over shards",
            labels=["collection"],
        )
        repaired = GaugeMetricFamily(
            "vectorforge_repair_points",
            "Points the last anti-entropy check rewrote (0: the replicas agreed)",
            labels=["collection"],
        )
        for info in self._stats():
            name = info["name"]
            points.add_metric([name], info["points"])
            segments.add_metric([name], len(info["segments"]))
            wal.add_metric([name], info["wal_bytes"])
            failed.add_metric([name], 1.0 if info.get("failed") else 0.0)
            sets = info.get("replica_sets") or []
            if sets:
                lag = sum(s["last_rseq"] - min(r["rseq"] for r in s["replicas"]) for s in sets)
                behind.add_metric([name], lag)
                reports = [s["last_repair"] for s in sets if s.get("last_repair")]
                repaired.add_metric([name], sum(r["repaired_points"] for r in reports))
        yield from (points, segments, wal, failed, behind, repaired)


class _EvaluationStats(Collector):
    """The newest run of each gold set and collection, read from the history at scrape time."""

    def __init__(self, latest: Callable[[], list[EvalRun]]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["goldset", "collection", "segment", "metric"]
        mean = GaugeMetricFamily("vectorforge_eval_metric", "Mean of the newest run", labels=labels)
        low = GaugeMetricFamily("vectorforge_eval_metric_low", "Its 95% interval, low end", labels=labels)
        high = GaugeMetricFamily("vectorforge_eval_metric_high", "Its 95% interval, high end", labels=labels)
        queries = GaugeMetricFamily("vectorforge_eval_queries", "Queries in the segment", labels=labels[:3])
        regressions = GaugeMetricFamily(
            "vectorforge_eval_regressions",
            "Regressions the newest run found against its baseline",
            labels=labels[:2],
        )
        when = GaugeMetricFamily(
            "vectorforge_eval_last_run_timestamp_seconds", "When the newest run was made", labels=labels[:2]
        )
        for run in self._latest():
            key = [run.goldset, run.collection]
            regressions.add_metric(key, len(run.regressions))
            when.add_metric(key, datetime.fromisoformat(run.created_at).timestamp())
            for segment, scores in run.segments.items():
                for metric, score in scores.items():
                    mean.add_metric([*key, segment, metric], score.mean)
                    low.add_metric([*key, segment, metric], score.low)
                    high.add_metric([*key, segment, metric], score.high)
                queries.add_metric([*key, segment], next(iter(scores.values())).n if scores else 0)
        yield from (mean, low, high, queries, regressions, when)


class _OnlineStats(Collector):
    """The online metrics of the last hour's logged searches, per collection, read at scrape time."""

    def __init__(self, online: Callable[[], dict[str, dict[str, float | int | None]]]) -> None:
        self._online = online

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "vectorforge_online_metric",
            "Online metric of the last hour's logged searches (ctr@10, mrr, success@10, ...)",
            labels=["collection", "metric"],
        )
        for collection, values in self._online().items():
            for metric, value in values.items():
                if value is not None:
                    gauge.add_metric([collection, metric], float(value))
        yield gauge


class _DriftStats(Collector):
    """The newest drift check of each watched collection, read at scrape time."""

    def __init__(self, checks: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._checks = checks

    def collect(self) -> Iterator[GaugeMetricFamily]:
        alarm = GaugeMetricFamily(
            "vectorforge_drift_alarm", "1 if the newest drift check alarmed", labels=["collection"]
        )
        statistic = GaugeMetricFamily(
            "vectorforge_drift_statistic",
            "Each test of the newest drift check (classifier_auc, mmd, psi:SIGNAL ...; documents:TEST)",
            labels=["collection", "test"],
        )
        threshold = GaugeMetricFamily(
            "vectorforge_drift_threshold",
            "What each test's statistic or p-value is held to",
            labels=["collection", "test"],
        )
        for collection, check in self._checks().items():
            alarm.add_metric([collection], float(bool(check["alarm"])))
            for prefix, side in (("", check), ("documents:", check.get("documents") or {})):
                if side.get("status") != "checked":
                    continue
                for test in [*side["embeddings"]["tests"], *(side.get("signals") or {}).get("tests", [])]:
                    statistic.add_metric([collection, prefix + test["name"]], float(test["statistic"]))
                    threshold.add_metric([collection, prefix + test["name"]], float(test["threshold"]))
        yield from (alarm, statistic, threshold)


class _ShadowStats(Collector):
    """Each shadow's comparisons of the last hour, overall and per segment, read at scrape time."""

    def __init__(self, summaries: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._summaries = summaries

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "vectorforge_shadow_metric",
            "Shadow against primary over the last hour: rbo, jaccard, top1_agreement, score_delta, "
            "latency_delta_ms, queries, low_overlap (segment 'all': every query); dropped, failed",
            labels=["shadow", "segment", "metric"],
        )
        for name, summary in self._summaries().items():
            for segment, values in (("all", summary), *summary["segments"].items()):
                for metric, value in values.items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        gauge.add_metric([name, segment, metric], float(value))
        yield gauge


class Metrics:
    """The server's registry and the middleware that fills it."""

    def __init__(
        self,
        stats: Callable[[], list[dict[str, Any]]],
        latest_runs: Callable[[], list[EvalRun]] | None = None,
        online: Callable[[], dict[str, dict[str, float | int | None]]] | None = None,
        drift: Callable[[], dict[str, dict[str, Any]]] | None = None,
        shadows: Callable[[], dict[str, dict[str, Any]]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vectorforge_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "vectorforge_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.registry.register(_CollectionStats(stats))
        if latest_runs is not None:
            self.registry.register(_EvaluationStats(latest_runs))
        if online is not None:
            self.registry.register(_OnlineStats(online))
        if drift is not None:
            self.registry.register(_DriftStats(drift))
        if shadows is not None:
            self.registry.register(_ShadowStats(shadows))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() validates and hashes on every call: do it once per series
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware counting every request by route template and status."""

        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_status)
            finally:
                route = scope.get("route")
                # The route template, not the path: one series per endpoint, not per collection name.
                self.observe(
                    scope["method"], getattr(route, "path", "unmatched"), status, time.perf_counter() - start
                )

        return middleware
