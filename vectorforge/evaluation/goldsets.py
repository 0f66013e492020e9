"""Gold sets: versioned queries, graded judgments and segment tags per query.

A gold set's version is a hash of its content (queries, judgments, segments), so the same content
is the same version wherever it was made, and any change makes a new one. Runs record the version
they were scored on; old versions stay in the store, so old runs keep pointing at theirs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.datasets.jsonl import read_records
from vectorforge.errors import InvalidParameter

__all__ = ["ALL", "GoldSet", "from_beir", "from_jsonl", "from_tsv"]

ALL = "all"
"""The segment every query belongs to."""


@dataclass(frozen=True)
class GoldSet:
    """Queries (`qid -> text`), judgments (`qid -> docid -> grade`) and segment tags
    (`qid -> {dimension: value}`, e.g. `{"source": "INEX_LD", "length": "1-2 words"}`)."""

    name: str
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    segments: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        missing = [q for q in self.qrels if q not in self.queries]
        if missing:
            raise InvalidParameter(
                f"gold set {self.name!r}: {len(missing)} judged queries have no text "
                f"(first: {missing[:3]}); give every judged query its text"
            )
        for qid, judged in self.qrels.items():
            for doc, grade in judged.items():
                if not isinstance(grade, int) or isinstance(grade, bool):
                    raise InvalidParameter(
                        f"gold set {self.name!r}: the grade of {doc!r} for query {qid!r} is {grade!r}; "
                        "grades are integers"
                    )
        strays = [q for q in self.segments if q not in self.qrels]
        if strays:
            raise InvalidParameter(
                f"gold set {self.name!r}: segments name {len(strays)} queries without judgments "
                f"(first: {strays[:3]})"
            )
        for qid, tags in self.segments.items():
            for dim, value in tags.items():
                if not isinstance(value, str) or not value or dim == ALL or "=" in dim:
                    raise InvalidParameter(
                        f"gold set {self.name!r}: segment {dim!r}={value!r} of query {qid!r} is not "
                        f"allowed; dimensions are names other than {ALL!r} without '=', values non-empty "
                        "strings"
                    )

    @cached_property
    def version(self) -> str:
        """The first 12 hex digits of the SHA-256 of the content (name and description excluded)."""
        return content_hash(self.queries, self.qrels, self.segments)

    @property
    def judged(self) -> list[str]:
        """The query ids that count: those with judgments, in order."""
        return list(self.qrels)

    def segment_queries(self) -> dict[str, list[str]]:
        """`{"all": [...], "dimension=value": [...], ...}`: the judged queries of each segment."""
        out: dict[str, list[str]] = {ALL: self.judged}
        for qid in self.judged:
            for dim, value in sorted(self.segments.get(qid, {}).items()):
                out.setdefault(f"{dim}={value}", []).append(qid)
        return dict(sorted(out.items(), key=lambda kv: segment_order(kv[0])))

    def dimensions(self) -> list[str]:
        return sorted({dim for tags in self.segments.values() for dim in tags})

    def with_segments(self, dimension: str, values: Mapping[str, str]) -> GoldSet:
        """A copy with `dimension` tagged from `values` (`qid -> value`; queries it lacks get none)."""
        segments = {q: dict(tags) for q, tags in self.segments.items()}
        for qid in self.qrels:
            segments.setdefault(qid, {}).pop(dimension, None)
            if qid in values:
                segments[qid][dimension] = str(values[qid])
        return GoldSet(self.name, self.queries, self.qrels, _drop_empty(segments), self.description)

    def renamed(self, name: str, description: str | None = None) -> GoldSet:
        desc = self.description if description is None else description
        return GoldSet(name, self.queries, self.qrels, self.segments, desc)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "queries": dict(self.queries),
            "qrels": {q: dict(d) for q, d in self.qrels.items()},
            "segments": {q: dict(t) for q, t in self.segments.items()},
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> GoldSet:
        return cls(
            obj["name"], obj["queries"], obj["qrels"], obj.get("segments", {}), obj.get("description", "")
        )


def segment_order(segment: str) -> tuple[bool, list[Any]]:
    """ "all" first, then by dimension and value, numbers in values compared as numbers."""
    parts = re.split(r"(\d+)", segment)
    return segment != ALL, [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def content_hash(queries: Mapping[str, str], qrels: Mapping[str, Any], segments: Mapping[str, Any]) -> str:
    body = json.dumps(
        {"queries": queries, "qrels": qrels, "segments": segments}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(body.encode()).hexdigest()[:12]


def _drop_empty(segments: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {q: dict(t) for q, t in segments.items() if t}


# ---------------------------------------------------------------- segment rules


def segments_by_prefix(qids: Iterable[str], sep: str = "-") -> dict[str, str]:
    """`qid -> the part before the first `sep``, for ids that name their source (dbpedia's
    "INEX_LD-2009022"); ids without `sep` get none."""
    return {q: q.split(sep, 1)[0] for q in qids if sep in q and q.split(sep, 1)[0]}


def segments_by_length(queries: Mapping[str, str], buckets: int = 3) -> dict[str, str]:
    """Automatic buckets of query length in words, cut at the length quantiles of these queries
    (`buckets` of them, fewer when lengths repeat), labelled like "3-5 words"."""
    if buckets < 1:
        raise InvalidParameter(f"buckets must be at least 1, got {buckets}")
    lengths = {q: len(re.findall(r"\w+", text)) for q, text in queries.items()}
    if not lengths:
        return {}
    values = np.array(list(lengths.values()))
    inner = np.quantile(values, np.linspace(0, 1, buckets + 1)[1:-1], method="higher")
    edges = sorted({int(values.min()), *(int(c) for c in inner)})  # each bucket starts at an edge
    top = int(values.max())

    def label(n: int) -> str:
        i = max(j for j, e in enumerate(edges) if n >= e)
        hi = edges[i + 1] - 1 if i + 1 < len(edges) else top
        return f"{edges[i]} words" if hi == edges[i] else f"{edges[i]}-{hi} words"

    return {q: label(n) for q, n in lengths.items()}


def segments_from_file(path: str | Path) -> dict[str, str]:
    """`qid -> value` from a JSON object or a two-column TSV (`query-id<TAB>segment`, header optional)."""
    p = Path(path)
    if not p.is_file():
        raise InvalidParameter(f"segment mapping {p} does not exist")
    if p.suffix == ".json":
        obj = json.loads(p.read_text())
        if not isinstance(obj, dict):
            raise InvalidParameter(f"{p}: a segment mapping is a JSON object of query id -> segment")
        return {str(k): str(v) for k, v in obj.items()}
    out: dict[str, str] = {}
    with open(p, newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t")):
            if not row or (n == 0 and row[0] in ("query-id", "qid", "query_id")):
                continue
            if len(row) < 2:
                raise InvalidParameter(f"{p} line {n + 1}: expected query-id<TAB>segment, got {row!r}")
            out[row[0]] = row[1]
    return out


# ---------------------------------------------------------------- importers


def from_beir(folder: str | Path, *, name: str, split: str = "test", description: str = "") -> GoldSet:
    """The judged queries of a BEIR folder's `qrels/<split>.tsv`."""
    from vectorforge.datasets.beir import load_beir_queries

    queries, qrels = load_beir_queries(folder, split)
    desc = description or f"BEIR {Path(folder).name} {split}"
    return GoldSet(name, queries, qrels, {}, desc)


