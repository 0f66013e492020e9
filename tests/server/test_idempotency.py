"""Retries over HTTP apply once: a lost answer, a repeated key, another client's write in between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import vectorforge as vf
from tests.serverproc import ServerProcess, start_server
from vectorforge.remote import RemoteDatabase

DIM = 4


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("idem") / "data")
    yield proc
    proc.stop()


class LosingTransport(httpx.HTTPTransport):
    """Real HTTP to the real server, but the answer to the first write is lost on the way back (the
    server has applied it), as a network that drops the connection at the worst moment."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "PUT" and not self.lost:
            self.lost += 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset by peer (the answer was lost)", request=request)
        return response


def test_a_retry_after_a_lost_answer_is_applied_once(server: ServerProcess) -> None:
    with vf.connect(server.url) as db:
        db.create_collection("lost", dim=DIM, metric="l2", index="flat")
    losing = LosingTransport()
    with RemoteDatabase(server.url, retries=3, transport=losing) as db:
        col = db.get_collection("lost")
        seq = col.upsert([1], np.ones((1, DIM)), [{"v": 1}]).operation_id  # applied, answer lost, retried
        assert losing.lost == 1
        assert col.info()["last_seq"] == seq == 1  # the retry was not applied a second time


def test_a_repeated_key_returns_the_first_result_and_overwrites_nothing(server: ServerProcess) -> None:
    with vf.connect(server.url) as db:
        db.create_collection("rep", dim=DIM, metric="l2", index="flat")
    body = {"ids": [1], "vectors": [[1.0, 1.0, 1.0, 1.0]], "payloads": [{"v": "first"}]}
    headers = {"Idempotency-Key": "client-a-call-1"}
    url = f"{server.url}/collections/rep/points"
    first = httpx.put(url, json=body, headers=headers).json()
    newer = {"ids": [1], "vectors": [[2.0, 2.0, 2.0, 2.0]], "payloads": [{"v": "newer"}]}
    httpx.put(url, json=newer, headers={"Idempotency-Key": "client-b-call-1"}).raise_for_status()
    again = httpx.put(url, json=body, headers=headers).json()  # client A's retry
    assert again == first
    with vf.connect(server.url) as db:
        assert db.get_collection("rep").get([1])[0].payload == {"v": "newer"}
    deleted = httpx.post(f"{url}/delete", json={"ids": [1]}, headers={"Idempotency-Key": "d1"}).json()
    httpx.put(url, json=newer, headers={"Idempotency-Key": "client-b-call-2"}).raise_for_status()
    repeat = httpx.post(f"{url}/delete", json={"ids": [1]}, headers={"Idempotency-Key": "d1"}).json()
    assert repeat["count"] == deleted["count"] == 1
    with vf.connect(server.url) as db:
        assert db.get_collection("rep").count() == 1  # the retried delete did not delete the new point


def test_the_client_sends_a_fresh_key_per_call(server: ServerProcess, tmp_path: Path) -> None:
    with vf.connect(server.url) as db:
        col = db.create_collection("fresh", dim=DIM, metric="l2", index="flat")
        a = col.upsert([1], np.ones((1, DIM))).operation_id
        b = col.upsert([1], np.ones((1, DIM))).operation_id  # the same content, a new call: applied again
        assert b == a + 1
