"""A multi-node Ray cluster on this one machine, for tests, benchmarks and failover drills.

    from vectorforge.cluster.ray_local import start_cluster, stop_cluster
    cluster = start_cluster(workers=3)      # before anything imports ray
    db = vf.connect("./drill", cluster=vf.Cluster(backend="ray"))
    cluster.remove_node(cluster.worker_nodes[0])   # a node dies; its replicas are fenced and replaced

Every node binds 127.0.0.1 and needs no token, so nothing is reachable from outside the machine.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from vectorforge.errors import UsageError

__all__ = ["SYSTEM_CONFIG", "add_node", "start_cluster", "stop_cluster", "wait_for"]

# Fast health checks: a lost node is noticed in about a second instead of ~17 s.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 200,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}
# Small object stores: a 3-worker cluster costs about 1.5-2 GB here.
NODE: dict[str, Any] = {"num_cpus": 2, "object_store_memory": 80 * 2**20}
_LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


def start_cluster(workers: int = 3) -> Any:
    """A head that runs no replica (no CPUs, so any worker can be removed) and `workers` worker
    nodes; this process is connected to it as a driver. Returns the `ray.cluster_utils.Cluster`."""
    if "ray" in sys.modules and any(os.environ.get(k) != v for k, v in _LOOPBACK.items()):
        raise UsageError(
            "start_cluster must run before ray is imported (or set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
            "and RAY_AUTH_MODE=disabled first): Ray reads them at import"
        )
    os.environ.update(_LOOPBACK)
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={**NODE, "num_cpus": 0, "_system_config": SYSTEM_CONFIG}
    )
    for _ in range(workers):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="vectorforge-local", log_to_driver=False)
    return cluster


def stop_cluster(cluster: Any) -> None:
    """Disconnect and stop this cluster's processes only (never `ray stop`: it kills every Ray here)."""
    import ray

    ray.shutdown()
    cluster.shutdown()


def add_node(cluster: Any) -> None:
    """Add a worker node and wait until Ray sees it."""
    cluster.add_node(**NODE)
    cluster.wait_for_nodes()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition()` holds; AssertionError naming `what` after `timeout` seconds."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start