def from_jsonl(
    path: str | Path, *, name: str, segment_fields: Iterable[str] = (), description: str = ""
) -> GoldSet:
    """One query a line: `{"id", "text", "qrels": {docid: grade}, ...}`; `segment_fields` names the
    other fields to tag segments with (e.g. "lang", "tenant")."""
    fields = list(segment_fields)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    segments: dict[str, dict[str, str]] = {}

    def parse(row: Any) -> None:
        qid, text, judged = str(row["id"]), str(row["text"]), row["qrels"]
        if qid in queries:
            raise ValueError(f"query id {qid!r} appears twice")
        qrels[qid] = {str(doc): _grade(g) for doc, g in judged.items()}
        queries[qid] = text
        tags = {fld: str(row[fld]) for fld in fields if row.get(fld) not in (None, "")}
        if tags:
            segments[qid] = tags

    for _ in read_records(path, parse, '{"id", "text", "qrels": {docid: grade}}'):
        pass
    return GoldSet(name, queries, qrels, segments, description)


def from_tsv(
    path: str | Path, *, name: str, segment_fields: Iterable[str] = (), description: str = ""
) -> GoldSet:
    """One judgment a row, with a header: `query-id, query, corpus-id, score` and any other columns,
    which `segment_fields` may name."""
    fields = list(segment_fields)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    segments: dict[str, dict[str, str]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        need = {"query-id", "query", "corpus-id", "score", *fields}
        lacking = need - set(reader.fieldnames or [])
        if lacking:
            raise InvalidParameter(f"{path}: the header lacks {sorted(lacking)}; it needs {sorted(need)}")
        for n, row in enumerate(reader, 2):
            qid, doc = row["query-id"], row["corpus-id"]
            if queries.setdefault(qid, row["query"]) != row["query"]:
                raise InvalidParameter(f"{path} line {n}: query {qid!r} has two different texts")
            judged = qrels.setdefault(qid, {})
            if doc in judged:
                raise InvalidParameter(f"{path} line {n}: {doc!r} is judged twice for query {qid!r}")
            try:
                judged[doc] = _grade(row["score"])
            except InvalidParameter as exc:
                raise InvalidParameter(f"{path} line {n}: {exc}") from exc
            for fld in fields:
                if row[fld]:
                    segments.setdefault(qid, {})[fld] = row[fld]
    return GoldSet(name, queries, qrels, segments, description)


def _grade(value: Any) -> int:
    try:
        grade = int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"grade {value!r} is not an integer") from None
    if isinstance(value, float) and value != grade:
        raise InvalidParameter(f"grade {value!r} is not an integer")
    return grade
