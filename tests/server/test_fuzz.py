"""Fuzz every operation of the served OpenAPI document with schemathesis against a live server.

Valid and invalid requests (schemathesis' positive and negative modes) go to each operation, with the
collection name either fixed to a collection that exists (so the point routes run for real) or
generated. Whatever is sent, the server must never answer 5xx, and every 4xx must be a JSON error body
with an error class name and a message. A fixed seed and a bounded number of examples per operation
keep each test deterministic and short.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import vectorforge as vf
from tests.server.conftest import assert_error_body, create_key
from tests.serverproc import ServerProcess, start_server
from vectorforge.server.app import ServerSettings, create_app

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = 40
SEED = 20_240_611
FIXED = "fuzz"  # the collection that exists, with points


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation, from the app's own OpenAPI document (no server needed)."""
    db = vf.connect()
    try:
        doc = create_app(ServerSettings(db, None, require_keys=False)).openapi()
    finally:
        db.close()
    return [(method.upper(), path) for path, item in doc["paths"].items() for method in sorted(item)]


OPERATIONS = _operations()


@dataclass
class Target:
    server: ServerProcess
    key: str
    schema: Any

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def _reset(db: Any) -> None:
    """Only the fixed collection, with its original points, and no aliases."""
    for alias in db.list_aliases():  # first: a collection an alias points at is not deleted
        db.delete_alias(alias)
    for name in db.list_collections():
        if name != FIXED:
            db.delete_collection(name)
    if FIXED not in db.list_collections():
        col = db.create_collection(FIXED, dim=2, metric="cosine", index="hnsw")
    else:
        col = db.get_collection(FIXED)
    ids: list[Any] = [1, 2, 3, "a", "b"]
    vectors = np.array([[1, 0], [0, 1], [1, 1], [0.5, 0.2], [-1, 0.3]], dtype=np.float32)
    payloads = [{"n": i, "tag": "x" if i % 2 else "y"} for i in range(len(ids))]
    col.upsert(ids, vectors, payloads)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    key = create_key(data, "admin")[1]
    server = start_server(data, "--max-body-mb", "4")
    try:
        with vf.connect(server.url, api_key=key) as db:
            _reset(db)
        schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
        yield Target(server, key, schema)
    finally:
        server.stop()


@schemathesis.serializer("application/msgpack")
def _msgpack(ctx: Any, value: Any) -> bytes:
    """The msgpack routes' bodies: generated from their schema (the JSON routes'), sent as msgpack
    (an integer msgpack cannot hold goes as its text: the server must refuse it by name)."""
    packed: bytes = msgpack.packb(_packable(value), use_bin_type=True)
    return packed


def _packable(value: Any) -> Any:
    if isinstance(value, dict):
        return {_packable(k): _packable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_packable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    return value


def _nudge(case: Any, index: str) -> Any:
    """Make the parts of a generated body that are easy to get wrong valid (vector length, k, dim,
    metric, index), so that the rest of it (filters, params, payloads, index_params, flags ...) reaches
    the engine instead of stopping at the first check."""
    body = case.body
    if isinstance(body, dict):
        if "vector" in body:
            body["vector"] = [0.5, -0.25]
        if isinstance(body.get("ids"), list) and "vectors" in body:
            body["vectors"] = [[0.1 * i, 1.0] for i in range(len(body["ids"]))]
        elif "vectors" in body:
            body["vectors"] = [[1.0, 0.0], [0.0, 1.0]]
        if "k" in body:
            body["k"] = 3
        if "offset" in body:
            body["offset"] = 1
        if "dim" in body:  # create_collection
            body.update(dim=2, metric="l2", index=index)
    return case


def _strategy(method: str, operation: Any, path: str) -> Any:
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    if "{name}" in path:  # also aim at the collection that exists, so the engine itself gets the input
        creates = (method, path) == ("PUT", "/collections/{name}")
        fixed = {"name": "fresh" if creates else FIXED}
        strategies += [operation.as_strategy(mode, path_parameters=fixed) for mode in modes]
        nudged = st.tuples(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
            st.sampled_from(["flat", "hnsw", "ivfpq"]),
        )
        strategies.append(nudged.map(lambda pair: _nudge(*pair)))
    return st.one_of(strategies)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_fuzz_operation(target: Target, method: str, path: str) -> None:
    with vf.connect(target.server.url, api_key=target.key) as db:
        _reset(db)
    operation = target.schema[path][method]
    seen: dict[int, int] = {}
    session = requests.Session()

    @seed(SEED)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(method, operation, path))
    def check(case: Any) -> None:
        response = case.call(base_url=target.server.url, session=session, headers=target.headers, timeout=30)
        status = response.status_code
        seen[status] = seen.get(status, 0) + 1
        sent = f"{case.method} {case.formatted_path} body={str(case.body)[:300]!r}"
        assert status < 500, f"{sent} -> {status}: {response.content[:500]!r}"
        if 400 <= status < 500:
            assert response.headers.get("content-type", [""])[0].startswith("application/json"), sent
            try:
                assert_error_body(response.content)
            except (AssertionError, json.JSONDecodeError) as exc:
                raise AssertionError(
                    f"{sent} -> {status} with a bad error body {response.content!r}"
                ) from exc

    try:
        check()
    finally:
        session.close()
    assert seen, "no request was sent"
    assert target.server.proc.poll() is None, target.server.output()[-3000:]
