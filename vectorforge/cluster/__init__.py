"""Shards (and, next, replicas): routing, cross-shard top-k merging, the `local` backend.

`vf.connect(path)` returns a `ClusterDatabase`: unsharded collections are plain engine collections,
`create_collection(..., shards=N)` makes a `ShardedCollection`.
"""

from __future__ import annotations

from vectorforge.cluster.collection import ShardedCollection
from vectorforge.cluster.database import ClusterDatabase
from vectorforge.cluster.routing import HashRouter, KeyRouter, SemanticRouter, stable_hash

__all__ = ["ClusterDatabase", "HashRouter", "KeyRouter", "SemanticRouter", "ShardedCollection", "stable_hash"]
