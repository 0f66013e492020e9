"""Security of `vectorforge serve`: API keys, roles, collection scopes, key storage, safe start-up, TLS,
and collection names that try to leave the data folder."""

from __future__ import annotations

import io
import json
import shutil
import signal
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import vectorforge as vf
from tests.server.conftest import assert_error_body, cli, create_key, raw_request
from tests.serverproc import ServerProcess, start_server
from vectorforge.server.auth import KeyStore

DIM = 4


def _vectors(n: int, value: float) -> np.ndarray:
    return np.full((n, DIM), value, dtype=np.float32)


def _new_collection(db: Any, name: str, points: int = 3) -> None:
    col = db.create_collection(name, dim=DIM, metric="l2", index="flat")
    col.upsert(list(range(points)), _vectors(points, 1.0), [{"i": i} for i in range(points)])


@dataclass
class Secured:
    """One server with keys for every role, plus collections "a", "b" and "m"."""

    server: ServerProcess
    root: Path
    keys: dict[str, str]
    snapshot: Path

    @property
    def url(self) -> str:
        return self.server.url

    def db(self, who: str) -> Any:
        return vf.connect(self.url, api_key=self.keys[who], retries=0)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("secured")
    data = root / "data"
    keys = {
        "admin": create_key(data, "admin")[1],
        "read-write": create_key(data, "read-write")[1],
        "read-only": create_key(data, "read-only")[1],
        "scoped": create_key(data, "read-write", "a")[1],
    }
    server = start_server(data)
    try:
        snapshot = root / "m.tar"
        with vf.connect(server.url, api_key=keys["admin"]) as admin:
            for name in ("a", "b", "m"):
                _new_collection(admin, name)
            admin.get_collection("m").snapshot(snapshot)
        yield Secured(server, root, keys, snapshot)
    finally:
        server.stop()


def _fingerprint(secured: Secured) -> dict[str, Any]:
    """What an admin sees: collections, and the points of each."""
    with secured.db("admin") as admin:
        out: dict[str, Any] = {}
        for name in sorted(admin.list_collections()):
            page = admin.get_collection(name).scroll(with_vectors=True)
            out[name] = [(r.id, r.payload, np.asarray(r.vector).tolist()) for r in page.records]
        return out


# -- authentication -------------------------------------------------------------------------------


def test_error_classes_are_public() -> None:
    from vectorforge import errors

    for name in ("AuthenticationError", "PermissionDenied", "RequestTooLarge", "ServerUnavailable"):
        assert getattr(vf, name) is getattr(errors, name)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/collections", None),
        ("GET", "/collections/a", None),
        ("POST", "/collections/a/points/search", {"vector": [0, 0, 0, 0]}),
        ("PUT", "/collections/a/points", {"ids": [9], "vectors": [[1, 1, 1, 1]]}),
        ("POST", "/msgpack/collections/a/points/search", {"vector": [0, 0, 0, 0]}),
        ("PUT", "/msgpack/collections/a/points", {"ids": [9], "vectors": [[1, 1, 1, 1]]}),
        ("PUT", "/collections/new", {"dim": 4}),
        ("GET", "/metrics", None),
        (
            "POST",
            "/plan",
            {"name": "w", "corpus": {"points": 1}, "qps": {"peak": 1, "average": 1}, "latency_p99_ms": 10},
        ),
    ],
)
def test_no_key_is_401_with_a_message(secured: Secured, method: str, path: str, body: Any) -> None:
    response = httpx.request(method, secured.url + path, json=body)
    assert response.status_code == 401
    error = assert_error_body(response.content, "AuthenticationError")
    assert "API key" in error["message"] and "Bearer" in error["message"]
    assert response.headers.get("www-authenticate") == "Bearer"
    with vf.connect(secured.url, retries=0) as db, pytest.raises(vf.AuthenticationError, match="API key"):
        db.list_collections()


