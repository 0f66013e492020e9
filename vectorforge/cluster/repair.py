"""Anti-entropy: find the replicas of a shard that hold different points, and repair them.

Replicas that apply the same log in order hold the same points; this check is for what the log
cannot see (a replica damaged on disk, a folder written by a release that skipped entries, a bug).
As Weaviate's hash-tree repair and Cassandra's Merkle trees do, it compares summaries first and
points only where the summaries differ:

1. each replica that has applied every log entry summarizes its points into `BUCKETS` buckets (by
   a stable hash of the id): a count and a sum of per-point hashes (id, payload and vector bits);
2. for each bucket the summary most replicas agree on is the reference (ties: the leader's);
3. for the buckets where a replica differs, the ids and point hashes of that bucket are compared,
   and the replica is rewritten from a replica that holds the reference: points it lacks or holds
   differently are upserted, points it should not have are deleted. These writes go to the replica's
   own log (they are repairs, not new operations of the shard's log).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from vectorforge.cluster.routing import stable_hash
from vectorforge.types import PointId, Record, SparseVector

__all__ = ["BUCKETS", "Summary", "bucket_of", "diff", "point_hash", "summarize"]

BUCKETS = 256
_MASK = (1 << 64) - 1


def bucket_of(pid: PointId) -> int:
    return stable_hash(pid) % BUCKETS


def point_hash(record: Record) -> int:
    """A 64-bit hash of everything a point is: its id, its payload, and its vectors' bits (the dense
    one's float32, then each named one's, by name)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(json.dumps([record.id, record.payload], sort_keys=True).encode())
    if record.vector is not None:
        digest.update(np.asarray(record.vector, dtype=np.float32).tobytes())
    for name, value in sorted((record.vectors or {}).items()):
        digest.update(name.encode() + b"\0")
        if isinstance(value, SparseVector):
            digest.update(np.asarray(value.indices, dtype=np.int64).tobytes())
            digest.update(np.asarray(value.values, dtype=np.float32).tobytes())
        else:
            digest.update(np.asarray(value, dtype=np.float32).tobytes())
    return int.from_bytes(digest.digest(), "little")


@dataclass
class Summary:
    """Per bucket: (points, sum of point hashes mod 2**64)."""

    buckets: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)] * BUCKETS)

    @property
    def points(self) -> int:
        return sum(n for n, _ in self.buckets)


def summarize(records: Iterable[Record]) -> Summary:
    """One pass over a replica's points."""
    counts = [0] * BUCKETS
    sums = [0] * BUCKETS
    for record in records:
        b = bucket_of(record.id)
        counts[b] += 1
        sums[b] = (sums[b] + point_hash(record)) & _MASK
    return Summary(list(zip(counts, sums, strict=True)))


def hashes_in(records: Iterable[Record], buckets: set[int]) -> dict[PointId, int]:
    """The point hashes of the points that fall in `buckets`."""
    return {r.id: point_hash(r) for r in records if bucket_of(r.id) in buckets}


def diff(reference: dict[PointId, int], replica: dict[PointId, int]) -> tuple[list[PointId], list[PointId]]:
    """(ids to rewrite from the reference, ids to delete) so that `replica` equals `reference`."""
    rewrite = [pid for pid, h in reference.items() if replica.get(pid) != h]
    delete = [pid for pid in replica if pid not in reference]
    return rewrite, delete
