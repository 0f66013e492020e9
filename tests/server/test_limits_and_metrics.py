"""Request limits (body size, k, batch sizes) and the operational endpoints: metrics, probes, OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import vectorforge as vf
from tests.server.conftest import assert_error_body, create_key
from tests.serverproc import ServerProcess, start_server

DIM = 8
MIB = 1024 * 1024


@dataclass
class Limited:
    server: ServerProcess
    admin: str
    reader: str

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin}"}

    def db(self) -> Any:
        return vf.connect(self.url, api_key=self.admin, retries=0)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Limited]:
    data = tmp_path_factory.mktemp("limits") / "data"
    admin = create_key(data, "admin")[1]
    reader = create_key(data, "read-only")[1]
    server = start_server(data, "--max-body-mb", "1")
    try:
        with vf.connect(server.url, api_key=admin) as db:
            col = db.create_collection("m", dim=DIM, metric="l2", index="flat")
            col.upsert(list(range(10)), np.arange(10 * DIM, dtype=np.float32).reshape(10, DIM))
        yield Limited(server, admin, reader)
    finally:
        server.stop()


def _count(limited: Limited, name: str = "m") -> int:
    with limited.db() as db:
        return int(db.get_collection(name).count())


def _big_upsert_body(n: int) -> bytes:
    ids = list(range(1000, 1000 + n))
    return json.dumps({"ids": ids, "vectors": [[0.123456789] * DIM for _ in ids]}).encode()


# -- body size ----------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_and_writes_nothing(limited: Limited) -> None:
    body = _big_upsert_body(20_000)
    assert len(body) > 2 * MIB
    response = httpx.put(
        limited.url + "/collections/m/points",
        content=body,
        headers={**limited.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    error = assert_error_body(response.content, "RequestTooLarge")
    assert "1 MiB" in error["message"]
    assert _count(limited) == 10
    with limited.db() as db:
        assert db.get_collection("m").get([1000, 20_999]) == []


def test_a_chunked_body_over_the_limit_is_413_and_writes_nothing(limited: Limited) -> None:
    """No Content-Length: the limit must hold while the body streams in."""
    body = _big_upsert_body(20_000)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = httpx.put(
        limited.url + "/collections/m/points",
        content=chunks(),
        headers={**limited.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert_error_body(response.content, "RequestTooLarge")
    assert _count(limited) == 10


def test_the_client_raises_request_too_large(limited: Limited) -> None:
    with limited.db() as db:
        col = db.get_collection("m")
        n = 60_000  # 60k x 8 float32 = 1.9 MB raw, more as base64
        with pytest.raises(vf.RequestTooLarge, match="MiB"):
            col.upsert(list(range(1000, 1000 + n)), np.ones((n, DIM), dtype=np.float32))
        assert col.count() == 10
        # Just under the limit is fine.
        col.upsert(list(range(1000, 11_000)), np.ones((10_000, DIM), dtype=np.float32))
        assert col.count() == 10_010
        col.delete(ids=list(range(1000, 11_000)))
        assert col.count() == 10


@pytest.mark.parametrize("chunked", [False, True])
def test_a_snapshot_upload_over_the_limit_is_413(limited: Limited, chunked: bool) -> None:
    payload = b"\0" * (2 * MIB)
    content: Any = (
        iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)]) if chunked else payload
    )
    response = httpx.post(
        limited.url + "/collections/uploaded/restore",
        content=content,
        headers={**limited.headers(), "Content-Type": "application/x-tar"},
    )
    assert response.status_code == 413, response.text
    assert_error_body(response.content, "RequestTooLarge")
    with limited.db() as db:
        assert "uploaded" not in db.list_collections()
    snapshots = limited.server.data / "snapshots"
    assert not snapshots.exists() or not any(snapshots.iterdir())


# -- k and batch caps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/points/search", {"vector": [0.0] * DIM, "k": 10_001}),
        ("/points/search", {"vector": [0.0] * DIM, "k": 1_000_000_000}),
        ("/points/search", {"vector": [0.0] * DIM, "k": 9_000, "offset": 1_001}),
        ("/points/search", {"vector": [0.0] * DIM, "k": 0}),
        ("/points/search", {"vector": [0.0] * DIM, "k": 10, "offset": -1}),
        ("/points/search/batch", {"vectors": [[0.0] * DIM], "k": 10_001}),
        ("/points/scroll", {"limit": 10_001}),
    ],
    ids=["k", "k-huge", "k+offset", "k-zero", "offset-negative", "batch-k", "scroll-limit"],
)
def test_k_and_limits_out_of_range_are_422(limited: Limited, path: str, body: dict[str, Any]) -> None:
    response = httpx.post(limited.url + "/collections/m" + path, json=body, headers=limited.headers())
    assert response.status_code == 422, response.text
    error = assert_error_body(response.content, "InvalidParameter")
    assert "10000" in error["message"] or "10_000" in error["message"] or "range" in error["message"]


def test_k_at_the_cap_is_accepted(limited: Limited) -> None:
    with limited.db() as db:
        col = db.get_collection("m")
        assert len(col.search([0.0] * DIM, k=10_000)) == 10
        with pytest.raises(vf.InvalidParameter, match="10000"):
            col.search([0.0] * DIM, k=10_001)


@pytest.mark.parametrize("route", ["/points/get", "/points/delete"])
def test_a_batch_of_ids_over_the_cap_is_422(limited: Limited, route: str) -> None:
    body = json.dumps({"ids": list(range(100_001))}).encode()
    assert len(body) < MIB  # the id cap, not the body limit, refuses it
    response = httpx.post(
        limited.url + "/collections/m" + route,
        content=body,
        headers={**limited.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = assert_error_body(response.content, "InvalidParameter")
    assert "100000" in error["message"]
    assert _count(limited) == 10


# -- metrics ------------------------------------------------------------------------------------------


def _scrape(limited: Limited) -> dict[str, list[Any]]:
    response = httpx.get(limited.url + "/metrics", headers=limited.headers())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        families.setdefault(family.name, []).extend(family.samples)
    return families


def _value(samples: list[Any], name: str, **labels: str) -> float | None:
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    return None


def test_metrics_count_requests_by_route_and_status(limited: Limited) -> None:
    with limited.db() as db:
        col = db.create_collection("metered", dim=DIM, metric="l2", index="flat")
        col.upsert([1, 2, 3], np.ones((3, DIM), dtype=np.float32))
        for _ in range(5):
            col.search([1.0] * DIM, k=2)
        with pytest.raises(vf.CollectionNotFound):
            db.get_collection("missing")
        with pytest.raises(vf.DimensionMismatch):
            col.search([1.0] * (DIM + 1))
        expected_points = col.count()
        wal_bytes = col.info()["wal_bytes"]
    families = _scrape(limited)

    requests = families["vectorforge_requests"]
    total = "vectorforge_requests_total"
    search = "/msgpack/collections/{name}/points/search"  # the client sends the hot calls in msgpack
    assert (_value(requests, total, method="POST", route=search, status="200") or 0) >= 5
    assert (_value(requests, total, method="POST", route=search, status="422") or 0) >= 1
    upsert = "/msgpack/collections/{name}/points"
    assert (_value(requests, total, method="PUT", route=upsert, status="200") or 0) >= 1
    assert (_value(requests, total, method="PUT", route="/collections/{name}", status="200") or 0) >= 1
    assert (_value(requests, total, method="GET", route="/collections/{name}", status="404") or 0) >= 1
    # One series per route template, never per collection name.
    assert not [s for s in requests if "metered" in s.labels.get("route", "")]

    latency = families["vectorforge_request_seconds"]
    count = _value(latency, "vectorforge_request_seconds_count", method="POST", route=search)
    assert count is not None and count >= 6
    inf_bucket = _value(latency, "vectorforge_request_seconds_bucket", method="POST", route=search, le="+Inf")
    assert inf_bucket == count
    seconds = _value(latency, "vectorforge_request_seconds_sum", method="POST", route=search)
    assert seconds is not None and seconds > 0

    points = families["vectorforge_collection_points"]
    assert _value(points, "vectorforge_collection_points", collection="metered") == expected_points == 3
    assert _value(points, "vectorforge_collection_points", collection="m") == _count(limited)
    wal = families["vectorforge_wal_bytes"]
    assert _value(wal, "vectorforge_wal_bytes", collection="metered") == wal_bytes
    assert wal_bytes > 0
    with limited.db() as db:
        db.delete_collection("metered")
    assert (
        _value(
            _scrape(limited)["vectorforge_collection_points"],
            "vectorforge_collection_points",
            collection="metered",
        )
        is None
    )


def test_metrics_are_for_admins(limited: Limited) -> None:
    assert httpx.get(limited.url + "/metrics").status_code == 401
    response = httpx.get(limited.url + "/metrics", headers=limited.headers(limited.reader))
    assert response.status_code == 403
    assert_error_body(response.content, "PermissionDenied")


# -- probes and the API description -------------------------------------------------------------------


def test_health_and_readiness(limited: Limited) -> None:
    health = httpx.get(limited.url + "/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = httpx.get(limited.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}  # no key needed, so no counts (issue 9)


def test_openapi_and_docs_are_served(limited: Limited) -> None:
    spec = httpx.get(limited.url + "/openapi.json")
    assert spec.status_code == 200
    doc = spec.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] == "vectorforge"
    for path in (
        "/collections",
        "/collections/{name}",
        "/collections/{name}/points",
        "/collections/{name}/points/search",
        "/collections/{name}/points/search/batch",
    ):
        assert path in doc["paths"], path
    docs = httpx.get(limited.url + "/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "openapi.json" in docs.text and "swagger" in docs.text.lower()


def test_a_bad_snapshot_upload_does_not_reveal_server_paths(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        response = httpx.post(f"{server.url}/collections/x/restore", content=b"not a tar file", timeout=30)
        assert response.status_code == 422
        body = response.json()
        assert "not a vectorforge snapshot" in body["message"] and str(tmp_path) not in body["message"]
        assert not list((tmp_path / "data" / "snapshots").glob("*"))  # the upload is gone
    finally:
        server.stop()
