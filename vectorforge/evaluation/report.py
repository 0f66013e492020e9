"""Reports of a run (and of its comparison with a baseline) as Markdown and JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vectorforge.evaluation.history import EvalRun, SegmentScore
from vectorforge.evaluation.regression import Change

__all__ = ["MAX_HALFWIDTH", "report_json", "report_markdown", "too_small"]

MAX_HALFWIDTH = 0.05
"""A segment whose interval is wider than +-this is flagged: its mean is not known well enough to
judge a change of the size that matters."""


def too_small(score: SegmentScore, max_halfwidth: float = MAX_HALFWIDTH) -> bool:
    return score.n < 2 or (score.high - score.low) / 2 > max_halfwidth


def report_json(
    run: EvalRun, changes: Sequence[Change] = (), baseline: EvalRun | None = None, *, per_query: bool = True
) -> dict[str, Any]:
    out = run.to_json(per_query=per_query)
    out["too_small"] = sorted(
        seg for seg, scores in run.segments.items() if any(too_small(s) for s in scores.values())
    )
    if baseline is not None:
        out["baseline_run_id"] = baseline.run_id
        out["changes"] = [c.to_json() for c in changes]
    return out


def report_markdown(
    run: EvalRun,
    changes: Sequence[Change] = (),
    baseline: EvalRun | None = None,
    *,
    max_halfwidth: float = MAX_HALFWIDTH,
) -> str:
    """Metrics per segment with 95% bootstrap intervals, then the comparison with the baseline."""
    metrics = list(run.metrics)
    system = run.system
    lines = [
        f"# {run.goldset} on {run.collection}",
        "",
        f"Run `{run.run_id}` at {run.created_at}; gold set version `{run.goldset_version}`"
        + (f"; label {run.label!r}" if run.label else ""),
        "",
        f"System: {system.get('points', '?')} points, index {system.get('index', '?')}"
        f"{' ' + str(system['index_params']) if system.get('index_params') else ''}, embedder "
        f"{(system.get('embedder') or {}).get('name', 'none')}; search {dict(run.config)}",
        "",
        "| segment | queries | " + " | ".join(metrics) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]
    flagged = False
    for seg, scores in run.segments.items():
        n = next(iter(scores.values())).n if scores else 0
        cells = []
        for m in metrics:
            s = scores[m]
            small = too_small(s, max_halfwidth)
            flagged |= small
            cells.append(f"{s.mean:.4f} [{s.low:.3f}, {s.high:.3f}]{' (!)' if small else ''}")
        lines.append(f"| {seg} | {n} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Intervals: 95% bootstrap (percentile) of the mean over the segment's queries.")
    if flagged:
        lines.append(
            f"(!) too few queries to judge by the mean alone: the interval is wider than +-{max_halfwidth}; "
            "compare runs on such a segment with the paired test (below), not by their means."
        )
    if baseline is not None:
        lines += ["", f"## Against `{baseline.run_id}` ({baseline.created_at})", ""]
        regressed = [c for c in changes if c.regression]
        improved = [c for c in changes if c.improvement]
        least = changes[0].min_effect if changes else 0
        lines.append(
            f"{len(regressed)} regressions, {len(improved)} improvements "
            f"(paired test, Holm-corrected, and a change of at least {least})."
        )
        lines += [
            "",
            "| segment | metric | n | baseline | run | diff | p (Holm) | d | |",
            "|---|---|" + "---:|" * 6 + "---|",
        ]
        for c in changes:
            verdict = "REGRESSION" if c.regression else "improved" if c.improvement else ""
            if c.underpowered and not verdict:
                verdict = f"underpowered (detects >= {c.detectable:.3f})"
            lines.append(
                f"| {c.segment} | {c.metric} | {c.n} | {c.baseline:.4f} | {c.candidate:.4f} | "
                f"{c.diff:+.4f} | {c.p_adjusted:.3g} | {_d(c.effect_size)} | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def _d(effect: float | None) -> str:
    return "-" if effect is None else f"{effect:+.2f}"
