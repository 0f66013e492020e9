"""Prometheus metrics: per-route request counts and latencies, and per-collection gauges."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

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
        for info in self._stats():
            name = info["name"]
            points.add_metric([name], info["points"])
            segments.add_metric([name], len(info["segments"]))
            wal.add_metric([name], info["wal_bytes"])
        yield from (points, segments, wal)


class Metrics:
    """The server's registry and the middleware that fills it."""

    def __init__(self, stats: Callable[[], list[dict[str, Any]]]) -> None:
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

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            # The route template, not the path: one series per endpoint, not per collection name.
            template = getattr(route, "path", "unmatched")
            self.requests.labels(request.method, template, str(status)).inc()
            self.latency.labels(request.method, template).observe(time.perf_counter() - start)
