"""What each transport costs a single search, on this machine: the floor under bench/server_load.py.

One server process holds 50,000 x 384 points (HNSW, ef=64) and answers the same msgpack search body
with the same `run_search` the HTTP routes use, through: gRPC (grpcio, a generic unary handler, its
thread pool), and a length-prefixed msgpack frame over a raw TCP socket (asyncio with uvloop), the
search run on the event loop or in a thread. The client is this process, one query per call, against
the same search embedded here (best of 3, alternating). It decides which lean transport could reach
0.5x embedded, before one is built into the server.

    python bench/transport_floor.py
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import msgpack
import numpy as np
from common import REPO, clustered_set, console, print_table, write_result

import vectorforge as vf

sys.path.insert(0, str(REPO))

N, K, EF, QUERIES = 50_000, 10, 64, 500


def _handler(path: str) -> Callable[[bytes], bytes]:
    from vectorforge.server.auth import OPEN_ACCESS
    from vectorforge.server.routes_points import run_search
    from vectorforge.server.schemas import SearchBody
    from vectorforge.server.search_log import SearchLog

    db = vf.connect(path)
    log = SearchLog(db)

    def handle(request: bytes) -> bytes:
        body = SearchBody.model_validate(msgpack.unpackb(request, raw=False))
        return bytes(msgpack.packb(run_search(db, log, "load", body, OPEN_ACCESS), use_bin_type=True))

    return handle


def _grpc_server(path: str, port: int, ready: Any) -> None:
    import grpc

    handle = _handler(path)
    method = grpc.unary_unary_rpc_method_handler(lambda request, _context: handle(request))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        handlers=[grpc.method_handlers_generic_handler("vectorforge.Points", {"Search": method})],
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


def _socket_server(path: str, port: int, ready: Any, inline: bool) -> None:
    import uvloop

    handle = _handler(path)

    class Frames(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, b""

        def reply(self, answer: bytes) -> None:
            self.transport.write(struct.pack("<I", len(answer)) + answer)

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while len(self.buffer) >= 4:
                size = struct.unpack("<I", self.buffer[:4])[0]
                if len(self.buffer) < 4 + size:
                    return
                request, self.buffer = self.buffer[4 : 4 + size], self.buffer[4 + size :]
                if inline:
                    self.reply(handle(request))
                else:
                    done = asyncio.get_running_loop().run_in_executor(None, handle, request)
                    done.add_done_callback(lambda f: self.reply(f.result()))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Frames, "127.0.0.1", port)
        ready.set()
        await server.serve_forever()

    uvloop.run(main())


def _socket_client(port: int) -> Callable[[bytes], bytes]:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(n: int) -> bytes:
        got = b""
        while len(got) < n:
            got += conn.recv(n - len(got))
        return got

    def call(request: bytes) -> bytes:
        conn.sendall(struct.pack("<I", len(request)) + request)
        return read(struct.unpack("<I", read(4))[0])

    return call


def _qps(call: Callable[[bytes], Any], requests: list[bytes]) -> float:
    start = time.perf_counter()
    for request in requests:
        msgpack.unpackb(call(request), raw=False)
    return len(requests) / (time.perf_counter() - start)


def main() -> None:
    from tests.serverproc import free_port

    base, queries = clustered_set()
    base = base[:N]
    folder = tempfile.mkdtemp(prefix="vf-transport-")
    with vf.connect(folder) as db:
        col = db.create_collection("load", dim=base.shape[1], metric="dot", index="hnsw")
        for i in range(0, N, 10_000):
            col.upsert(list(range(i, i + 10_000)), base[i : i + 10_000])
        col.flush()
    body = {"k": K, "params": {"ef": EF}, "with_payload": False}
    requests = [bytes(msgpack.packb({"vector": q.tolist(), **body})) for q in queries[:QUERIES]]
    ctx = mp.get_context("spawn")
    found: dict[str, float] = {}
    for name in ("grpc", "socket, search in a thread", "socket, search on the loop"):
        ready, port = ctx.Event(), free_port()
        if name == "grpc":
            proc = ctx.Process(target=_grpc_server, args=(folder, port, ready))
        else:
            proc = ctx.Process(target=_socket_server, args=(folder, port, ready, "loop" in name))
        proc.start()
        ready.wait()
        if name == "grpc":
            import grpc

            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            call: Callable[[bytes], bytes] = channel.unary_unary("/vectorforge.Points/Search")
        else:
            call = _socket_client(port)
        found[name] = max(_qps(call, requests) for _ in range(3))
        console.print(f"{name}: {found[name]:,.0f} QPS")
        proc.kill()
        proc.join()
    with vf.connect(folder) as db:
        col = db.get_collection("load")
        handle = _handler_embedded(col)
        found["embedded"] = max(_qps(handle, requests) for _ in range(3))
    rows = [[name, qps, qps / found["embedded"]] for name, qps in found.items()]
    print_table(
        "single search QPS by transport (same body, same run_search)",
        ["transport", "QPS", "/ embedded"],
        rows,
    )
    write_result(
        "transport_floor",
        {
            "n": N,
            "ef": EF,
            "queries": QUERIES,
            "qps": found,
            "ratios": {k: v / found["embedded"] for k, v in found.items()},
        },
    )


def _handler_embedded(col: Any) -> Callable[[bytes], bytes]:
    """The embedded baseline: the same body decoded, searched in this process, encoded back."""

    def handle(request: bytes) -> bytes:
        data = msgpack.unpackb(request, raw=False)
        hits = col.search(
            np.asarray(data["vector"], dtype=np.float32), k=K, params={"ef": EF}, with_payload=False
        )
        return bytes(msgpack.packb({"hits": [{"id": h.id, "score": h.score} for h in hits]}))

    return handle


if __name__ == "__main__":
    main()
