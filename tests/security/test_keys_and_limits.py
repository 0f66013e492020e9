"""Keys and what they may see, against a real server; limits that protect every tenant."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

import vectorforge as vf
from tests.server.conftest import cli, create_key
from tests.serverproc import start_server


def test_revoking_the_last_key_does_not_open_the_server(tmp_path: Path) -> None:
    """Before: a server started without keys went back to anonymous admin access when the last key
    was revoked."""
    data = tmp_path / "data"
    server = start_server(data)
    try:
        assert httpx.get(f"{server.url}/collections").status_code == 200  # no key ever: open (loopback)
        key_id, _ = create_key(data, "admin")
        assert httpx.get(f"{server.url}/collections").status_code == 401
        cli("keys", "revoke", "--data", data, key_id)
        assert httpx.get(f"{server.url}/collections").status_code == 401  # still closed
        off = cli("keys", "off", "--data", data)  # on purpose, and said so
        assert "OFF" in off.stdout
        assert httpx.get(f"{server.url}/collections").status_code == 200
    finally:
        server.stop()


def test_keys_off_is_refused_while_a_key_exists(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_key(data, "admin")
    done = cli("keys", "off", "--data", data, check=False)
    assert done.returncode != 0 and "revoke them first" in done.stdout + done.stderr


def test_metrics_need_an_admin_key_for_every_collection(tmp_path: Path) -> None:
    """Before: a key scoped to one collection read every collection's names and sizes."""
    data = tmp_path / "data"
    _, admin = create_key(data, "admin")
    _, scoped_admin = create_key(data, "admin", "a")
    server = start_server(data)
    try:
        with vf.connect(server.url, api_key=admin) as db:
            db.create_collection("a", dim=2).upsert([1], np.ones((1, 2)))
            db.create_collection("secret", dim=2)
        scoped = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {scoped_admin}"})
        assert scoped.status_code == 403 and "secret" not in scoped.text
        full = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert full.status_code == 200 and 'collection="secret"' in full.text
        ready = httpx.get(f"{server.url}/readyz")  # no key needed: no counts either
        assert ready.json() == {"status": "ready"}
    finally:
        server.stop()


def test_a_payload_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    with vf.connect(tmp_path / "d") as db:
        col = db.create_collection("c", dim=2)
        with pytest.raises(vf.InvalidPayload, match="the limit is 1,048,576"):
            col.upsert([1], np.ones((1, 2)), [{"blob": "x" * (1 << 20)}])
        assert col.count() == 0


def _read_all(conn: object) -> bytes:
    """Everything the server sends until it closes the connection (an answer may come in parts)."""
    data = b""
    while chunk := conn.recv(4096):  # type: ignore[attr-defined]
        data += chunk
    return data


def test_a_slow_body_is_cut_off_with_408(tmp_path: Path) -> None:
    """Before: no body read timeout; 180 slow connections held the server's handlers for 40 s."""
    import socket
    import time

    server = start_server(tmp_path / "data", "--body-timeout", "0.5")
    try:
        host, port = server.url.rsplit("//", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(
                b"PUT /collections/x/points HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"ids": ['
            )
            start = time.monotonic()
            answer = _read_all(conn)
            waited = time.monotonic() - start
        assert answer.startswith(b"HTTP/1.1 408") and b"RequestTimeout" in answer
        assert waited < 5
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()


def test_slow_headers_are_cut_off_with_408(tmp_path: Path) -> None:
    """Before: no header deadline; a client sending its headers slowly held the connection."""
    import socket
    import time

    server = start_server(tmp_path / "data", "--header-timeout", "0.5")
    try:
        host, port = server.url.rsplit("//", 1)[1].split(":")
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the rest
            start = time.monotonic()
            answer = _read_all(conn)  # until the server closes the connection
            waited = time.monotonic() - start
        assert answer.startswith(b"HTTP/1.1 408") and b"RequestTimeout" in answer
        assert waited < 5
        # a prompt client is not affected, also on a kept-alive connection
        with httpx.Client(base_url=server.url) as client:
            for _ in range(3):
                assert client.get("/healthz").status_code == 200
                time.sleep(0.3)
    finally:
        server.stop()


def test_the_first_key_is_an_admin_key_unless_asked_otherwise(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = cli("keys", "create", "--data", data).stdout
    second = cli("keys", "create", "--data", data).stdout
    assert "(admin," in first and "(read-only," in second


def test_a_first_key_that_would_leave_no_admin_is_refused_naming_the_fix(tmp_path: Path) -> None:
    """Before: following the README (serve without keys, then `keys create --role read-only -c
    docs`) locked the owner out: the server required keys at once and the only one could not manage."""
    data = tmp_path / "data"
    server = start_server(data)
    try:
        done = cli("keys", "create", "--data", data, "--role", "read-only", "-c", "docs", check=False)
        assert done.returncode != 0
        message = done.stdout + done.stderr
        assert "without an admin key" in message and "--role admin" in message and "--no-admin" in message
        assert not (data / "keys.json").exists()  # nothing changed: the server still answers
        assert httpx.get(f"{server.url}/collections").status_code == 200
        _, admin = create_key(data, "admin")
        create_key(data, "read-only", "docs")  # with an admin key in the store: fine
        assert httpx.get(f"{server.url}/collections").status_code == 401
        assert httpx.get(f"{server.url}/collections", headers={"api-key": admin}).status_code == 200
        assert "API keys are now required" in server.output()  # the moment is in the server's log
    finally:
        server.stop()
    other = tmp_path / "other"
    scoped = cli("keys", "create", "--data", other, "--role", "admin", "-c", "docs", check=False)
    assert (
        scoped.returncode != 0 and "an admin key limited to some collections" in scoped.stdout + scoped.stderr
    )
    done = cli("keys", "create", "--data", other, "--role", "read-only", "--no-admin")  # asked for
    assert "(read-only," in done.stdout


def test_the_last_admin_key_is_not_revoked_while_other_keys_remain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    admin_id, _ = create_key(data, "admin")
    create_key(data, "read-only")
    done = cli("keys", "revoke", "--data", data, admin_id, check=False)
    assert done.returncode != 0 and "last admin key" in done.stdout + done.stderr
    assert admin_id in cli("keys", "list", "--data", data).stdout  # still there
    second_id, _ = create_key(data, "admin")
    cli("keys", "revoke", "--data", data, admin_id)  # another admin remains
    cli("keys", "revoke", "--data", data, second_id, "--no-admin")  # asked for
    assert second_id not in cli("keys", "list", "--data", data).stdout
