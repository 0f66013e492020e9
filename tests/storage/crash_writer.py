"""Writer process for test_crash.py: writes batches forever and prints each acknowledgement.

Usage: python crash_writer.py DATA_DIR ROUND SEED
Prints "ack up <batch>" after an upsert returns and "ack del <batch>" after a delete returns.
"""

from __future__ import annotations

import functools
import sys

import numpy as np

import vectorforge as vf

DIM = 8


MAX_BATCH = 40


@functools.lru_cache(maxsize=4096)
def batch_vectors(name: str) -> np.ndarray:
    """Deterministic vectors for a batch (first n rows used), so the checker can recompute them."""
    seed = int.from_bytes(name.encode(), "little") % (2**32)
    return np.random.default_rng(seed).standard_normal((MAX_BATCH, DIM)).astype(np.float32)


def main() -> None:
    data, rnd, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    db = vf.connect(data)
    if "c" in db.list_collections():
        col = db.get_collection("c")
    else:
        col = db.create_collection("c", dim=DIM, metric="l2", index="hnsw", max_segment_points=150)
    print("ready", flush=True)
    b = 0
    while True:
        name = f"r{rnd}b{b}"
        n = int(rng.integers(1, MAX_BATCH))
        ids = [f"{name}-{i}" for i in range(n)]
        col.upsert(ids, batch_vectors(name)[:n], [{"batch": name, "i": i} for i in range(n)])
        print(f"ack up {name} {n}", flush=True)
        if b % 5 == 4:
            victim = f"r{rnd}b{b - 3}"
            col.delete(filter={"must": [{"key": "batch", "match": victim}]})
            print(f"ack del {victim}", flush=True)
        if b % 11 == 10:
            col.optimize()
        b += 1


if __name__ == "__main__":
    main()
