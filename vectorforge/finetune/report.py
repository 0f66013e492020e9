"""One fine-tuning run's report: the data, the mining, the training curve, every WiSE-FT mix the
guard judged, the choice and why; as JSON, Markdown and a self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FinetuneReport", "loss_curve"]

_BARS = "▁▂▃▄▅▆▇█"


def loss_curve(losses: Sequence[tuple[int, float]], points: int = 12) -> list[tuple[int, float]]:
    """The training loss averaged over `points` equal spans of steps: (last step of the span, mean)."""
    if not losses:
        return []
    spans = np.array_split(np.asarray(losses, dtype=float), min(points, len(losses)))
    return [(int(span[-1, 0]), float(span[:, 1].mean())) for span in spans]


def _sparkline(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    scale = (len(_BARS) - 1) / (hi - lo) if hi > lo else 0.0
    return "".join(_BARS[round((v - lo) * scale)] for v in values)


@dataclass
class FinetuneReport:
    """What `vectorforge finetune` writes beside the model (report.json, report.md, report.html)."""

    model: str  # the registered NAME@VERSION, or the output folder
    base: str
    data: dict[str, Any]  # source, examples, data_hash, weaker (True for the offline fallback)
    training: dict[str, Any]  # steps, seconds, losses, config, loss
    mining: dict[str, Any] | None = None
    guard: dict[str, Any] | None = None  # GuardReport.to_json()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base": self.base,
            "data": self.data,
            "mining": self.mining,
            "training": self.training,
            "guard": self.guard,
            **self.extra,
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=1, default=str)

    def to_markdown(self) -> str:
        t = self.training
        lines = [f"# Fine-tuning report: {self.model}", "", f"Base model: `{self.base}`", "", "## Data", ""]
        lines += [f"- {k}: {v}" for k, v in self.data.items()]
        if self.data.get("weaker"):
            lines.append("- **offline pseudo-queries: the weaker path** (no judged or LLM-written queries)")
        if self.mining:
            m = self.mining
            lines += ["", "## Hard negatives", ""]
            lines.append(
                f"{m['with_negatives']} of {m['examples']} examples got a negative; "
                f"{m['skipped_as_false_negatives']} of {m['candidates']} candidates "
                f"({m['skipped_share']:.1%}) skipped as likely false negatives."
            )
            lines += ["", "| scores | p5 | p25 | p50 | p75 | p95 |", "|---|---|---|---|---|---|"]
            for label in ("positive_scores", "negative_scores"):
                q = m.get(label) or {}
                if q:
                    cells = " | ".join(f"{q[p]:.3f}" for p in ("p5", "p25", "p50", "p75", "p95"))
                    lines.append(f"| {label.split('_')[0]} | {cells} |")
        curve = loss_curve([(int(s), float(v)) for s, v in t.get("losses", [])])
        lines += ["", "## Training", ""]
        lines.append(
            f"{t.get('loss', 'MultipleNegativesRankingLoss')}, {t['steps']} steps on "
            f"{self.data.get('examples', '?')} examples in {t['seconds']:.0f} s."
        )
        if curve:
            lines += [
                "",
                f"Loss {_sparkline([v for _, v in curve])} ({curve[0][1]:.3f} -> {curve[-1][1]:.3f})",
            ]
            lines += ["", "| up to step | mean loss |", "|---|---|"]
            lines += [f"| {step} | {value:.4f} |" for step, value in curve]
        cfg = t.get("config") or {}
        if cfg:
            lines += ["", "Settings: " + ", ".join(f"{k}={v}" for k, v in cfg.items())]
        if self.guard:
            lines += self._guard_markdown(self.guard)
        return "\n".join(lines) + "\n"

    @staticmethod
    def _guard_markdown(g: dict[str, Any]) -> list[str]:
        sets = [g["domain"], *g["general"]]
        lines = ["", "## The forgetting guard", ""]
        lines.append(
            f"Domain: {g['domain']}; general: {', '.join(g['general'])}. A mix passes when every general "
            f"set's nDCG@10 is at most {g['settings']['max_drop'] * 100:g} point(s) below the base's and "
            f"not significantly worse (paired t-test, p < {g['settings']['significance']})."
        )
        head = " | ".join(f"{s} nDCG@10 | p vs base" for s in sets)
        lines += ["", f"| model | {head} | guard |", "|---|" + "---|---|" * len(sets) + "---|"]
        for c in g["candidates"]:
            cells = []
            for s in sets:
                p = c["vs_base"].get(s, {}).get("p_value")
                cells.append(f"{c['scores'][s]['ndcg@10']:.4f} | {'' if p is None else f'{p:.3g}'}")
            verdict = "" if c["alpha"] is None else ("pass" if c["passes"] else f"fail: {c['why']}")
            lines.append(f"| {c['name']} | {' | '.join(cells)} | {verdict} |")
        lines += ["", f"**Chosen: {g['chosen']}**. {g['reason']}."]
        return lines

    def to_html(self) -> str:
        import plotly.graph_objects as go

        losses = self.training.get("losses") or []
        fig = go.Figure(
            go.Scatter(x=[s for s, _ in losses], y=[v for _, v in losses], mode="lines", name="loss")
        )
        fig.update_layout(title="training loss", xaxis_title="step", yaxis_title="loss", height=360)
        title = html.escape(f"Fine-tuning report: {self.model}")
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            f"<h1>{title}</h1>{fig.to_html(full_html=False, include_plotlyjs=True)}"
            f"<pre>{html.escape(self.to_markdown())}</pre></body></html>"
        )

    def files(self) -> dict[str, str]:
        """report.json, report.md and report.html, rendered."""
        return {
            "report.json": self.json_text(),
            "report.md": self.to_markdown(),
            "report.html": self.to_html(),
        }

    def write(self, folder: str | Path, files: dict[str, str] | None = None) -> dict[str, Path]:
        """The report's files (`files()`, or ones rendered already) in `folder`."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, text in (files or self.files()).items():
            paths[name.removeprefix("report.")] = out / name
            (out / name).write_text(text)
        return paths
