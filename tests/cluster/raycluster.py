"""A real multi-node Ray cluster on this machine, for the ray backend's tests and benchmarks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node binds 127.0.0.1
os.environ["RAY_AUTH_MODE"] = "disabled"

import ray
from ray.cluster_utils import Cluster

# Fast health checks: a lost node is noticed in about a second instead of ~17 s.
SYSTEM_CONFIG = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 200,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}
NODE = {"num_cpus": 2, "object_store_memory": 80 * 2**20}


def start_cluster(workers: int = 3) -> Cluster:
    """A head that runs no replica (no CPUs: any worker can be removed) and `workers` worker nodes;
    this process is connected as a driver."""
    head = {**NODE, "num_cpus": 0, "_system_config": SYSTEM_CONFIG}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    for _ in range(workers):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="vectorforge-tests", log_to_driver=False)
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    """Disconnect and stop only this cluster's processes (never `ray stop`: it kills every Ray here)."""
    ray.shutdown()
    cluster.shutdown()


def add_node(cluster: Cluster) -> None:
    cluster.add_node(**NODE)
    cluster.wait_for_nodes()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `condition()` holds; fails the test after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start
