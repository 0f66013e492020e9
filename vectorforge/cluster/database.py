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
import shutil
import tarfile
from pathlib import Path

from vectorforge.cluster.backend import LocalBackend, ShardBackend, make_backend
from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.collection import ShardedCollection
from vectorforge.cluster.config import Cluster
from vectorforge.cluster.layout import ShardLayout, remove_stale_layouts
from vectorforge.cluster.replicas import replica_config
from vectorforge.engine import Collection, Database
from vectorforge.engine.collection import CONFIG_FILE
from vectorforge.engine.restore_check import check_collection, plain_member, unpack
from vectorforge.errors import InvalidParameter
from vectorforge.storage import fsio
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import CollectionConfig

__all__ = ["ClusterDatabase"]


class ClusterDatabase(Database):
    """A `Database` whose `create_collection(..., shards=N, replicas=R)` spreads a collection."""

    def __init__(
        self, path: str | Path | None = None, *, sync: bool = True, cluster: Cluster | None = None
    ) -> None:
        self.cluster = cluster or Cluster()
        self._backend: ShardBackend = make_backend(self.cluster, sync)
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
        """A sharded snapshot holds one archive per shard (its leader): unpack and check it once,
        then lay it out as every replica."""
        archives = folder / "shards"
        parts = [archives / f"{i}.tar" for i in range(config.shards)]
        present = sorted(p.name for p in archives.iterdir()) if archives.is_dir() else []
        if present != sorted(p.name for p in parts):
            raise InvalidParameter(
                f"this snapshot of {config.name!r} should hold one archive for each of its "
                f"{config.shards} shards; it is incomplete or damaged"
            )
        replica = replica_config(config)
        for i, part in enumerate(parts):
            first = archives / str(i) / "replicas" / "0"
            fsio.make_dirs(first)
            try:
                with tarfile.open(part, "r") as tar:
                    unpack(tar, first, plain_member, self.restore_limits, part.stat().st_size)
            except tarfile.TarError as exc:
                raise InvalidParameter(f"snapshot's shards/{i}.tar is not a tar archive") from exc
            write_json_atomic(first / CONFIG_FILE, json.loads(replica.model_dump_json()))
            check_collection(first, replica, where=f"shards/{i}", isolate=self.restore_limits.isolate_readers)
            for j in range(1, config.replicas):
                shutil.copytree(first, archives / str(i) / "replicas" / str(j))
            part.unlink()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._backend.close()
