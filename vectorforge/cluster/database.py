"""The database that serves sharded, replicated collections.

Layout of a sharded collection::

    collections/<name>/config.json                   shards, sharding, shard_key, n_probe, replicas ...
    collections/<name>/router.npy                    semantic sharding: the k-means centroids
    collections/<name>/shards/<i>/replog/            shard i's replication log
    collections/<name>/shards/<i>/replicaset.json    its leader and epoch
    collections/<name>/shards/<i>/replicas/<j>/      replica j: an engine collection (log, segments ...)
    collections/<name>/shards-<g>/...                the same, after g reshards (config.json: layout=g)

Where the replicas run is the backend's business (`vf.Cluster`): in this process (`local`) or in Ray
actors spread over nodes (`ray`).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from vectorforge.cluster.backend import Cluster, LocalBackend, ShardBackend, replica_config
from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.collection import ShardedCollection
from vectorforge.cluster.layout import ShardLayout, remove_stale_layouts
from vectorforge.engine import Collection, Database
from vectorforge.engine.collection import CONFIG_FILE
from vectorforge.errors import InvalidParameter
from vectorforge.storage.fsio import extract_tar, write_json_atomic
from vectorforge.types import CollectionConfig

__all__ = ["ClusterDatabase"]


class ClusterDatabase(Database):
    """A `Database` whose `create_collection(..., shards=N, replicas=R)` spreads a collection."""

    def __init__(
        self, path: str | Path | None = None, *, sync: bool = True, cluster: Cluster | None = None
    ) -> None:
        self.cluster = cluster or Cluster()
        self._backend: ShardBackend = self.cluster.make_backend(sync)
        try:
            super().__init__(path, sync=sync)
        except BaseException:
            self._backend.close()
            raise

    def _open_collection(self, config: CollectionConfig, folder: Path | None) -> Collection:
        if config.shards == 1 and config.replicas == 1 and isinstance(self._backend, LocalBackend):
            return super()._open_collection(config, folder)
        clock = HybridLogicalClock()  # one clock for the whole collection: timestamps order every shard
        if folder is not None:
            remove_stale_layouts(folder, config.layout)  # what an interrupted reshard left
        layout = ShardLayout.open(config, folder, self._backend, clock)
        # A ShardedCollection offers the Collection API; the engine's type is the closest shared one.
        collection = ShardedCollection(layout, folder, clock, self._backend, self.cluster.repair_interval)
        return collection  # type: ignore[return-value]

    def _unpack_restored(self, config: CollectionConfig, folder: Path) -> None:
        """A sharded snapshot holds one archive per shard (its leader): unpack it as every replica."""
        archives = folder / "shards"
        if not archives.is_dir():  # a plain collection's snapshot
            return
        parts = [archives / f"{i}.tar" for i in range(config.shards)]
        if not all(p.is_file() for p in parts) or len(list(archives.iterdir())) != config.shards:
            raise InvalidParameter(
                f"this snapshot of {config.name!r} should hold one archive for each of its "
                f"{config.shards} shards; it is incomplete or damaged"
            )
        for i, part in enumerate(parts):
            for j in range(config.replicas):
                replica = archives / str(i) / "replicas" / str(j)
                with tarfile.open(part, "r") as tar:
                    extract_tar(tar, replica)
                write_json_atomic(replica / CONFIG_FILE, json.loads(replica_config(config).model_dump_json()))
            part.unlink()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._backend.close()
