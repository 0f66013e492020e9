"""`vf.Cluster`: where a clustered database runs its replicas (a plain setting, read by the backends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vectorforge.errors import InvalidParameter

__all__ = ["Cluster"]


@dataclass(frozen=True)
class Cluster:
    """Where a clustered database runs its replicas.

    Args:
        backend: "local" (every replica in this process) or "ray" (each replica a Ray actor; the
            replicas of a shard on different nodes where there are enough).
        address: the Ray cluster to join ("auto", "host:port"); None starts or reuses one here.
        cpus_per_replica: logical CPUs each replica actor reserves on its node.
        call_timeout: seconds a replica may take to answer before it is treated as lost.
        health_interval: seconds between checks of which Ray nodes are alive.
        repair_interval: seconds between anti-entropy checks of each sharded or replicated
            collection (`repair()`); None (the default) checks only when asked.
        connect_timeout: seconds to reach the Ray cluster at `address` before `UnavailableError`.
        placement_timeout: seconds Ray may take to place a shard's replicas before the create fails.
    """

    backend: Literal["local", "ray"] = "local"
    address: str | None = None
    cpus_per_replica: float = 0.25
    call_timeout: float = 30.0
    health_interval: float = 0.5
    repair_interval: float | None = None
    connect_timeout: float = 10.0
    placement_timeout: float = 60.0

    @classmethod
    def from_url(cls, url: str) -> Cluster:
        """`local`, `ray` (start or reuse Ray here), `ray://auto` or `ray://host:port`.

        `ray://host:port` joins the cluster whose head (GCS) listens there, as a driver on one of
        its nodes; it is not Ray Client, which vectorforge does not need.
        """
        if url == "local":
            return cls()
        if url == "ray":
            return cls(backend="ray")
        if url.startswith("ray://") and len(url) > len("ray://"):
            return cls(backend="ray", address=url[len("ray://") :])
        raise InvalidParameter(f"cluster {url!r} is not understood; use 'local', 'ray' or 'ray://host:port'")
