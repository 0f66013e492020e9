"""Clicked but unjudged: the (query, result) pairs users clicked that a gold set has no judgment
for, queued for a person to judge, and the judged pairs added to the gold set as a new version.

A logged query is known by its hash (its text only if the collection keeps text): a gold set
query with the same hash is that query; a query the gold set lacks can be added only with its
text (kept by the log, or given by the judge)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.goldsets import GoldSet
from vectorforge.evaluation.online.events import EventStore, hash_query

__all__ = ["Judgment", "judging_queue", "with_judgments"]

ONLINE = "online"  # the `source` segment of queries that came from live traffic


class Judgment(BaseModel):
    """A person's grade of one clicked result: for the gold set query `qid`, or for a query by
    its text (a new query of the gold set when it has none with that text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    qid: Annotated[StrictStr, Field(min_length=1, max_length=256)] | None = None
    query: Annotated[StrictStr, Field(min_length=1, max_length=10_000)] | None = None
    id: Annotated[StrictStr, Field(min_length=1, max_length=256)] | StrictInt
    grade: Annotated[StrictInt, Field(ge=0, le=10)]


def judging_queue(
    events: EventStore, gold: GoldSet, *, collection: str | None = None, limit: int = 100, min_clicks: int = 1
) -> list[dict[str, Any]]:
    """Clicked results that `gold` has no judgment for, most clicked first: the pair's query hash,
    its text (from the log, or from the gold set), the gold set's query id when it has the query,
    the result's id, clicks, mean rank and longest dwell."""
    if limit < 1 or min_clicks < 1:
        raise InvalidParameter(f"limit and min_clicks must be at least 1, not {limit} and {min_clicks}")
    by_hash = {hash_query(text): qid for qid, text in gold.queries.items()}
    out = []
    for pair in events.clicked_pairs(collection):
        if pair["clicks"] < min_clicks:
            break  # most clicked first
        qid = by_hash.get(pair["query_hash"])
        if qid is not None and pair["id"] in gold.qrels.get(qid, {}):
            continue
        if qid is None and pair["query"] is None:
            continue  # neither the log nor the gold set has its text: nothing a person could judge
        out.append({**pair, "qid": qid, "query": pair["query"] if qid is None else gold.queries[qid]})
        if len(out) == limit:
            break
    return out


def with_judgments(gold: GoldSet, judgments: Iterable[Judgment], description: str = "") -> GoldSet:
    """`gold` with these judgments added (a grade given again replaces the old one); a query the
    gold set lacks joins it as `online-<hash>`, tagged `source=online`."""
    queries = dict(gold.queries)
    qrels = {q: dict(d) for q, d in gold.qrels.items()}
    segments = {q: dict(t) for q, t in gold.segments.items()}
    by_hash = {hash_query(text): qid for qid, text in queries.items()}
    for j in judgments:
        if (j.qid is None) == (j.query is None):
            raise InvalidParameter("a judgment names its query by qid or by text (query), one of the two")
        if j.qid is not None:
            if j.qid not in queries:
                raise InvalidParameter(f"gold set {gold.name!r} has no query {j.qid!r}")
            qid = j.qid
        else:
            assert j.query is not None
            digest = hash_query(j.query)
            qid = by_hash.get(digest) or f"{ONLINE}-{digest[:12]}"
            if qid not in queries:
                queries[qid] = j.query
                by_hash[digest] = qid
                segments[qid] = {"source": ONLINE}
        qrels.setdefault(qid, {})[str(j.id)] = j.grade
    return GoldSet(gold.name, queries, qrels, segments, description or gold.description)
