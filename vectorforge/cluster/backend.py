"""Where replicas run: `vf.Cluster(backend="local")` (this process, the default) or `"ray"`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.replicaset import ReplicaSet, WriteQuorum
from vectorforge.engine import Collection
from vectorforge.engine.collection import CONFIG_FILE
from vectorforge.errors import InvalidParameter
from vectorforge.storage import fsio
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import CollectionConfig

__all__ = ["Cluster", "LocalBackend", "ShardBackend", "replica_config"]


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
    """

    backend: Literal["local", "ray"] = "local"
    address: str | None = None
    cpus_per_replica: float = 0.25
    call_timeout: float = 30.0
    health_interval: float = 0.5
    repair_interval: float | None = None

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

    def make_backend(self, sync: bool) -> ShardBackend:
        if self.backend == "local":
            return LocalBackend(sync)
        if self.backend == "ray":
            from vectorforge.cluster.ray_backend import RayBackend  # Ray is imported only when asked for

            return RayBackend(self, sync)
        raise InvalidParameter(f"cluster backend {self.backend!r} is unknown; use 'local' or 'ray'")


class ShardBackend(Protocol):
    """Opens the replica set of one shard (creating its replicas where needed)."""

    def open_shard(
        self, config: CollectionConfig, folder: Path | None, clock: HybridLogicalClock
    ) -> ReplicaSet: ...

    def close(self) -> None: ...


def replica_config(config: CollectionConfig) -> CollectionConfig:
    """A replica is an unsharded, unreplicated engine collection with the collection's settings."""
    return config.model_copy(update={"shards": 1, "replicas": 1})


def prepare_replica_folder(config: CollectionConfig, folder: Path) -> None:
    if not (folder / CONFIG_FILE).exists():
        fsio.make_dirs(folder)  # each new folder durable in its parent
        write_json_atomic(folder / CONFIG_FILE, json.loads(replica_config(config).model_dump_json()))


class LocalBackend:
    """Every replica an engine collection in this process."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync

    def open_shard(
        self, config: CollectionConfig, folder: Path | None, clock: HybridLogicalClock
    ) -> ReplicaSet:
        replicas = []
        for j in range(config.replicas):
            replica_folder = folder / "replicas" / str(j) if folder is not None else None
            if replica_folder is not None:
                prepare_replica_folder(config, replica_folder)
            replicas.append(Collection(replica_config(config), replica_folder, sync=self.sync))
        return ReplicaSet(replicas, folder, clock, WriteQuorum(config.write_quorum))

    def close(self) -> None:
        pass
