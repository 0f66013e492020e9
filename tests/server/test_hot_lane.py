"""The hot calls' lane (`routes_msgpack.HotLane`): the msgpack routes answered before FastAPI's router
must behave exactly as the routes FastAPI declares: same answers as the JSON routes, the same header
limits, errors and idempotency, and FastAPI's own answers for what the lane does not serve."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import numpy as np
import pytest

import vectorforge as vf
from tests.server.conftest import assert_error_body
from tests.serverproc import ServerProcess, start_server

DIM = 4
PACKED = {"Content-Type": "application/msgpack", "Accept": "application/msgpack"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("lane") / "data")
    with vf.connect(proc.url) as db:
        col = db.create_collection("c", dim=DIM, metric="l2", index="flat")
        rng = np.random.default_rng(0)
        col.upsert(
            list(range(20)), rng.standard_normal((20, DIM)).astype(np.float32), [{"i": i} for i in range(20)]
        )
    yield proc
    proc.stop()


def _packed(url: str, method: str, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.request(method, url + path, content=msgpack.packb(body), headers={**PACKED, **headers})


def test_search_and_batch_answer_as_the_json_routes(server: ServerProcess) -> None:
    body = {"vector": [0.1, 0.2, 0.3, 0.4], "k": 5, "with_payload": True}
    fast = _packed(server.url, "POST", "/msgpack/collections/c/points/search", body)
    slow = httpx.post(server.url + "/collections/c/points/search", json=body)
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(fast.content) == slow.json()
    batch = {"vectors": [[0.1, 0.2, 0.3, 0.4], [1, 1, 1, 1]], "k": 3}
    fast = _packed(server.url, "POST", "/msgpack/collections/c/points/search/batch", batch)
    slow = httpx.post(server.url + "/collections/c/points/search/batch", json=batch)
    assert msgpack.unpackb(fast.content) == slow.json()
    assert [len(hits) for hits in slow.json()["results"]] == [3, 3]


def test_an_upsert_with_a_repeated_key_applies_once(server: ServerProcess) -> None:
    body = {"ids": [100], "vectors": [[9.0, 9.0, 9.0, 9.0]], "payloads": [{"new": True}]}
    first = _packed(server.url, "PUT", "/msgpack/collections/c/points", body, **{"Idempotency-Key": "k-1"})
    again = {**body, "payloads": [{"new": False}]}
    second = _packed(server.url, "PUT", "/msgpack/collections/c/points", again, **{"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 200
    assert msgpack.unpackb(second.content) == msgpack.unpackb(first.content)
    with vf.connect(server.url) as db:
        assert db.get_collection("c").get([100])[0].payload == {"new": True}


@pytest.mark.parametrize(
    ("method", "path", "header", "limit"),
    [
        ("POST", "/collections/c/points/search", "X-User-Id", 256),
        ("POST", "/msgpack/collections/c/points/search", "X-User-Id", 256),
        ("POST", "/msgpack/collections/c/points/search", "X-Segment", 256),
        ("PUT", "/msgpack/collections/c/points", "Idempotency-Key", 200),
    ],
)
def test_a_header_over_its_limit_is_refused_by_name(
    server: ServerProcess, method: str, path: str, header: str, limit: int
) -> None:
    body = {"vector": [0, 0, 0, 0]} if "search" in path else {"ids": [555], "vectors": [[1, 1, 1, 1]]}
    send = _packed if path.startswith("/msgpack/") else None
    headers = {header: "x" * (limit + 1)}
    if send is None:
        response = httpx.request(method, server.url + path, json=body, headers=headers)
    else:
        response = send(server.url, method, path, body, **headers)
    assert response.status_code == 422
    error = assert_error_body(response.content, "InvalidParameter")
    assert header.lower() in error["message"].lower()
    with vf.connect(server.url) as db:
        assert db.get_collection("c").get([555]) == []  # changes nothing


def test_what_the_lane_does_not_serve_gets_fastapis_answers(server: ServerProcess) -> None:
    wrong_method = httpx.get(server.url + "/msgpack/collections/c/points/search")
    assert wrong_method.status_code == 405
    assert_error_body(wrong_method.content)
    unknown = httpx.post(server.url + "/msgpack/collections/c/points/nowhere", content=b"")
    assert unknown.status_code == 404
    assert_error_body(unknown.content, "NotFoundError")


def test_errors_are_the_json_bodies_of_every_route(server: ServerProcess) -> None:
    missing = _packed(server.url, "POST", "/msgpack/collections/none/points/search", {"vector": [0, 0, 0, 0]})
    assert missing.status_code == 404
    assert_error_body(missing.content, "CollectionNotFound")
    wrong_dim = _packed(server.url, "POST", "/msgpack/collections/c/points/search", {"vector": [0, 0]})
    assert wrong_dim.status_code == 422
    assert_error_body(wrong_dim.content, "DimensionMismatch")
    bad_field = _packed(
        server.url, "POST", "/msgpack/collections/c/points/search", {"vector": [0] * 4, "k": "x"}
    )
    assert bad_field.status_code == 422
    assert "request field k" in assert_error_body(bad_field.content, "InvalidParameter")["message"]
    not_packed = httpx.post(
        server.url + "/msgpack/collections/c/points/search", content=b"\xc1", headers=PACKED
    )
    assert not_packed.status_code == 422
    assert "not msgpack" in assert_error_body(not_packed.content, "InvalidParameter")["message"]
