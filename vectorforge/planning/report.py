"""A plan as Markdown, JSON or HTML (the HTML with a chart of the what-ifs' monthly cost)."""

from __future__ import annotations

import html
import json
from typing import Any

from vectorforge.errors import InvalidParameter
from vectorforge.extras import missing_extra
from vectorforge.planning.catalog import Catalog
from vectorforge.planning.planner import Plan, plan, what_ifs
from vectorforge.planning.profile import Profile
from vectorforge.planning.workload import Workload

__all__ = ["FORMATS", "plan_report", "render"]

FORMATS = ("md", "json", "html")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _money(x: float) -> str:
    return f"${x:,.0f}"


def _rows(plan: Plan, whatifs: list[tuple[str, Plan]]) -> dict[str, list[list[str]]]:
    sizing = [
        ["points (at the horizon)", f"{plan.points:,}"],
        *[
            [f"vector {v.name} ({v.kind})",
             f"{v.index}" + (f", {v.quantization}" if v.kind == "dense" else "")
             + f": {_size(v.ram_bytes)} RAM, {_size(v.disk_bytes)} of full vectors on disk"]
            for v in plan.vectors
        ],
        ["RAM, one copy (estimate_bytes + payloads + engine)", _size(plan.ram_bytes)],
        ["Qdrant's rule (raw vectors x 1.5)", _size(plan.rules_of_thumb["qdrant_1.5x"])],
        ["Weaviate's rule (raw vectors x 2)", _size(plan.rules_of_thumb["weaviate_2x"])],
        ["disk, one copy", _size(plan.disk_bytes)],
    ]  # fmt: skip
    topology = [
        ["shards x replicas", f"{plan.shards} x {plan.replicas}"],
        ["nodes", f"{plan.nodes} x {plan.instance}"],
        ["nodes memory needs / the peak's cores need", f"{plan.memory_nodes} / {plan.cpu_nodes}"],
        ["what dominates", plan.dominant],
        ["core-ms per query (all shards)", f"{plan.core_ms_per_query:.3f}"],
        [
            "predicted p99",
            f"{plan.p99_ms:.2f} ms" + (" (meets the SLO)" if plan.meets_slo else " (MISSES the SLO)"),
        ],
    ]
    cost = [[k, _money(v)] for k, v in plan.monthly.items()]
    cost.append(["per million queries", f"${plan.cost_per_million_queries:,.2f}"])
    alternatives = [
        [label, _money(p.monthly["total"]), f"{p.nodes} x {p.instance}", p.dominant, _size(p.ram_bytes)]
        for label, p in [("this plan", plan), *whatifs]
    ]
    return {"Sizing": sizing, "Topology": topology, "Monthly cost": cost, "What-ifs": alternatives}


HEADERS = {"What-ifs": ["change", "monthly", "nodes", "dominant", "RAM, one copy"]}  # others: key, value


def plan_report(workload: Workload, catalog: Catalog, profile: Profile, fmt: str = "md") -> tuple[Plan, str]:
    """The workload's plan, and it with its what-ifs in `fmt` (the CLI's and the server's answer)."""
    if fmt not in FORMATS:
        raise InvalidParameter(f"format {fmt!r} is unknown; one of {', '.join(FORMATS)}")
    chosen = plan(workload, catalog, profile)
    return chosen, render(chosen, what_ifs(workload, catalog, profile), fmt)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render(chosen: Plan, whatifs: list[tuple[str, Plan]], fmt: str = "md") -> str:
    """The plan in `fmt` ("md", "json" or "html")."""
    if fmt == "json":
        doc: dict[str, Any] = {
            "plan": chosen.to_json(),
            "what_ifs": [{"change": k, **p.to_json()} for k, p in whatifs],
        }
        return json.dumps(doc, indent=1)
    rows = _rows(chosen, whatifs)
    source = (
        f"Prices: {chosen.catalog['name']} (as of {chosen.catalog['as_of']}: {chosen.catalog['source']}). "
        f"Throughput and latency: calibration profile {chosen.profile['name']!r} "
        f"({chosen.profile['date']}, {chosen.profile['cpus']} CPUs; dense indexes measured on "
        f"{chosen.profile.get('data', 'its generator')})."
    )
    if fmt == "md":
        parts = [f"# Capacity plan: {chosen.workload}", "", source, ""]
        for title, body in rows.items():
            parts += [f"## {title}", "", _md_table(HEADERS.get(title, ["", ""]), body), ""]
        if chosen.notes:
            parts += ["## Notes", "", *[f"- {n}" for n in chosen.notes], ""]
        return "\n".join(parts)
    if fmt == "html":
        return _html(chosen, whatifs, rows, source)
    raise InvalidParameter(f"format {fmt!r} is unknown; one of {', '.join(FORMATS)}")


def _html(plan: Plan, whatifs: list[tuple[str, Plan]], rows: dict[str, list[list[str]]], source: str) -> str:
    with missing_extra("the plan's HTML report"):
        import plotly.graph_objects as go

    labels, totals = zip(*[(k, p.monthly["total"]) for k, p in [("this plan", plan), *whatifs]], strict=True)
    figure = go.Figure(go.Bar(x=totals, y=labels, orientation="h", text=[_money(t) for t in totals]))
    figure.update_layout(
        title="monthly cost: this plan and its what-ifs", xaxis_title="USD a month", height=360
    )
    chart = figure.to_html(full_html=False, include_plotlyjs=True)
    tables = "".join(
        f"<h2>{html.escape(title)}</h2><table>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
        + "</table>"
        for title, body in rows.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in plan.notes)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Capacity plan: {html.escape(plan.workload)}"
        "</title><style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}td{padding:2px 10px;"
        "border-bottom:1px solid #ddd}</style></head><body>"
        f"<h1>Capacity plan: {html.escape(plan.workload)}</h1><p>{html.escape(source)}</p>{tables}"
        f"{chart}<ul>{notes}</ul></body></html>"
    )