def _tampered(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.mark.parametrize(
    "make_key",
    [
        lambda keys: "nonsense",
        lambda keys: "vf_",
        lambda keys: "vf__",
        lambda keys: "vf_00000000_" + "x" * 32,
        lambda keys: _tampered(keys["admin"]),  # a known id with the wrong secret
        lambda keys: keys["admin"] + "x",
        lambda keys: keys["admin"].split("_")[1],  # the id alone
    ],
    ids=["nonsense", "prefix", "empty-parts", "unknown-id", "wrong-secret", "longer", "id-only"],
)
@pytest.mark.parametrize("header", ["authorization", "api-key"])
def test_bad_key_is_401(secured: Secured, make_key: Callable[[dict[str, str]], str], header: str) -> None:
    key = make_key(secured.keys)
    headers = {"Authorization": f"Bearer {key}"} if header == "authorization" else {"api-key": key}
    response = httpx.get(secured.url + "/collections", headers=headers)
    assert response.status_code == 401, response.text
    assert_error_body(response.content, "AuthenticationError")
    # The good key works through both headers: the 401 is about the key, not the header.
    good = secured.keys["admin"]
    headers = {"Authorization": f"Bearer {good}"} if header == "authorization" else {"api-key": good}
    assert httpx.get(secured.url + "/collections", headers=headers).status_code == 200


def test_a_revoked_key_is_refused_on_the_next_request(secured: Secured) -> None:
    data = secured.server.data
    key_id, key = create_key(data, "read-only")  # created while the server runs: usable at once
    with vf.connect(secured.url, api_key=key, retries=0) as db:
        assert "a" in db.list_collections()
        cli("keys", "revoke", "--data", data, key_id)
        with pytest.raises(vf.AuthenticationError, match="unknown or revoked"):
            db.list_collections()
        with pytest.raises(vf.AuthenticationError):
            db.get_collection("a").count()
    listed = cli("keys", "list", "--data", data).stdout
    assert key_id not in listed
    assert secured.keys["admin"].split("_")[1] in listed
    # The other keys still work.
    with secured.db("read-only") as db:
        assert db.get_collection("a").count() == 3


def test_keys_file_holds_no_key_and_is_private(secured: Secured) -> None:
    path = secured.server.data / "keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    entries = json.loads(text)
    assert len(entries) >= len(secured.keys)
    for key in secured.keys.values():
        secret = key.split("_", 2)[2]
        assert key not in text and secret not in text
    assert all(set(entry) >= {"id", "sha256", "role"} for entry in entries)
    listed = cli("keys", "list", "--data", secured.server.data).stdout
    assert not any(key.split("_", 2)[2] in listed for key in secured.keys.values())


# -- roles --------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    """What an operation of the role matrix may need besides the client under test."""

    admin: Any
    tmp: Path
    snapshot: Path


def _op_create(db: Any, ctx: Ctx) -> None:
    db.create_collection("created", dim=DIM, metric="l2", index="flat")


def _op_delete_collection(db: Any, ctx: Ctx) -> None:
    db.delete_collection("victim")


OPS: dict[str, tuple[str, Callable[[Any, Ctx], Any]]] = {
    "list": ("read", lambda db, ctx: db.list_collections()),
    "info": ("read", lambda db, ctx: db.get_collection("m").info()),
    "count": ("read", lambda db, ctx: db.get_collection("m").count()),
    "search": ("read", lambda db, ctx: db.get_collection("m").search([1.0] * DIM, k=2)),
    "get": ("read", lambda db, ctx: db.get_collection("m").get([0, 1])),
    "scroll": ("read", lambda db, ctx: db.get_collection("m").scroll()),
    "upsert": ("write", lambda db, ctx: db.get_collection("m").upsert([100], _vectors(1, 5.0))),
    "delete-points": ("write", lambda db, ctx: db.get_collection("m").delete(ids=[0])),
    "flush": ("write", lambda db, ctx: db.get_collection("m").flush()),
    "create-collection": ("manage", _op_create),
    "delete-collection": ("manage", _op_delete_collection),
    "snapshot": ("manage", lambda db, ctx: db.get_collection("m").snapshot(ctx.tmp / "s.tar")),
    "restore": ("manage", lambda db, ctx: db.restore(ctx.snapshot, "restored")),
    "metrics": ("manage", lambda db, ctx: db.request("GET", "/metrics", idempotent=True)),
}
ALLOWED = {
    "admin": {"read", "write", "manage"},
    "read-write": {"read", "write"},
    "read-only": {"read"},
}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("role", list(ALLOWED))
def test_role_matrix(secured: Secured, role: str, op: str, tmp_path: Path) -> None:
    needs, run = OPS[op]
    with secured.db("admin") as admin, secured.db(role) as db:
        if "victim" not in admin.list_collections():
            _new_collection(admin, "victim")
        before = _fingerprint(secured)
        try:
            if needs in ALLOWED[role]:
                run(db, Ctx(admin, tmp_path, secured.snapshot))
                assert op in (
                    "list",
                    "info",
                    "count",
                    "search",
                    "get",
                    "scroll",
                    "flush",
                    "snapshot",
                    "metrics",
                ) or (_fingerprint(secured) != before), "an allowed write changed nothing"
            else:
                with pytest.raises(vf.PermissionDenied, match=role) as denied:
                    run(db, Ctx(admin, tmp_path, secured.snapshot))
                assert needs in str(denied.value)
                assert _fingerprint(secured) == before, "a refused request changed the database"
        finally:
            # Put back what an allowed request changed, for the other tests of this module.
            for name in ("created", "restored"):
                if name in admin.list_collections():
                    admin.delete_collection(name)
            m = admin.get_collection("m")
            m.delete(ids=[100])
            m.upsert([0], _vectors(1, 1.0), [{"i": 0}])
    if op == "snapshot" and role == "admin":
        assert tarfile.is_tarfile(tmp_path / "s.tar")


# -- collection scopes --------------------------------------------------------------------------------

SCOPED_REQUESTS = [
    ("GET", "/collections/{c}", None),
    ("POST", "/collections/{c}/points/count", {}),
    ("POST", "/collections/{c}/points/search", {"vector": [1, 1, 1, 1], "k": 2}),
    ("POST", "/collections/{c}/points/search/batch", {"vectors": [[1, 1, 1, 1]], "k": 2}),
    ("POST", "/collections/{c}/points/get", {"ids": [0, 1]}),
    ("POST", "/collections/{c}/points/scroll", {}),
    ("PUT", "/collections/{c}/points", {"ids": [50], "vectors": [[2, 2, 2, 2]]}),
    ("POST", "/collections/{c}/points/delete", {"ids": [0]}),
    ("POST", "/collections/{c}/flush", {}),
    ("POST", "/collections/{c}/optimize", {}),
    ("PUT", "/collections/{c}", {"dim": 4, "metric": "l2", "index": "flat"}),
    ("DELETE", "/collections/{c}", None),
    ("POST", "/collections/{c}/snapshot", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), SCOPED_REQUESTS, ids=[f"{m} {p}" for m, p, _ in SCOPED_REQUESTS]
)
def test_a_scoped_key_cannot_touch_or_detect_other_collections(
    secured: Secured, method: str, path: str, body: Any
) -> None:
    before = _fingerprint(secured)
    answers = {}
    for name in ("b", "zzz"):  # "b" exists, "zzz" does not
        response = httpx.request(
            method, secured.url + path.format(c=name), json=body, headers=secured.headers("scoped")
        )
        assert response.status_code == 403, response.text
        error = assert_error_body(response.content, "PermissionDenied")
        answers[name] = json.dumps(error, sort_keys=True).replace(repr(name), "<NAME>")
    # The same answer, up to the name itself: the key cannot tell that "b" exists and "zzz" does not.
    assert answers["b"] == answers["zzz"]
    assert "<NAME>" in answers["b"]
    assert _fingerprint(secured) == before


def test_a_scoped_key_sees_and_uses_only_its_collection(secured: Secured) -> None:
    with secured.db("scoped") as db:
        assert db.list_collections() == ["a"]
        assert not db.has_collection("b")
        col = db.get_collection("a")
        col.upsert([77], _vectors(1, 3.0), [{"i": 77}])
        assert col.count() == 4
        assert col.search([3.0] * DIM, k=1)[0].id == 77
        col.delete(ids=[77])
        assert col.count() == 3
        with pytest.raises(vf.PermissionDenied):
            db.get_collection("b")
        with pytest.raises(vf.PermissionDenied):
            db.create_collection("zzz", dim=DIM)
    with secured.db("admin") as admin:
        assert "zzz" not in admin.list_collections()
        assert admin.list_collections() == sorted(admin.list_collections())
        assert {"a", "b", "m"} <= set(admin.list_collections())


# -- collection names that try to leave the data folder ----------------------------------------------

TRAVERSAL_TARGETS = [
    ("PUT", "/collections/.."),
    ("PUT", "/collections/%2e%2e"),
    ("PUT", "/collections/%2E%2E"),
    ("PUT", "/collections/."),
    ("PUT", "/collections/..%2fevil"),
    ("PUT", "/collections/%2e%2e%2fevil"),
    ("PUT", "/collections/%2e%2e%2f%2e%2e%2fevil"),
    ("PUT", "/collections/..%5cevil"),
    ("PUT", "/collections/a/b"),
    ("PUT", "/collections/a%2fb"),
    ("PUT", "/collections/evil%00"),
    ("GET", "/collections/..%2f..%2fvictim"),
    ("DELETE", "/collections/.."),
    ("DELETE", "/collections/%2e%2e"),
    ("DELETE", "/collections/..%2f..%2fvictim"),
    ("DELETE", "/collections/%2e%2e%2f%2e%2e%2fvictim"),
    ("POST", "/collections/%2e%2e/points/search"),
    ("PUT", "/collections/%2e%2e/points"),
    ("POST", "/collections/..%2fevil/snapshot"),
    ("POST", "/collections/%2e%2e/snapshot"),
    ("POST", "/collections/..%2fevil/restore"),
    ("POST", "/collections/%2e%2e/restore"),
]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_path_traversal_in_collection_names_is_refused(secured: Secured) -> None:
    victim = secured.root / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "keep.txt").write_text("still here")
    outside = {p for p in _tree(secured.root) if not p.startswith("data/") and not p.startswith("server-")}
    collections = sorted(p.name for p in (secured.server.data / "collections").iterdir())
    bodies = {
        "PUT": json.dumps({"dim": 4, "metric": "l2", "index": "flat"}).encode(),
        "POST": json.dumps({"vector": [1, 1, 1, 1]}).encode(),
    }
    for method, target in TRAVERSAL_TARGETS:
        body = bodies.get(method)
        if target.endswith("/restore"):
            body = secured.snapshot.read_bytes()
        elif target.endswith("/points") and method == "PUT":
            body = json.dumps({"ids": [1], "vectors": [[1, 1, 1, 1]]}).encode()
        status, raw = raw_request(secured.url, method, target, body=body, headers=secured.headers("admin"))
        assert 400 <= status < 500, f"{method} {target} -> {status} {raw[:300]!r}"
        assert_error_body(raw)
    assert {p for p in _tree(secured.root) if not p.startswith("data/") and not p.startswith("server-")} == (
        outside
    )
    assert (victim / "keep.txt").read_text() == "still here"
    assert not [p for p in _tree(secured.root) if "evil" in p]
    assert sorted(p.name for p in (secured.server.data / "collections").iterdir()) == collections


