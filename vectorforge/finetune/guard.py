"""The forgetting guard: judge a tuned model against its base on the domain and on general-domain
sets, across WiSE-FT mixes, and choose the best domain score that forgets nothing.

Every candidate (the base, then `(1 - alpha) * base + alpha * tuned` for each alpha) embeds each
corpus into a temporary flat collection (exact search: the index does not blur the comparison) and
is scored on the set's gold set with the evaluation module; the general-domain scores are paired
with the base's on the same queries (t-test). A candidate passes when, on every general set, its
nDCG@10 is at most `max_drop` below the base's and not significantly worse. The choice is the
passing candidate with the best domain score; the base itself when none passes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectorforge.api import DatabaseAPI
from vectorforge.evaluation.evaluator import evaluate_collection
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.history import EvalRun
from vectorforge.evaluation.stats import compare
from vectorforge.finetune.models import register_model, weights_version
from vectorforge.finetune.wiseft import interpolate

__all__ = ["ALPHAS", "Candidate", "GuardReport", "GuardSet", "choose", "forgetting_guard"]

ALPHAS = (0.3, 0.5, 0.7, 1.0)
METRICS = ("ndcg@10", "recall@100")


@dataclass(frozen=True)
class GuardSet:
    """A corpus (id -> text) and the gold set judged on it."""

    name: str
    corpus: Mapping[str, str]
    goldset: GoldSet

    @classmethod
    def from_beir(cls, folder: str | Path, split: str = "test", name: str | None = None) -> GuardSet:
        """A BEIR folder's corpus and the gold set of its `split`."""
        from vectorforge.datasets import load_beir
        from vectorforge.evaluation.goldsets import from_beir

        name = name or Path(folder).name
        ds = load_beir(folder, split=None)
        corpus = {d: ds.doc_text(d) for d in ds.corpus}
        return cls(name, corpus, from_beir(folder, name=name, split=split))


@dataclass
class Candidate:
    """One model of the sweep: its scores per set, its tests against the base, its verdict."""

    name: str
    alpha: float | None  # None: the base model
    path: Path
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # set -> metric -> mean
    vs_base: dict[str, dict[str, Any]] = field(default_factory=dict)  # set -> PairedTest.to_json()
    drops: dict[str, float] = field(default_factory=dict)  # general set -> base - candidate nDCG@10
    passes: bool = True
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alpha": self.alpha,
            "scores": self.scores,
            "vs_base": self.vs_base,
            "drops": self.drops,
            "passes": self.passes,
            "why": self.why,
        }


@dataclass
class GuardReport:
    domain: str
    general: list[str]
    candidates: list[Candidate]
    chosen: Candidate
    reason: str
    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "general": self.general,
            "candidates": [c.to_json() for c in self.candidates],
            "chosen": self.chosen.name,
            "chosen_alpha": self.chosen.alpha,
            "reason": self.reason,
            "settings": self.settings,
        }


def forgetting_guard(
    db: DatabaseAPI,
    base: str | Path,
    tuned: str | Path,
    domain: GuardSet,
    general: Sequence[GuardSet],
    work: str | Path,
    *,
    alphas: Sequence[float] = ALPHAS,
    metrics: Sequence[str] = METRICS,
    max_drop: float = 0.01,
    significance: float = 0.05,
    progress: bool = False,
) -> GuardReport:
    """Sweep WiSE-FT mixes of `base` and `tuned` (model folders) and choose one (see the module)."""
    work = Path(work)
    metrics = list(dict.fromkeys(["ndcg@10", *metrics]))
    candidates = [Candidate("base", None, Path(base))]
    for alpha in alphas:
        name = f"alpha-{alpha:g}"
        path = Path(tuned) if alpha == 1.0 else interpolate(base, tuned, alpha, work / name)
        candidates.append(Candidate(name, alpha, path))
    sets = [domain, *general]
    runs: dict[str, dict[str, EvalRun]] = {}
    for cand in candidates:
        embedder = f"guard-{weights_version(cand.path)}"  # by weights: the embedding cache serves reruns
        register_model(embedder, cand.path)
        runs[cand.name] = {s.name: _evaluate(db, embedder, s, metrics, progress) for s in sets}
        cand.scores = {s: {m: run.metrics[m] for m in metrics} for s, run in runs[cand.name].items()}
    for cand in candidates[1:]:
        for s in sets:
            test = compare(runs["base"][s.name].per_query, runs[cand.name][s.name].per_query, "ndcg@10")
            cand.vs_base[s.name] = test.to_json()
    chosen, reason = choose(candidates, domain.name, [s.name for s in general], max_drop, significance)
    settings = {
        "alphas": list(alphas),
        "metrics": metrics,
        "max_drop": max_drop,
        "significance": significance,
    }
    return GuardReport(domain.name, [s.name for s in general], candidates, chosen, reason, settings)


def choose(
    candidates: Sequence[Candidate],
    domain: str,
    general: Sequence[str],
    max_drop: float = 0.01,
    significance: float = 0.05,
) -> tuple[Candidate, str]:
    """Give each mix (candidates[1:]; candidates[0] is the base) its verdict, then choose: the best
    domain nDCG@10 among those that pass, if it beats the base; else the base. Needs `scores` and
    `vs_base` filled in; sets `drops`, `passes` and `why`."""
    base = candidates[0]
    for cand in candidates[1:]:
        problems = []
        for s in general:
            drop = base.scores[s]["ndcg@10"] - cand.scores[s]["ndcg@10"]
            cand.drops[s] = drop
            test = cand.vs_base[s]
            if drop > max_drop:
                problems.append(
                    f"{s} nDCG@10 {drop * 100:.2f} points below the base (max {max_drop * 100:g})"
                )
            elif test["diff"] < 0 and test["p_value"] < significance:
                problems.append(f"{s} significantly worse (p={test['p_value']:.3g})")
        cand.passes = not problems
        cand.why = "; ".join(problems) or f"forgets nothing measurable on {', '.join(general)}"
    passing = [c for c in candidates[1:] if c.passes]

    def score(c: Candidate) -> float:
        return c.scores[domain]["ndcg@10"]

    if not passing:
        return base, "no mix passes the guard: the base stays"
    best = max(passing, key=score)
    reason = (
        f"{best.name}: the best {domain} nDCG@10 ({score(best):.4f}, base {score(base):.4f}) "
        f"among the {len(passing)} of {len(candidates) - 1} mixes that pass the guard"
    )
    if score(best) <= score(base):
        return base, reason + "; no better than the base, so the base stays"
    return best, reason


def _evaluate(db: DatabaseAPI, embedder: str, s: GuardSet, metrics: Sequence[str], progress: bool) -> EvalRun:
    name = f"guard_{re.sub(r'[^A-Za-z0-9_-]', '_', s.name)[:40]}_{uuid.uuid4().hex[:8]}"
    col = db.create_collection(name, embedder=embedder, index="flat")
    try:
        ids = list(s.corpus)
        col.add([s.corpus[d] for d in ids], ids=ids, batch_size=256, progress=progress)
        return evaluate_collection(col, s.goldset, metrics, progress=progress)
    finally:
        db.delete_collection(name)
