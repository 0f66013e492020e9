"""Shards and replicas: routing, cross-shard top-k merging, online resharding, replication with
write quorums and consistency levels; replicas in this process (`local`) or on Ray actors (`ray`).

`vf.connect(path)` returns a `ClusterDatabase`: unsharded, unreplicated collections are plain engine
collections, `create_collection(..., shards=N, replicas=R)` makes a `ShardedCollection`.
"""

from __future__ import annotations

from vectorforge.cluster.collection import ShardedCollection
from vectorforge.cluster.database import ClusterDatabase
from vectorforge.cluster.routing import HashRouter, KeyRouter, SemanticRouter, stable_hash

__all__ = ["ClusterDatabase", "HashRouter", "KeyRouter", "SemanticRouter", "ShardedCollection", "stable_hash"]