def test_a_snapshot_with_entries_outside_the_folder_is_refused(secured: Secured, tmp_path: Path) -> None:
    bad = tmp_path / "upload" / "bad.tar"
    bad.parent.mkdir()
    with tarfile.open(bad, "w") as tar:
        for name, data in (("config.json", b"{}"), ("../../escaped.txt", b"x"), ("/abs-escaped.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    collections = sorted(p.name for p in (secured.server.data / "collections").iterdir())
    status, raw = raw_request(
        secured.url,
        "POST",
        "/collections/evil/restore",
        body=bad.read_bytes(),
        headers={**secured.headers("admin"), "Content-Type": "application/x-tar"},
    )
    assert 400 <= status < 500, raw
    assert_error_body(raw)
    assert not list(secured.root.rglob("*escaped*"))
    assert not list(tmp_path.rglob("*escaped*"))
    assert not Path("/abs-escaped.txt").exists()
    # Nothing half-restored is left behind.
    assert sorted(p.name for p in (secured.server.data / "collections").iterdir()) == collections


# -- start-up safety ----------------------------------------------------------------------------------


def test_refuses_to_start_on_all_interfaces_without_keys(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", host="0.0.0.0", wait=False)
    try:
        code = server.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.stop(signal.SIGKILL)
        pytest.fail(f"the server kept running on 0.0.0.0 without keys:\n{server.output()}")
    assert code != 0
    out = server.output()
    assert "refusing to serve on 0.0.0.0 without API keys" in out
    assert "keys create" in out
    assert "Uvicorn running" not in out


def test_open_on_loopback_only_while_no_key_exists(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        assert "API keys are OFF" in server.output()
        assert httpx.get(server.url + "/collections").status_code == 200
        _, key = create_key(data, "admin")
        # From the first key on, keys are required, also by a server that started without any.
        response = httpx.get(server.url + "/collections")
        assert response.status_code == 401, response.text
        assert_error_body(response.content, "AuthenticationError")
        assert httpx.get(server.url + "/collections", headers={"api-key": key}).status_code == 200
    finally:
        server.stop()


def test_with_keys_on_loopback_a_key_is_required(secured: Secured) -> None:
    assert "API keys are OFF" not in secured.server.output()
    assert httpx.get(secured.url + "/collections/a").status_code == 401
    assert httpx.get(secured.url + "/collections/a", headers=secured.headers("read-only")).status_code == 200
    # Probes and the API description need no key.
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert httpx.get(secured.url + path).status_code == 200


# -- TLS ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path, str]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make a self-signed certificate (apt install openssl)")
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    data = root / "data"
    _, api_key = create_key(data, "admin")
    server = start_server(data, "--tls-cert", str(cert), "--tls-key", str(key), scheme="https")
    try:
        yield server, cert, api_key
    finally:
        server.stop()


def test_tls_search_with_the_certificate(tls_server: tuple[ServerProcess, Path, str]) -> None:
    server, cert, api_key = tls_server
    assert server.url.startswith("https://127.0.0.1:")
    with vf.connect(server.url, api_key=api_key, verify=str(cert)) as db:
        col = db.create_collection("tls", dim=DIM, metric="l2", index="flat")
        col.upsert([1, 2], np.array([[0, 0, 0, 0], [5, 5, 5, 5]], dtype=np.float32), [{"n": 1}, {"n": 2}])
        hits = col.search([4.0] * DIM, k=1)
        assert [h.id for h in hits] == [2] and hits[0].payload == {"n": 2}
        db.delete_collection("tls")


def test_tls_refuses_plain_http_and_unverified_certificates(
    tls_server: tuple[ServerProcess, Path, str],
) -> None:
    server, _, api_key = tls_server
    plain = server.url.replace("https://", "http://")
    with vf.connect(plain, api_key=api_key, retries=0) as db, pytest.raises(vf.ServerUnavailable):
        db.list_collections()
    # Without the certificate, the client does not trust a self-signed server.
    with vf.connect(server.url, api_key=api_key, retries=0) as db, pytest.raises(vf.ServerUnavailable):
        db.list_collections()
    # The server is still healthy after the bad connections.
    assert httpx.get(server.url + "/healthz", verify=False).status_code == 200


KEY_MAKER = """
import sys
from pathlib import Path
from vectorforge.server.auth import KeyStore
store = KeyStore(Path(sys.argv[1]))
for _ in range(25):
    store.create()  # the first key made by any of the processes is the one admin key
"""


def test_concurrent_key_creation_in_several_processes_loses_no_key(tmp_path: Path) -> None:
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-c", KEY_MAKER, str(tmp_path)]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    entries = KeyStore(tmp_path).entries()
    assert len(entries) == 100
    assert sorted(e.role.value for e in entries) == ["admin"] + ["read-only"] * 99
