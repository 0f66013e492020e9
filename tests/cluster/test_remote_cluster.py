"""The server fronts sharded, replicated collections with the same HTTP API."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import vectorforge as vf
from tests.serverproc import start_server


def test_sharded_replicated_collection_over_http(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        with vf.connect(server.url) as db:
            col = db.create_collection("c", dim=4, metric="l2", index="flat", shards=3, replicas=2)
            info = col.info()
            assert info["shards"] == 3 and info["replicas"] == 2
            vecs = np.random.default_rng(0).standard_normal((60, 4)).astype(np.float32)
            col.upsert(list(range(60)), vecs, [{"i": i} for i in range(60)])
            assert col.session_ts > 0  # the client carries its session token: its last write
            token = col.session_ts
            col.delete(ids=[59])
            assert col.session_ts > token  # a delete moves it too
            col.upsert([59], vecs[59:60], [{"i": 59}])
            with vf.connect(server.url) as db2:  # another client: its own token
                other = db2.get_collection("c")
                assert other.session_ts == 0
                assert [r.id for r in other.get([59], consistency="session")] == [59]
            for level in ("strong", "bounded", "session", "eventual"):
                assert col.count(consistency=level) == 60
                assert col.search(vecs[7], k=1, consistency=level)[0].id == 7
            assert sum(info["points"] for info in [col.info()]) == 60
            try:
                col.count(consistency="linearizable")
            except vf.InvalidParameter as exc:
                assert "consistency" in str(exc)
            else:
                raise AssertionError("an unknown consistency level was accepted")
            snap = col.snapshot(tmp_path / "c.snapshot")  # every shard, downloaded as one file
            copy = db.restore(snap, name="c_copy")
            assert copy.info()["shards"] == 3 and copy.count() == col.count()
            col.reshard(5)  # over HTTP: the server moves the points, the client waits
            assert col.info()["shards"] == 5 and col.count() == 60
            assert col.search(vecs[7], k=1)[0].id == 7
            try:
                col.reshard(0)
            except vf.InvalidParameter as exc:
                assert "shards must be" in str(exc)
            else:
                raise AssertionError("reshard(0) was accepted")
    finally:
        assert server.stop() == 0
