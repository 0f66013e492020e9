"""A run's report as one self-contained HTML page: plotly.js inlined, so it opens with no network."""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go

from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.regression import Change
from vectorforge.evaluation.report import report_markdown

__all__ = ["report_html", "segment_figure"]


def segment_figure(run: EvalRun, metric: str) -> go.Figure:
    """`metric` per segment: the mean as a bar, the 95% bootstrap interval as its error bar."""
    segments = list(run.segments)
    scores = [run.segments[s][metric] for s in segments]
    fig = go.Figure(
        go.Bar(
            x=[f"{s} (n={sc.n})" for s, sc in zip(segments, scores, strict=True)],
            y=[sc.mean for sc in scores],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [sc.high - sc.mean for sc in scores],
                "arrayminus": [sc.mean - sc.low for sc in scores],
            },
            name=metric,
        )
    )
    fig.update_layout(title=f"{metric} per segment", yaxis={"range": [0, 1]}, height=380, margin={"t": 40})
    return fig


def report_html(run: EvalRun, changes: Sequence[Change] = (), baseline: EvalRun | None = None) -> str:
    """Charts of every metric per segment, then the Markdown report's tables as preformatted text."""
    charts = [
        segment_figure(run, m).to_html(full_html=False, include_plotlyjs=(i == 0))
        for i, m in enumerate(run.metrics)
    ]
    title = html.escape(f"{run.goldset} on {run.collection}: run {run.run_id}")
    body = html.escape(report_markdown(run, changes, baseline))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
        f"<h1>{title}</h1>{''.join(charts)}<pre>{body}</pre></body></html>"
    )
