"""Helpers for the server tests: API keys through the real CLI, raw HTTP requests, JSON error checks."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import vectorforge as vf


def cli(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m vectorforge.cli ARGS` and return the finished process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "vectorforge.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"vectorforge {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def create_key(data: Path, role: str, *collections: str) -> tuple[str, str]:
    """`vectorforge keys create`: the key id and the key (printed on the last stdout line)."""
    scope = [arg for c in collections for arg in ("-c", c)]
    out = cli("keys", "create", "--data", data, "--role", role, *scope).stdout
    key = out.strip().splitlines()[-1].strip()
    assert key.startswith("vf_"), f"no key on the last line of {out!r}"
    return key.split("_")[1], key


def raw_request(
    url: str,
    method: str,
    target: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request with the path sent byte for byte (httpx would normalize '..' segments away)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, target, body=body, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def assert_error_body(raw: bytes | str, error: str | None = None) -> dict[str, Any]:
    """The body of an error response: JSON with a known error class name and a non-empty message."""
    body = json.loads(raw)
    assert isinstance(body, dict), body
    assert isinstance(body.get("message"), str) and body["message"].strip(), body
    name = body.get("error")
    assert isinstance(name, str) and vf.errors.error_class(name).__name__ == name, body
    if error is not None:
        assert name == error, body
    return body
