"""Joining a Ray cluster that is not there fails fast, with an `UnavailableError` that says how to
start one (Ray itself retries a dead address for minutes and raises its own ConnectionError).

Each case runs in a fresh process, so that no Ray is initialized in it; no cluster is up while this
module runs (tests/cluster/test_ray.py stops its own at the end of its module)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.timeout(120)

CHILD = """
import os, sys
os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled")
import vectorforge as vf
try:
    vf.connect(sys.argv[1], cluster=vf.Cluster(backend="ray", address=sys.argv[2], connect_timeout=1.0))
except vf.UnavailableError as exc:
    print("UnavailableError:", exc)
    sys.exit(3)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.mark.parametrize("address", ["port", "ray-url", "auto"])
def test_no_cluster_at_the_address_is_an_unavailable_error_within_the_timeout(
    tmp_path: object, address: str
) -> None:
    targets = {"port": f"127.0.0.1:{_free_port()}", "ray-url": f"ray://127.0.0.1:{_free_port()}"}
    target = targets.get(address, "auto")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), target],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert time.monotonic() - start < 20  # the 1 s timeout, plus starting Python and importing Ray
    assert "ray start --head" in done.stdout and "vectorforge cluster local" in done.stdout
    if address != "auto":  # the address probed is host:port, whichever form was given
        assert "no Ray cluster answers at 127.0.0.1:" in done.stdout
    assert "Failed to connect to GCS" not in done.stderr  # Ray's retry warnings are never reached


def test_serve_with_no_ray_head_exits_with_the_error(tmp_path: object) -> None:
    address = f"ray://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "vectorforge.cli", "serve", "--data", str(tmp_path), "--cluster", address],
        capture_output=True,
        text=True,
        env={**_env(), "COLUMNS": "200"},
        timeout=90,
    )
    assert done.returncode != 0 and time.monotonic() - start < 45
    out = done.stdout + done.stderr
    assert "no Ray cluster answers at 127.0.0.1" in out and "ray start --head" in out
    assert "Failed to connect to GCS" not in out


JOIN = """
import os, sys
os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled")
import numpy as np
import vectorforge as vf
db = vf.connect(sys.argv[1], cluster=vf.Cluster(backend="ray", address=sys.argv[2], connect_timeout=5.0))
col = db.create_collection("drill", dim=2, index="flat", shards=2, replicas=1)
col.upsert([1, 2, 3], np.ones((3, 2)))
print("count", col.count(consistency="strong"))
db.close()
"""


def test_cluster_local_starts_a_cluster_to_join_and_stops_it_on_ctrl_c(tmp_path: object) -> None:
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "vectorforge.cli", "cluster", "local", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**_env(), "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        address = None
        deadline = time.monotonic() + 90
        while address is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if "Ray cluster up at" in line:
                address = line.split("Ray cluster up at", 1)[1].split()[0]
        assert address is not None, "no address printed"
        joined = subprocess.run(
            [sys.executable, "-c", JOIN, str(tmp_path), address],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
        )
        assert "count 3" in joined.stdout, joined.stdout + joined.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
