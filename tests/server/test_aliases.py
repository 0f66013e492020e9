"""Aliases over HTTP, against a real server process: every `/collections/{name}/...` route resolves
an alias, the alias routes and their errors, admin-only changes and the scope rule for keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

import vectorforge as vf
from tests.server.conftest import assert_error_body, create_key
from tests.serverproc import ServerProcess, start_server
from vectorforge.server.app import ServerSettings, create_app

DIM = 4
V = [1.0, 0.5, 0.25, 0.0]


@dataclass
class Served:
    server: ServerProcess
    keys: dict[str, str]

    def call(self, who: str, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.request(method, self.server.url + path, json=body, headers=headers, timeout=60)

    def db(self, who: str = "admin") -> Any:
        return vf.connect(self.server.url, api_key=self.keys[who], retries=0)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("aliases") / "data"
    keys = {"admin": create_key(data, "admin")[1]}
    keys["read-write"] = create_key(data, "read-write")[1]
    keys["read-only"] = create_key(data, "read-only")[1]
    keys["via-alias"] = create_key(data, "read-write", "prod")[1]  # follows the alias
    keys["via-blue"] = create_key(data, "read-write", "blue")[1]  # reaches blue by any name
    keys["admin-prod-blue"] = create_key(data, "admin", "prod", "blue")[1]
    server = start_server(data)
    try:
        with vf.connect(server.url, api_key=keys["admin"]) as db:
            for name, first in (("blue", 1), ("green", 11)):
                col = db.create_collection(name, dim=DIM, metric="l2", index="flat", shards=2)
                col.upsert([first, first + 1], [V, V], [{"c": name}, {"c": name}])
            db.create_collection("words", vectors={"bm25": vf.Sparse()})
            db.create_alias("prod", "blue")
            db.create_alias("texts", "words")
        yield Served(server, keys)
    finally:
        server.stop()


@pytest.fixture
def prod_blue(served: Served) -> Iterator[Served]:
    """prod -> blue at the start and the end of each test."""
    with served.db() as db:
        db.switch_alias("prod", "blue")
    yield served
    with served.db() as db:
        for alias in set(db.list_aliases()) - {"prod", "texts"}:
            db.delete_alias(alias)
        db.switch_alias("prod", "blue")


def _points(r: httpx.Response) -> Any:
    return r.json()


# Every route under /collections/{name}: a valid request through the alias "prod" (-> blue, sharded)
# or "texts" (-> words, BM25 only), and what the answer must show: that blue (or words) served it.
Check = Callable[[dict[str, Any]], bool]
THROUGH: list[tuple[str, str, str, Any, Check]] = [
    ("GET", "/collections/{name}", "prod", None, lambda a: a["name"] == "blue"),
    ("PUT", "/collections/{name}/points", "prod", {"ids": [5], "vectors": [V]}, lambda a: a["count"] == 1),
    ("POST", "/collections/{name}/points/get", "prod", {"ids": [1]}, lambda a: len(a["records"]) == 1),
    (
        "POST",
        "/collections/{name}/points/payload",
        "prod",
        {"payload": {"x": 1}, "ids": [1]},
        lambda a: a["count"] == 1,
    ),
    (
        "PUT",
        "/collections/{name}/points/payload",
        "prod",
        {"payload": {"c": "blue"}, "ids": [1]},
        lambda a: a["count"] == 1,
    ),
    (
        "POST",
        "/collections/{name}/points/payload/delete",
        "prod",
        {"keys": ["x"], "ids": [1]},
        lambda a: a["count"] == 1,
    ),
    ("POST", "/collections/{name}/points/count", "prod", {}, lambda a: a["count"] == 3),
    ("POST", "/collections/{name}/points/scroll", "prod", {}, lambda a: len(a["records"]) == 3),
    (
        "POST",
        "/collections/{name}/points/search",
        "prod",
        {"vector": V, "k": 10, "filter": {"must": [{"key": "c", "match": "blue"}]}},
        lambda a: {h["id"] for h in a["hits"]} == {1, 2},
    ),
    (
        "POST",
        "/collections/{name}/points/search/batch",
        "prod",
        {"vectors": [V], "k": 10},
        lambda a: {h["id"] for h in a["results"][0]} == {1, 2, 5},
    ),
    ("POST", "/collections/{name}/points/delete", "prod", {"ids": [5]}, lambda a: a["count"] == 1),
    (
        "PUT",
        "/collections/{name}/index",
        "prod",
        {"field_name": "c"},
        lambda a: "c" in str(a["payload_indexes"]),
    ),
    ("DELETE", "/collections/{name}/index/c", "prod", None, lambda a: "c" not in str(a["payload_indexes"])),
    ("POST", "/collections/{name}/flush", "prod", {}, lambda a: a["flushed"] is True),
    ("POST", "/collections/{name}/optimize", "prod", {}, lambda a: "merged" in a),
    ("POST", "/collections/{name}/repair", "prod", {}, lambda a: "repaired_points" in a),
    ("POST", "/collections/{name}/reshard", "prod", {"shards": 3}, lambda a: a["shards"] == 3),
    (
        "POST",
        "/collections/{name}/points/add",
        "texts",
        {"texts": ["blue green deployment", "an alias"], "ids": [1, 2]},
        lambda a: a["count"] == 2,
    ),
    (
        "POST",
        "/collections/{name}/points/query",
        "texts",
        {"text": "alias", "using": "bm25", "k": 5},
        lambda a: [h["id"] for h in a["hits"]] == [2],
    ),
    ("PUT", "/collections/{name}?exist_ok=true", "prod", {"dim": DIM, "metric": "l2", "index": "flat"}, None),
]
# Routes through an alias that are refused on purpose (the alias is not the collection itself).
REFUSED = {
    ("PUT", "/collections/{name}"): (409, "CollectionAlreadyExists"),  # create under an alias's name
    ("DELETE", "/collections/{name}"): (409, "ConflictError"),  # delete_alias, or the collection
    ("POST", "/collections/{name}/restore"): (409, "CollectionAlreadyExists"),
}


def test_every_collection_route_is_covered() -> None:
    db = vf.connect()
    try:
        doc = create_app(ServerSettings(db, None, require_keys=False)).openapi()
    finally:
        db.close()
    routes = {
        (m.upper(), p)
        for p, item in doc["paths"].items()
        for m in item
        if p.startswith("/collections/{name}")
    }
    covered = {(m, p.split("?")[0].replace("/index/c", "/index/{field_name}")) for m, p, *_ in THROUGH}
    covered.add(("POST", "/collections/{name}/snapshot"))  # its answer is a tar: checked on its own
    assert routes == covered | set(REFUSED), routes ^ (covered | set(REFUSED))


def test_every_route_resolves_the_alias(prod_blue: Served) -> None:
    for method, path, alias, body, check in THROUGH:
        r = prod_blue.call("admin", method, path.format(name=alias), body)
        assert r.status_code == 200, (method, path, r.text)
        assert check is None or check(r.json()), (method, path, r.json())
    r = prod_blue.call("admin", "PUT", "/collections/prod?exist_ok=true", {"dim": DIM, "metric": "l2"})
    assert r.json()["name"] == "blue"
    snap = prod_blue.call("admin", "POST", "/collections/prod/snapshot")
    assert snap.status_code == 200 and snap.headers["content-type"] == "application/x-tar"
    for (method, path), (status, error) in REFUSED.items():
        kwargs: dict[str, Any] = {"content": snap.content} if path.endswith("restore") else {}
        if method == "PUT":
            kwargs["json"] = {"dim": DIM}
        r = httpx.request(
            method,
            prod_blue.server.url + path.format(name="prod"),
            headers={"Authorization": f"Bearer {prod_blue.keys['admin']}"},
            timeout=60,
            **kwargs,
        )
        assert r.status_code == status, (method, path, r.text)
        body = assert_error_body(r.content, error)
        assert "alias" in body["message"], body
    with prod_blue.db() as db:
        assert db.list_collections() == ["blue", "green", "words"]
        assert db.get_collection("blue").info()["shards"] == 3
        assert db.get_collection("prod").name == "blue"


def test_alias_routes_and_their_errors(prod_blue: Served) -> None:
    s = prod_blue
    assert s.call("admin", "GET", "/aliases").json() == {"aliases": {"prod": "blue", "texts": "words"}}
    r = s.call("admin", "PUT", "/aliases/staging", {"collection": "green"})
    assert r.status_code == 200 and r.json() == {"alias": "staging", "collection": "green"}
    assert_error_body(
        s.call("admin", "PUT", "/aliases/staging", {"collection": "blue"}).content, "AliasAlreadyExists"
    )
    assert s.call("admin", "PUT", "/aliases/staging", {"collection": "blue"}).status_code == 409
    r = s.call("admin", "POST", "/aliases/nothing/switch", {"collection": "blue"})
    assert r.status_code == 404 and assert_error_body(r.content, "AliasNotFound")
    r = s.call("admin", "PUT", "/aliases/other", {"collection": "absent"})
    assert r.status_code == 404 and assert_error_body(r.content, "CollectionNotFound")
    r = s.call("admin", "PUT", "/aliases/green", {"collection": "blue"})
    assert r.status_code == 409 and "name of a collection" in r.json()["message"]
    r = s.call("admin", "PUT", "/aliases/bad.name", {"collection": "blue"})
    assert r.status_code == 422 and assert_error_body(r.content, "InvalidName")
    r = s.call("admin", "PUT", "/aliases/x", {"collection": 3})
    assert r.status_code == 422
    r = s.call("admin", "DELETE", "/collections/blue")
    assert r.status_code == 409 and "'prod'" in r.json()["message"]
    r = s.call("admin", "POST", "/aliases/prod/switch", {"collection": "green"})
    assert r.status_code == 200 and s.call("admin", "GET", "/collections/prod").json()["name"] == "green"
    assert s.call("admin", "DELETE", "/aliases/staging").json() == {"deleted": True}
    assert s.call("admin", "DELETE", "/aliases/staging").status_code == 404
    with s.db() as db:  # the client raises the engine's classes
        with pytest.raises(vf.AliasNotFound):
            db.delete_alias("staging")
        with pytest.raises(vf.AliasAlreadyExists):
            db.create_alias("prod", "blue")
        assert db.list_aliases() == {"prod": "green", "texts": "words"}


def test_alias_changes_need_an_admin_key(prod_blue: Served) -> None:
    s = prod_blue
    assert s.call("read-only", "GET", "/aliases").json()["aliases"]["prod"] == "blue"
    for who in ("read-write", "read-only", "via-alias"):
        for method, path, body in (
            ("PUT", "/aliases/new", {"collection": "blue"}),
            ("POST", "/aliases/prod/switch", {"collection": "green"}),
            ("DELETE", "/aliases/prod", None),
        ):
            r = s.call(who, method, path, body)
            assert r.status_code == 403, (who, method, path, r.text)
            assert_error_body(r.content, "PermissionDenied")
    # a scoped admin changes only aliases in its scope, towards collections in its scope
    assert (
        s.call("admin-prod-blue", "POST", "/aliases/prod/switch", {"collection": "green"}).status_code == 403
    )
    assert s.call("admin-prod-blue", "PUT", "/aliases/mine", {"collection": "blue"}).status_code == 403
    assert (
        s.call("admin-prod-blue", "POST", "/aliases/prod/switch", {"collection": "blue"}).status_code == 200
    )
    assert s.call("admin", "GET", "/aliases").json()["aliases"] == {"prod": "blue", "texts": "words"}


def test_a_key_scoped_to_an_alias_follows_it(prod_blue: Served) -> None:
    s = prod_blue
    search = {"vector": V, "k": 10}
    r = s.call("via-alias", "POST", "/collections/prod/points/search", search)
    assert {h["id"] for h in r.json()["hits"]} == {1, 2}
    assert s.call("via-alias", "POST", "/collections/blue/points/search", search).status_code == 403
    assert s.call("via-alias", "GET", "/aliases").json() == {"aliases": {"prod": "blue"}}
    assert s.call("via-alias", "GET", "/collections").json() == {"collections": []}
    with s.db("via-alias") as db:
        assert db.has_collection("prod") and db.get_collection("prod").name == "blue"
    s.call("admin", "POST", "/aliases/prod/switch", {"collection": "green"})
    r = s.call("via-alias", "POST", "/collections/prod/points/search", search)
    assert {h["id"] for h in r.json()["hits"]} == {11, 12}


def test_a_key_scoped_to_the_collection_reaches_it_by_an_alias_only_while_it_points_there(
    prod_blue: Served,
) -> None:
    s = prod_blue
    r = s.call("via-blue", "POST", "/collections/prod/points/count", {})
    assert r.status_code == 200 and r.json()["count"] == 2
    assert s.call("via-blue", "GET", "/aliases").json() == {"aliases": {"prod": "blue"}}
    s.call("admin", "POST", "/aliases/prod/switch", {"collection": "green"})
    answers = {}
    for name in ("prod", "nosuch"):  # an alias out of scope answers as a name that does not exist
        r = s.call("via-blue", "POST", f"/collections/{name}/points/count", {})
        assert r.status_code == 403
        answers[name] = r.json()["message"].replace(repr(name), "<NAME>")
    assert answers["prod"] == answers["nosuch"]
    assert s.call("via-blue", "GET", "/aliases").json() == {"aliases": {}}
