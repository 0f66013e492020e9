"""Hard negatives mined through a vectorforge collection with the current model, positive-aware
(NV-Retriever's TopK-PercPos): a candidate counts only if it scores below `margin` times the
positive's score, because one that scores about as high is likely an unjudged answer (a false
negative), and training against it would teach the model to push real answers away."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vectorforge.api import CollectionAPI
from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample

__all__ = ["MiningReport", "mine_hard_negatives"]


@dataclass
class MiningReport:
    """What mining found: how many negatives, how their scores compare with the positives', and
    how many candidates were skipped as likely false negatives."""

    examples: int = 0
    with_negatives: int = 0
    candidates: int = 0
    skipped_as_false_negatives: int = 0
    positive_scores: list[float] = field(default_factory=list)
    negative_scores: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def quantiles(values: list[float]) -> dict[str, float]:
            if not values:
                return {}
            q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
            return dict(zip(("p5", "p25", "p50", "p75", "p95"), map(float, q), strict=True))

        return {
            "examples": self.examples,
            "with_negatives": self.with_negatives,
            "candidates": self.candidates,
            "skipped_as_false_negatives": self.skipped_as_false_negatives,
            "skipped_share": self.skipped_as_false_negatives / self.candidates if self.candidates else 0.0,
            "positive_scores": quantiles(self.positive_scores),
            "negative_scores": quantiles(self.negative_scores),
            "settings": self.settings,
        }


def mine_hard_negatives(
    collection: CollectionAPI,
    examples: Sequence[TrainingExample],
    corpus: Mapping[str, str],
    *,
    n: int = 1,
    skip_top: int = 3,
    depth: int = 50,
    margin: float = 0.95,
    using: str | None = None,
    mode: str | None = None,
    progress: bool = False,
) -> tuple[list[TrainingExample], MiningReport]:
    """Each example with up to `n` negatives: the best-ranked candidates between rank `skip_top`
    and `depth` of the collection's answer to the query that are not judged relevant and score
    below `margin` x the positive's score. Examples need `positive_id` (BEIR or gold set data).
    `using`/`mode` mine with BM25 or hybrid where the collection has them."""
    if not 0 < margin <= 1 or n < 1 or not 0 <= skip_top < depth:
        raise InvalidParameter("mining needs 0 < margin <= 1, n >= 1 and 0 <= skip_top < depth")
    report = MiningReport(
        settings={
            "n": n,
            "skip_top": skip_top,
            "depth": depth,
            "margin": margin,
            "using": using,
            "mode": mode,
        }
    )
    out = []
    for ex in tqdm(examples, desc="mining negatives", unit="query", disable=not progress):
        if not ex.positive_id:
            raise InvalidParameter("mining needs examples with document ids (from qrels or a gold set)")
        report.examples += 1
        hits = collection.query(ex.query, depth, using=using, mode=mode, with_payload=False)
        scores = {str(h.id): h.score for h in hits}
        positive = scores.get(ex.positive_id)
        if positive is None:  # beyond the depth: its own score, through a search of it alone
            only = {"must": [{"has_id": [_id(ex.positive_id, hits)]}]}
            found = collection.query(ex.query, 1, using=using, mode=mode, filter=only, with_payload=False)
            positive = found[0].score if found else None
        if positive is None:
            out.append(ex)
            continue
        report.positive_scores.append(positive)
        picked: list[str] = []
        for hit in hits[skip_top:]:
            doc = str(hit.id)
            if doc in ex.judged or doc == ex.positive_id or doc not in corpus:
                continue
            report.candidates += 1
            if hit.score >= margin * positive:
                report.skipped_as_false_negatives += 1
                continue
            picked.append(doc)
            report.negative_scores.append(hit.score)
            if len(picked) == n:
                break
        if picked:
            report.with_negatives += 1
        out.append(ex.with_negatives(picked, [corpus[d] for d in picked]))
    return out, report


def _id(doc: str, hits: Sequence[Any]) -> int | str:
    """The id as the collection holds it: an int if the collection's ids are ints."""
    if hits and isinstance(hits[0].id, int) and doc.isdigit():
        return int(doc)
    return doc
