"""Training queries with no LLM at all: inverse-cloze pseudo-queries (Lee et al., 2019: a random
sentence of a passage is the query, the rest of the passage its positive) and titles as queries
where the corpus has titles. Both are weaker than real or LLM-written queries: a sentence or a
title is not how users ask, and the model learns to match wording more than need. Every report
says so."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vectorforge.errors import InvalidParameter
from vectorforge.finetune.examples import TrainingExample

__all__ = ["METHODS", "OfflineReport", "inverse_cloze", "offline_queries", "titles_as_queries"]

WEAKER = (
    "offline pseudo-queries (no LLM): weaker than real or LLM-written queries; expect smaller gains, "
    "and check the forgetting guard"
)
METHODS = ("ictitle", "ict", "titles")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


@dataclass
class OfflineReport:
    """What the offline path made, and the reminder that it is the weaker path."""

    method: str
    passages: int = 0
    examples: int = 0
    skipped: int = 0  # passages too short for a sentence query, or without a title
    seed: int = 0
    note: str = WEAKER

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def inverse_cloze(
    corpus: Mapping[str, str], *, seed: int = 0, min_sentences: int = 3, min_words: int = 5
) -> tuple[list[TrainingExample], OfflineReport]:
    """One example a passage of at least `min_sentences` sentences: a sentence of `min_words` or
    more, drawn at random (seeded per passage), is the query; the passage without it is the
    positive, so the model cannot just find the words again."""
    report = OfflineReport("ict", passages=len(corpus), seed=seed)
    out = []
    for doc, text in corpus.items():
        sentences = [s for s in _SENTENCE_END.split(" ".join(text.split())) if s]
        usable = [i for i, s in enumerate(sentences) if len(s.split()) >= min_words]
        if len(sentences) < min_sentences or not usable:
            report.skipped += 1
            continue
        i = random.Random(f"{seed}:{doc}").choice(usable)
        rest = " ".join(sentences[:i] + sentences[i + 1 :])
        out.append(TrainingExample(sentences[i], rest, f"ict:{doc}", doc, judged=frozenset({doc})))
    report.examples = len(out)
    return out, report


def titles_as_queries(
    titles: Mapping[str, str], passages: Mapping[str, str], *, min_words: int = 3
) -> tuple[list[TrainingExample], OfflineReport]:
    """The title of each passage as its query (BEIR corpora and `vectorforge import` keep titles);
    `passages` should be the bodies without the title, or the pair is trivial to match."""
    report = OfflineReport("titles", passages=len(passages))
    out = []
    for doc, body in passages.items():
        title = " ".join(titles.get(doc, "").split())
        body = body.strip()
        if body.startswith(title):  # a "title text" passage: train against the text alone
            body = body[len(title) :].strip()
        if len(title.split()) < min_words or not body:
            report.skipped += 1
            continue
        out.append(TrainingExample(title, body, f"title:{doc}", doc, judged=frozenset({doc})))
    report.examples = len(out)
    return out, report


def offline_queries(
    corpus: Mapping[str, str],
    titles: Mapping[str, str] | None = None,
    *,
    method: str = "ictitle",
    seed: int = 0,
) -> tuple[list[TrainingExample], OfflineReport]:
    """`method` "ict", "titles" or "ictitle" (both: a title query and an inverse-cloze query per
    passage where each can be made)."""
    if method not in METHODS:
        raise InvalidParameter(f"offline method {method!r} is not one of {', '.join(METHODS)}")
    if method != "ict" and not any((titles or {}).values()):
        raise InvalidParameter(f"offline method {method!r} needs titles, and the corpus has none: use 'ict'")
    parts = []
    if method in ("ict", "ictitle"):
        parts.append(inverse_cloze(corpus, seed=seed))
    if method in ("titles", "ictitle"):
        parts.append(titles_as_queries(titles or {}, corpus))
    examples = [ex for found, _ in parts for ex in found]
    report = OfflineReport(method, passages=len(corpus), examples=len(examples), seed=seed)
    report.skipped = sum(r.skipped for _, r in parts)
    return examples, report
