"""`vectorforge serve`: safety checks, then uvicorn with graceful shutdown."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from vectorforge.cluster import ClusterDatabase
from vectorforge.cluster.backend import Cluster
from vectorforge.errors import InvalidParameter
from vectorforge.evaluation.schedule import load_schedule
from vectorforge.server.app import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY, ServerSettings, create_app
from vectorforge.server.auth import KeyStore
from vectorforge.server.protocol import with_header_timeout
from vectorforge.storage import fsio

__all__ = ["is_loopback", "serve"]

logger = logging.getLogger("vectorforge.server")


def is_loopback(host: str) -> bool:
    """True if `host` only ever resolves to loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def serve(
    data: Path,
    host: str = "127.0.0.1",
    port: int = 6333,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    header_timeout: float = 10.0,
    max_connections: int = 1000,
    log_level: str = "info",
    cluster: Cluster | None = None,
    eval_schedule: Path | None = None,
) -> None:
    """Serve the data folder until SIGTERM/SIGINT; in-flight requests finish, then the database closes.

    API keys are required unless the server listens on loopback only and no key exists; on any other
    address it refuses to start without keys. `cluster` chooses where replicas run (default: here).
    `eval_schedule`: a YAML list of evaluations to run on a schedule (see docs/evaluation.md).
    """
    schedule = load_schedule(eval_schedule) if eval_schedule is not None else []  # bad file: no start
    keys = KeyStore(data)
    require_keys = keys.required  # once a key has existed, keys stay on (`keys off` turns them off)
    if not require_keys:
        if not is_loopback(host):
            raise InvalidParameter(
                f"refusing to serve on {host} without API keys; create one with "
                f"`vectorforge keys create --data {data} --role admin`, or listen on 127.0.0.1"
            )
        logger.warning("API keys are OFF: no key exists and the server listens on loopback (%s) only", host)
    if (tls_cert is None) != (tls_key is None):
        raise InvalidParameter("TLS needs both --tls-cert and --tls-key")
    drill = os.environ.get("VECTORFORGE_FAULTS")
    if drill:  # a fault drill: the disk fails as the plan says (docs/guide.md, "When the disk fails")
        fsio.install(fsio.FaultPlan.parse(drill))
        logger.warning("FAULT DRILL: disk calls fail as %r says (VECTORFORGE_FAULTS)", drill)
    db = ClusterDatabase(data, cluster=cluster)
    settings = ServerSettings(
        db,
        keys,
        require_keys=require_keys,
        max_body=max_body,
        body_timeout=body_timeout,
        eval_schedule=schedule,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        timeout_graceful_shutdown=30,
        timeout_keep_alive=5,  # an idle connection is closed after 5 s
        limit_concurrency=max_connections,  # beyond it, new connections get 503 at once
        # httptools (the C parser; about half the per-request cost of h11) with a deadline for headers
        http=with_header_timeout(header_timeout),
        loop="uvloop",
        access_log=False,
    )
    server = uvicorn.Server(config)
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if tls_cert else "http"
    print(f"vectorforge: dashboard at {scheme}://{shown}:{port}/dashboard", file=sys.stderr, flush=True)
    # uvicorn drains and shuts down on SIGTERM, then re-raises the signal; a clean stop exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.run()
    finally:
        db.close()  # idempotent: the lifespan has normally closed it already
