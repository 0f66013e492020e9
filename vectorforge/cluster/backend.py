"""Shard backends: they open a shard's replica set where its replicas run. `local` (every replica in
this process, the default) is here; `ray` is `cluster/ray_backend.py`, imported only when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.config import Cluster
from vectorforge.cluster.replicas import prepare_replica_folder, replica_config
from vectorforge.cluster.replicaset import ReplicaSet, WriteQuorum
from vectorforge.engine import Collection
from vectorforge.errors import InvalidParameter
from vectorforge.types import CollectionConfig

__all__ = ["Cluster", "LocalBackend", "ShardBackend", "make_backend", "replica_config"]


class ShardBackend(Protocol):
    """Opens the replica set of one shard (creating its replicas where needed)."""

    def open_shard(
        self, config: CollectionConfig, folder: Path | None, clock: HybridLogicalClock
    ) -> ReplicaSet: ...

    def discard(self, replicas: ReplicaSet) -> None:
        """Release what the backend holds for a shard that was opened and then given up."""

    def close(self) -> None: ...


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

    def discard(self, replicas: ReplicaSet) -> None:
        pass  # closing the replica set released everything

    def close(self) -> None:
        pass


def make_backend(cluster: Cluster, sync: bool) -> ShardBackend:
    """The backend `cluster` names."""
    if cluster.backend == "local":
        return LocalBackend(sync)
    if cluster.backend == "ray":
        from vectorforge.cluster.ray_backend import RayBackend  # Ray is imported only when asked for

        return RayBackend(cluster, sync)
    raise InvalidParameter(f"cluster backend {cluster.backend!r} is unknown; use 'local' or 'ray'")
