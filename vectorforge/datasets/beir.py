"""BEIR-format data sets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from vectorforge.errors import InvalidParameter

__all__ = ["BeirDataset", "load_beir", "load_beir_queries"]


@dataclass
class BeirDataset:
    """corpus: doc id -> {"title", "text"}; queries: query id -> text; qrels: query id -> doc id -> grade."""

    corpus: dict[str, dict[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def doc_text(self, doc_id: str) -> str:
        """Title and body joined, as sentence-transformers' BEIR evaluation does."""
        doc = self.corpus[doc_id]
        return (doc.get("title", "") + " " + doc.get("text", "")).strip()


def load_beir(folder: str | Path, split: str | None = "test") -> BeirDataset:
    """Read a BEIR folder. With `split`, keep only the queries judged in qrels/<split>.tsv."""
    root = Path(folder)
    if not (root / "corpus.jsonl").is_file():
        raise InvalidParameter(f"{root} is not a BEIR folder: corpus.jsonl is missing")
    corpus = {}
    with open(root / "corpus.jsonl") as f:
        for line in f:
            doc = json.loads(line)
            corpus[str(doc["_id"])] = {"title": doc.get("title", ""), "text": doc.get("text", "")}
    queries, qrels = load_beir_queries(root, split)
    return BeirDataset(corpus, queries, qrels)


def load_beir_queries(
    folder: str | Path, split: str | None = "test"
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """A BEIR folder's queries and the judgments of `split` (then only the judged queries), without
    reading the corpus."""
    root = Path(folder)
    if not (root / "queries.jsonl").is_file() and not (root / "corpus.jsonl").is_file():
        raise InvalidParameter(f"{root} is not a BEIR folder: queries.jsonl and corpus.jsonl are missing")
    queries = {}
    if (root / "queries.jsonl").is_file():
        with open(root / "queries.jsonl") as f:
            for line in f:
                q = json.loads(line)
                queries[str(q["_id"])] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    if split is not None:
        path = root / "qrels" / f"{split}.tsv"
        if not path.is_file():
            raise InvalidParameter(f"split {split!r} not found: {path} is missing")
        with open(path) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
        queries = {qid: text for qid, text in queries.items() if qid in qrels}
    return queries, qrels
