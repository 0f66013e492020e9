"""Online metrics: what users did with the results, per time window and segment.

Each stored search becomes one `SearchOutcome` (its first click, clicks, whether a click on the
top k was followed by a long enough dwell, and so on); the metrics are means of those over a
group of searches:

- `ctr@k`: share of searches with a click on one of the top k;
- `mrr`: mean of 1 / rank of the first click (0 without a click);
- `abandonment`: share of searches with neither a click nor a success event;
- `reformulation`: share of searches followed by a reformulation;
- `success@k`: share with a click on the top k whose dwell reached `dwell_s` (30 s by default, the
  usual "satisfied click"), or a success event;
- `zero_result`: share of searches that returned nothing;
- `time_to_first_click_s`: the median over searches with a click;
- `latency_p50_ms`, `latency_p95_ms`, `latency_p99_ms`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.online.events import EventStore

__all__ = ["SearchOutcome", "group_metrics", "online_metrics", "outcomes", "time_series"]

RATES = ("ctr", "mrr", "abandonment", "reformulation", "success", "zero_result")
LATENCIES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    """One search and what followed it."""

    query_id: str
    time: float
    collection: str
    segment: str | None
    experiment: str | None
    arm: str | None
    user_id: str | None
    session_id: str | None
    latency_ms: float
    n_results: int
    clicks: tuple[int, ...]  # ranks clicked, in click order
    clicked_ids: tuple[str, ...]
    first_click_s: float | None  # seconds from the search to its first click
    satisfied_ranks: tuple[int, ...]  # ranks of clicks whose dwell reached the threshold
    reformulated: bool
    succeeded: bool
    results: tuple[tuple[Any, ...], ...]  # [id, score] or [id, score, team]

    def clicked_top(self, k: int) -> bool:
        return any(r <= k for r in self.clicks)

    def success_at(self, k: int) -> bool:
        return self.succeeded or any(r <= k for r in self.satisfied_ranks)


def outcomes(
    store: EventStore,
    *,
    collection: str | None = None,
    experiment: str | None = None,
    start: float | None = None,
    end: float | None = None,
    dwell_s: float = 30.0,
) -> list[SearchOutcome]:
    """Every stored search in [start, end) with what followed it."""
    if dwell_s < 0:
        raise InvalidParameter(f"dwell_s must be at least 0, not {dwell_s}")
    searches = store.searches(collection=collection, experiment=experiment, start=start, end=end)
    by_query: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in store.feedback([s["query_id"] for s in searches]):
        by_query[event["query_id"]].append(event)
    out = []
    for s in searches:
        events = by_query.get(s["query_id"], [])
        clicks = [e for e in events if e["type"] == "click"]
        dwell: dict[str, float] = {}
        for e in events:
            if e["type"] == "dwell" and e["doc_id"] is not None:
                dwell[e["doc_id"]] = max(dwell.get(e["doc_id"], 0.0), float(e["dwell_s"]))
        out.append(
            SearchOutcome(
                query_id=s["query_id"],
                time=float(s["time"]),
                collection=s["collection"],
                segment=s["segment"],
                experiment=s["experiment"],
                arm=s["arm"],
                user_id=s["user_id"],
                session_id=s["session_id"],
                latency_ms=float(s["latency_ms"]),
                n_results=int(s["n_results"]),
                clicks=tuple(int(c["rank"]) for c in clicks),
                clicked_ids=tuple(str(c["doc_id"]) for c in clicks),
                first_click_s=(max(0.0, float(clicks[0]["time"]) - float(s["time"])) if clicks else None),
                satisfied_ranks=tuple(
                    int(c["rank"]) for c in clicks if dwell.get(str(c["doc_id"]), -1.0) >= dwell_s
                ),
                reformulated=any(e["type"] == "reformulation" for e in events),
                succeeded=any(e["type"] == "success" for e in events),
                results=tuple(tuple(r) for r in s["results"]),
            )
        )
    return out


def group_metrics(found: Sequence[SearchOutcome], k: int = 10) -> dict[str, float | int | None]:
    """The online metrics of a group of searches (`None` where the group has no data for one)."""
    if k < 1:
        raise InvalidParameter(f"k must be at least 1, not {k}")
    n = len(found)
    out: dict[str, float | int | None] = {"searches": n}
    if n == 0:
        out.update({f"{m}@{k}" if m in ("ctr", "success") else m: None for m in RATES})
        out.update(dict.fromkeys(("time_to_first_click_s", *LATENCIES)))
        return out
    first = np.array([min(o.clicks) if o.clicks else 0 for o in found], dtype=np.float64)
    out[f"ctr@{k}"] = float(np.mean([o.clicked_top(k) for o in found]))
    out["mrr"] = float(np.mean(np.divide(1.0, first, out=np.zeros_like(first), where=first > 0)))
    out["abandonment"] = float(np.mean([not o.clicks and not o.succeeded for o in found]))
    out["reformulation"] = float(np.mean([o.reformulated for o in found]))
    out[f"success@{k}"] = float(np.mean([o.success_at(k) for o in found]))
    out["zero_result"] = float(np.mean([o.n_results == 0 for o in found]))
    waits = [o.first_click_s for o in found if o.first_click_s is not None]
    out["time_to_first_click_s"] = float(np.median(waits)) if waits else None
    p50, p95, p99 = np.percentile([o.latency_ms for o in found], [50, 95, 99])
    out.update(zip(LATENCIES, (float(p50), float(p95), float(p99)), strict=True))
    return out


def online_metrics(
    found: Iterable[SearchOutcome], *, by: str | None = "segment", k: int = 10
) -> dict[str, dict[str, float | int | None]]:
    """Metrics of all searches ("all") and of each group by `by` ("segment", "arm", "experiment",
    "collection", or None for "all" only), named "BY:VALUE"."""
    if by not in (None, "segment", "arm", "experiment", "collection"):
        raise InvalidParameter(f"group by 'segment', 'arm', 'experiment' or 'collection', not {by!r}")
    found = list(found)
    groups: dict[str, list[SearchOutcome]] = {"all": found}
    if by is not None:
        for o in found:
            label = getattr(o, by)
            if label is not None:
                groups.setdefault(f"{by}:{label}", []).append(o)
    return {name: group_metrics(members, k) for name, members in groups.items()}


def time_series(
    found: Iterable[SearchOutcome], *, step_s: float, k: int = 10, start: float | None = None
) -> list[dict[str, Any]]:
    """The metrics of consecutive windows of `step_s` seconds (from `start`, or the first
    search), oldest first; empty windows are kept, with zero searches."""
    if not step_s > 0:
        raise InvalidParameter(f"the window step must be a positive number of seconds, not {step_s}")
    found = sorted(found, key=lambda o: o.time)
    if not found:
        return []
    origin = found[0].time if start is None else start
    buckets: dict[int, list[SearchOutcome]] = defaultdict(list)
    for o in found:
        if o.time >= origin:
            buckets[int((o.time - origin) // step_s)].append(o)
    if not buckets:
        return []
    windows = []
    for i in range(max(buckets) + 1):
        lo = origin + i * step_s
        windows.append({"start": lo, "end": lo + step_s, **group_metrics(buckets.get(i, []), k)})
    return windows
