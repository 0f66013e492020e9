"""The database that serves sharded collections (the `local` backend: every shard in this process).

Layout of a sharded collection::

    collections/<name>/config.json            shards, sharding, shard_key, n_probe, ...
    collections/<name>/router.npy             semantic sharding: the k-means centroids
    collections/<name>/shards/<i>/            each shard: an engine collection (log, segments, indexes)
"""

from __future__ import annotations

import json
from pathlib import Path

from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.collection import ShardedCollection
from vectorforge.cluster.replicaset import ReplicaSet, WriteQuorum
from vectorforge.engine import Collection, Database
from vectorforge.engine.collection import CONFIG_FILE
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import CollectionConfig

__all__ = ["ClusterDatabase"]


class ClusterDatabase(Database):
    """A `Database` whose `create_collection(..., shards=N)` spreads a collection over N shards."""

    def _open_collection(self, config: CollectionConfig, folder: Path | None) -> Collection:
        if config.shards == 1 and config.replicas == 1:
            return super()._open_collection(config, folder)
        replica_config = config.model_copy(update={"shards": 1, "replicas": 1})
        clock = HybridLogicalClock()  # one clock for the whole collection: timestamps order every shard
        shards = []
        for i in range(config.shards):
            shard_folder = folder / "shards" / str(i) if folder is not None else None
            replicas = []
            for j in range(config.replicas):
                replica_folder = shard_folder / "replicas" / str(j) if shard_folder is not None else None
                if replica_folder is not None and not (replica_folder / CONFIG_FILE).exists():
                    replica_folder.mkdir(parents=True, exist_ok=True)
                    write_json_atomic(
                        replica_folder / CONFIG_FILE, json.loads(replica_config.model_dump_json())
                    )
                replicas.append(Collection(replica_config, replica_folder, sync=self._sync))
            shards.append(ReplicaSet(replicas, shard_folder, clock, WriteQuorum(config.write_quorum)))
        # A ShardedCollection offers the Collection API; the engine's type is the closest shared one.
        return ShardedCollection(config, shards, folder, clock)  # type: ignore[return-value]
