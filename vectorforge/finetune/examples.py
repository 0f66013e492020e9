"""Training examples: (query, positive[, negatives]) from BEIR qrels, a gold set or a JSONL file.
Never from the split that reports: the evaluation split is named, and training on it is refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vectorforge.api import CollectionAPI
from vectorforge.datasets.jsonl import read_records
from vectorforge.errors import InvalidParameter

if TYPE_CHECKING:
    from vectorforge.evaluation.goldsets import GoldSet

__all__ = [
    "TrainingExample",
    "corpus_from_collection",
    "examples_from_beir",
    "examples_from_goldset",
    "examples_from_jsonl",
    "examples_from_qrels",
    "payload_texts",
]


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
    """One example a line: `{"query": ..., "positive": ..., "negatives": [...]}` (negatives optional;
    `positive_id`, the passage's id in the collection, lets negatives be mined for the example)."""

    def parse(row: Any) -> TrainingExample:
        query, positive = row["query"], row["positive"]
        negatives = tuple(row.get("negatives") or ())
        positive_id = row.get("positive_id", "")
        if not all(isinstance(x, str) and x for x in (query, positive, *negatives)):
            raise TypeError("query, positive and negatives are non-empty strings")
        if isinstance(positive_id, bool) or not isinstance(positive_id, str | int):
            raise TypeError("positive_id is a string or an integer")
        pid = str(positive_id)
        return TrainingExample(
            query, positive, positive_id=pid, negatives=negatives, judged=frozenset({pid} if pid else ())
        )

    out = list(read_records(path, parse, '{"query", "positive", "negatives": [...], "positive_id"}'))
    if not out:
        raise InvalidParameter(f"{path} holds no example")
    return out


def examples_from_goldset(
    goldset: GoldSet, corpus: Mapping[str, str], *, reported: Sequence[GoldSet] = ()
) -> list[TrainingExample]:
    """The examples of a gold set kept for training (e.g. one imported from a `train` split).
    Refused if it shares a query, by id or by text, with a gold set that results are `reported` on."""
    for other in reported:
        shared_ids = set(goldset.queries) & set(other.queries)
        texts = {t.strip().lower() for t in other.queries.values()}
        shared_texts = [q for q, t in goldset.queries.items() if t.strip().lower() in texts]
        if shared_ids or shared_texts:
            shown = sorted(shared_ids or set(shared_texts))[:3]
            raise InvalidParameter(
                f"gold set {goldset.name!r} shares {len(shared_ids or shared_texts)} queries with "
                f"{other.name!r}, which results are reported on (e.g. {shown}); train on a split of its own"
            )
    return examples_from_qrels(goldset.queries, goldset.qrels, corpus)


def payload_texts(collection: CollectionAPI, *fields: str) -> dict[str, dict[str, str]]:
    """For each field, `payload[field]` by id (as str) of the points that have it as a non-empty
    str: one scroll of the collection for all of them."""
    out: dict[str, dict[str, str]] = {f: {} for f in fields}
    cursor: str | None = None
    while True:
        page = collection.scroll(1000, cursor, with_payload=True)
        for rec in page.records:
            payload = rec.payload or {}
            for f in fields:
                value = payload.get(f)
                if isinstance(value, str) and value:
                    out[f][str(rec.id)] = value
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def corpus_from_collection(collection: CollectionAPI, text_field: str = "text") -> dict[str, str]:
    """Every point's `payload[text_field]` by id (as str): the texts `add()` stored."""
    corpus = payload_texts(collection, text_field)[text_field]
    if not corpus:
        raise InvalidParameter(
            f"collection {collection.name!r} has no texts in payload[{text_field!r}]; add them with add()"
        )
    return corpus
