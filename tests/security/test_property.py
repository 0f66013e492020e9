"""Hypothesis-made bodies against every points route of a real server (beside the schemathesis run,
which follows the schema; these do not): no 5xx, no server path in any answer, and a request that is
refused (4xx) changes nothing."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.security.conftest import DIM, Hostile

ROUTES = [
    ("PUT", "/points"),
    ("POST", "/points/get"),
    ("POST", "/points/delete"),
    ("POST", "/points/count"),
    ("POST", "/points/scroll"),
    ("POST", "/points/search"),
    ("POST", "/points/search/batch"),
]
FIELDS = [
    "ids",
    "vectors",
    "vector",
    "payloads",
    "filter",
    "k",
    "offset",
    "limit",
    "cursor",
    "params",
    "with_payload",
    "with_vectors",
    "consistency",
    "session_ts",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "must", "key", "match", "range", "gt", "has_id", "../x", "strong"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    "must",
                    "should",
                    "must_not",
                    "key",
                    "match",
                    "range",
                    "gt",
                    "lt",
                    "has_id",
                    "t",
                    "n",
                    "b64",
                    "shape",
                ]
            ),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=5)


@pytest.fixture(scope="module")
def target(hostile: Hostile) -> Hostile:
    for name, options in (("prop", {}), ("propk", {"shards": 2, "sharding": "key", "shard_key": "t"})):
        hostile.call("DELETE", f"/collections/{name}")
        hostile.call("PUT", f"/collections/{name}", json={"dim": DIM, "index": "flat", **options})
        points = {"ids": [1, 2], "vectors": [[1.0] * DIM, [0.5] * DIM], "payloads": [{"t": "a"}, {"t": "b"}]}
        assert hostile.call("PUT", f"/collections/{name}/points", json=points).status_code == 200
    return hostile


def _state(hostile: Hostile, name: str) -> Any:
    body = {"limit": 100, "with_vectors": True}
    return hostile.call("POST", f"/collections/{name}/points/scroll", json=body).json()


@settings(
    max_examples=int(os.environ.get("VF_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(route=st.sampled_from(ROUTES), body=bodies, keyed=st.booleans())
def test_no_body_makes_a_5xx_or_leaks_a_path_or_half_applies(
    target: Hostile, route: tuple[str, str], body: dict[str, Any], keyed: bool
) -> None:
    name = "propk" if keyed else "prop"
    method, path = route
    before = _state(target, name)
    raw = json.dumps(body).encode("utf-8", "surrogatepass")
    headers = {**target.headers(), "Content-Type": "application/json"}
    response = httpx.request(method, f"{target.url}/collections/{name}{path}", content=raw, headers=headers)
    assert response.status_code < 500, response.text
    assert str(target.root) not in response.text and "/tmp/" not in response.text
    if response.status_code >= 400:
        assert _state(target, name) == before, f"a refused {method} {path} changed the collection"
