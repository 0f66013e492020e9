"""A writer that dies halfway through moving an id to another shard (for test_sharding_faults.py).

Usage: python mover.py <data folder>. Key-sharded collection "k" (2 shards): id 7 is written under
tenant "a", then moved to tenant "b" (another shard); the process dies (os._exit) at the first disk
write of the old shard's delete, after the new shard has the point.
"""

from __future__ import annotations

import sys

import numpy as np

import vectorforge as vf
from vectorforge.cluster import ShardedCollection
from vectorforge.storage import fsio

db = vf.connect(sys.argv[1])
col = db.create_collection("k", dim=4, index="flat", shards=2, sharding="key", shard_key="tenant")
assert isinstance(col, ShardedCollection)
tenants = {}
for name in ("a", "b", "c", "d", "e"):
    shard = int(col.router.place([0], np.zeros((1, 4)), [{"tenant": name}])[0])
    tenants.setdefault(shard, name)
old_shard, new_shard = 0, 1
col.upsert([7], np.ones((1, 4), dtype="float32"), [{"tenant": tenants[old_shard], "v": 1}])
plan = fsio.FaultPlan("write", 1, where=f"/shards/{old_shard}/", crash=True)
with fsio.inject(plan):
    col.upsert([7], np.ones((1, 4), dtype="float32"), [{"tenant": tenants[new_shard], "v": 2}])
print("the crash never came", flush=True)
sys.exit(3)
