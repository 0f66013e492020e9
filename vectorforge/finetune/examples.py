"""Training examples: (query, positive[, negatives]) from BEIR qrels, a gold set or a JSONL file.
Never from the split that reports: the evaluation split is named, and training on it is refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vectorforge.datasets.jsonl import read_records
from vectorforge.errors import InvalidParameter

__all__ = ["TrainingExample", "examples_from_beir", "examples_from_jsonl", "examples_from_qrels"]


@dataclass(frozen=True)
class TrainingExample:
    """A query, one document that answers it, and documents that look like answers but are not."""

    query: str
    positive: str
    query_id: str = ""
    positive_id: str = ""
    negatives: tuple[str, ...] = ()
    negative_ids: tuple[str, ...] = ()
    judged: frozenset[str] = field(default_factory=frozenset)  # every relevant id of the query

    def with_negatives(self, ids: Sequence[str], texts: Sequence[str]) -> TrainingExample:
        return replace(self, negatives=tuple(texts), negative_ids=tuple(ids))


def examples_from_qrels(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    corpus: Mapping[str, str],
    *,
    min_grade: int = 1,
) -> list[TrainingExample]:
    """One example per (query, relevant document): a query with two relevant documents gives two."""
    out = []
    for qid, judged in qrels.items():
        if qid not in queries:
            raise InvalidParameter(f"judged query {qid!r} has no text")
        relevant = [d for d, g in judged.items() if g >= min_grade]
        missing = [d for d in relevant if d not in corpus]
        if missing:
            raise InvalidParameter(f"query {qid!r} is judged against {missing[:3]}, which the corpus lacks")
        for doc in relevant:
            out.append(TrainingExample(queries[qid], corpus[doc], qid, doc, judged=frozenset(relevant)))
    if not out:
        raise InvalidParameter(
            f"the qrels hold no judgment of grade {min_grade} or more: nothing to train on"
        )
    return out


def examples_from_beir(
    folder: str | Path, split: str = "train", *, report_split: str = "test"
) -> tuple[list[TrainingExample], dict[str, str]]:
    """The examples of a BEIR folder's `split`, and the corpus (`id -> "title text"`). Training on
    the split the results are reported on is refused."""
    from vectorforge.datasets import load_beir

    if split == report_split:
        raise InvalidParameter(
            f"split {split!r} is the one results are reported on; train on another (e.g. 'train')"
        )
    ds = load_beir(folder, split=split)
    corpus = {d: ds.doc_text(d) for d in ds.corpus}
    return examples_from_qrels(ds.queries, ds.qrels, corpus), corpus


def examples_from_jsonl(path: str | Path) -> list[TrainingExample]:
    """One example a line: `{"query": ..., "positive": ..., "negatives": [...]}` (negatives optional)."""

    def parse(row: Any) -> TrainingExample:
        query, positive = row["query"], row["positive"]
        negatives = tuple(row.get("negatives") or ())
        if not all(isinstance(x, str) and x for x in (query, positive, *negatives)):
            raise TypeError("query, positive and negatives are non-empty strings")
        return TrainingExample(query, positive, negatives=negatives)

    out = list(read_records(path, parse, '{"query", "positive", "negatives": [...]}'))
    if not out:
        raise InvalidParameter(f"{path} holds no example")
    return out
