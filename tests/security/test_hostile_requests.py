"""Requests that used to poison reads or answer 500, against a real server, on a plain, a sharded and
a key-sharded collection: each is a 422 naming the problem, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import DIM, Hostile

KINDS = {
    "plain": {},
    "sharded": {"shards": 2, "replicas": 2},
    "keyed": {"shards": 2, "sharding": "key", "shard_key": "t"},
}


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest, hostile: Hostile) -> Iterator[str]:
    name = f"k-{request.param}"
    hostile.call("DELETE", f"/collections/{name}")
    body = {"dim": DIM, "metric": "l2", "index": "flat", **KINDS[request.param]}
    assert hostile.call("PUT", f"/collections/{name}", json=body).status_code == 200
    points = {
        "ids": [1, 2, 3],
        "vectors": [[1.0] * DIM, [2.0] * DIM, [3.0] * DIM],
        "payloads": [{"t": "a", "n": i} for i in range(3)],
    }
    assert hostile.call("PUT", f"/collections/{name}/points", json=points).status_code == 200
    yield name


def _state(hostile: Hostile, name: str) -> object:
    scroll = hostile.call(
        "POST", f"/collections/{name}/points/scroll", json={"limit": 100, "with_vectors": True}
    )
    return scroll.json()


def _raw(hostile: Hostile, method: str, path: str, text: str) -> httpx.Response:
    """A body sent as written (json.dumps would escape what we want to send raw)."""
    headers = {**hostile.headers(), "Content-Type": "application/json"}
    return httpx.request(
        method, hostile.url + path, content=text.encode("utf-8", "surrogatepass"), headers=headers
    )


def _upsert(payload: object = None, pid: object = 9, vector: object = None) -> str:
    return json.dumps({"ids": [pid], "vectors": [vector or [1.0] * DIM], "payloads": [payload or {"t": "a"}]})


DEEP = {"t": "a"}
for _ in range(251):
    DEEP = {"t": "a", "x": DEEP}

BAD_WRITES = {
    "payload 251 deep": (_upsert(DEEP), "nested deeper than 32"),
    "lone surrogate in a payload": (_upsert({"t": "a", "s": "\ud800"}), "not valid Unicode"),
    "lone surrogate in a shard key": (_upsert({"t": "\ud800"}), "not valid Unicode"),
    "lone surrogate in an id": (_upsert(pid="\ud800"), "not valid Unicode"),
    "an integer of 10**30": (_upsert({"t": "a", "n": 10**30}), "beyond 64"),
    'a vector component "1"': (_upsert(vector=["1"] * DIM), "vectors"),
    "a vector component true": (_upsert(vector=[True] * DIM), "vectors"),
}


@pytest.mark.parametrize("case", list(BAD_WRITES))
def test_a_poisonous_write_is_refused_and_reads_stay_healthy(hostile: Hostile, kind: str, case: str) -> None:
    """Before: a 251-deep payload was accepted and every read returning it answered 500; the others
    were 500s (UnicodeEncodeError, OverflowError) or accepted ("1", true)."""
    body, message = BAD_WRITES[case]
    before = _state(hostile, kind)
    response = _raw(hostile, "PUT", f"/collections/{kind}/points", body.replace("\\ud800", "\ud800"))
    assert response.status_code == 422, response.text
    assert message in response.json()["message"], response.json()["message"]
    assert _state(hostile, kind) == before
    search = hostile.call("POST", f"/collections/{kind}/points/search", json={"vector": [1.0] * DIM, "k": 10})
    assert search.status_code == 200


DEEP_FILTER: dict[str, object] = {"key": "n", "match": 1}
for _ in range(350):
    DEEP_FILTER = {"must": [DEEP_FILTER]}

BAD_FILTERS = {
    "must is a number": ({"must": 5}, "must be a list"),
    "nested 350 deep": (DEEP_FILTER, "nest at most 32"),
    "a range bound of 400 digits": ({"must": [{"key": "n", "range": {"gt": 10**400}}]}, "beyond any payload"),
}


@pytest.mark.parametrize("case", list(BAD_FILTERS))
@pytest.mark.parametrize("route", ["search", "count", "scroll", "delete"])
def test_a_bad_filter_is_a_422_on_every_route_and_deletes_nothing(
    hostile: Hostile, kind: str, case: str, route: str
) -> None:
    """Before: {"must": 5} on a key-sharded search was a TypeError (500), 350 levels a RecursionError,
    a 400-digit bound an OverflowError; a sharded delete with ids and a bad filter deleted the ids."""
    flt, message = BAD_FILTERS[case]
    body: dict[str, object] = {"filter": flt}
    if route == "search":
        body.update(vector=[1.0] * DIM, k=3)
    if route == "delete":
        body["ids"] = [1, 2]
    before = _state(hostile, kind)
    path = f"/collections/{kind}/points/{route}"
    response = _raw(hostile, "POST", path, json.dumps(body))
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]
    assert _state(hostile, kind) == before


def test_search_batch_is_capped(hostile: Hostile, kind: str) -> None:
    """Before: 50,000 queries in one request built a 45 MB answer."""
    queries = [[1.0] * DIM] * 1025
    response = hostile.call(
        "POST", f"/collections/{kind}/points/search/batch", json={"vectors": queries, "k": 1}
    )
    assert response.status_code == 422 and "at most 1,024 queries" in response.json()["message"]
    response = hostile.call(
        "POST", f"/collections/{kind}/points/search/batch", json={"vectors": queries[:20], "k": 9000}
    )
    assert response.status_code == 422 and "the limit is 100,000" in response.json()["message"]


def test_an_ivfpq_collection_with_a_large_nlist_takes_every_write(hostile: Hostile) -> None:
    """Before: nlist above a segment's rows answered 500 to every write while applying it."""
    hostile.call("DELETE", "/collections/ivf")
    body = {"dim": DIM, "index": "ivfpq", "index_params": {"nlist": 4096, "m": 2}, "max_segment_points": 2000}
    assert hostile.call("PUT", "/collections/ivf", json=body).status_code == 200
    for start in range(0, 2400, 400):
        points = {
            "ids": list(range(start, start + 400)),
            "vectors": [[float(i % 7), 1.0, 2.0, float(i)] for i in range(start, start + 400)],
        }
        assert hostile.call("PUT", "/collections/ivf/points", json=points).status_code == 200
    assert hostile.call("POST", "/collections/ivf/points/count", json={}).json()["count"] == 2400
