"""Peer databases on the same vectors, same machine, one run: vectorforge, raw FAISS, Chroma, txtai,
LanceDB, Milvus Lite and qdrant-client's local mode.

Data: the shared clustered set (200k x 384, normalized, 1,000 queries); exact inner-product top-10 from
faiss.IndexFlatIP is the ground truth. Each system runs in its own subprocess (`--system NAME`), so its
peak RSS is its own and a crash or a hang ends only its row. Per system:

- insert: all vectors in the library's preferred batches, index built (LanceDB and Milvus Lite build
  it after the data is in: that step is included); a first search's one-off cost is recorded apart;
- a sweep of the search-time parameter (ef / nprobe) upward on the batch API until recall@10 >= 0.95;
  the first setting that reaches it is reported (or the best one, flagged, if none does);
- at that setting: single-query QPS (one search call per query, time-bounded for slow systems) and batch
  QPS (the library's batch search call over all queries).

Peak RSS is the child's VmHWM; "RSS over data" subtracts the RSS once the data set is loaded (before
the library is imported), so it counts the library, its index and its transient copies. The CPU time of
other processes while a system ran is recorded too: on a 2-core machine it skews that row.

Runs in its own venv (peers' dependencies stay out of the project's .venv), see
bench/requirements-peers.txt:

    .venv-peers/bin/python bench/peers.py                     # all systems, full set
    .venv-peers/bin/python bench/peers.py --n 20000           # quick development run
    .venv-peers/bin/python bench/peers.py --systems faiss,chroma
    .venv-peers/bin/python bench/peers.py --report            # re-print the last results as markdown
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may download a model
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chroma

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
RESULTS = REPO / "bench" / "results"
FULL_N = 200_000
DIM = 384
K = 10
TARGET = 0.95
EF_GRID = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
NPROBE_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 200
PEER_PACKAGES = (
    "vectorforge",
    "faiss-cpu",
    "numpy",
    "chromadb",
    "txtai",
    "hnswlib",
    "lancedb",
    "pyarrow",
    "pymilvus",
    "milvus-lite",
    "qdrant-client",
    "torch",
)


# ---------------------------------------------------------------------------------------------- data
def shared_path() -> Path:
    """$VECTORFORGE_SHARED, or ../shared next to the repository."""
    return Path(os.environ.get("VECTORFORGE_SHARED", REPO.parent / "shared")).resolve()


def dataset(n: int, data: str = "clustered") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base[:n], queries, exact top-K ids), cached in bench/.cache as .npy.

    The cache names match bench/common.py's for the full set; a smaller n is the first n rows of it.
    `data="real"`: the MiniLM chunks of SciFact and dbpedia that bench/quantized.py embeds (run it,
    or `common.real_embedding_set()`, first), with their first 1,000 queries.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    if data == "real":
        base = np.array(np.load(CACHE / "real-chunks28-base.npy")[:n], dtype=np.float32)
        queries = np.load(CACHE / "real-chunks28-queries.npy")[:1000]
        gt_file = CACHE / f"gt-real-chunks28-{len(base)}-{K}.npy"
        if gt_file.exists():
            return base, queries, np.load(gt_file)
        import faiss

        _, gt = faiss.knn(queries, base, K, metric=faiss.METRIC_INNER_PRODUCT)
        np.save(gt_file, gt)
        return base, queries, gt
    base_file = CACHE / f"clustered-{FULL_N}-base.npy"
    query_file = CACHE / f"clustered-{FULL_N}-queries.npy"
    if not base_file.exists() or not query_file.exists():
        sys.path.insert(0, str(shared_path() / "bench"))
        from clustered import clustered  # type: ignore[import-not-found]

        base, queries = clustered()
        np.save(base_file, base)
        np.save(query_file, queries)
    base = np.array(np.load(base_file, mmap_mode="r")[:n], dtype=np.float32)  # in RAM, not a memmap
    queries = np.load(query_file)
    name = f"clustered-{FULL_N}" if n == FULL_N else f"clustered-{FULL_N}-first{n}"
    gt_file = CACHE / f"gt-{name}-{K}.npy"
    if gt_file.exists():
        gt = np.load(gt_file)
    else:
        import faiss

        flat = faiss.IndexFlatIP(DIM)
        flat.add(base)
        _, gt = flat.search(queries, K)
        np.save(gt_file, gt)
    return base, queries, gt


def recall_at_k(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Mean fraction of the true top-K found among the returned top-K."""
    hits = sum(len(set(list(got)[:K]) & set(want.tolist())) for got, want in zip(found, truth, strict=True))
    return hits / (K * len(truth))


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


# -------------------------------------------------------------------------------------------- systems
class System:
    """One database under test. Subclasses build it, set the search-time parameter, and search."""

    label: ClassVar[str]
    index: ClassVar[str]
    param: ClassVar[str] = "ef"
    grid: ClassVar[tuple[int | None, ...]] = EF_GRID
    note: ClassVar[str] = ""
    modules: ClassVar[tuple[str, ...]] = ()  # imported before the insert clock starts

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.value: int | None = None

    def build(self, base: np.ndarray) -> dict[str, Any]:
        """Insert all of `base` (ids 0..n-1) and build the index; returns phase timings in seconds."""
        raise NotImplementedError

    def set_param(self, value: int | None) -> None:
        self.value = value

    def search_one(self, q: np.ndarray) -> list[int]:
        raise NotImplementedError

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the system holds (files, servers)."""


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class VectorForge(System):
    label = "vectorforge (in-memory)"
    index = "hnsw M=32 efC=200"
    note = "vf.connect(): in-memory, no WAL; upserts of 100,000"
    path: ClassVar[bool] = False
    modules = ("vectorforge",)
    kind: ClassVar[str] = "hnsw"
    index_params: ClassVar[dict[str, Any]] = {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    one_segment: ClassVar[bool] = False  # one sealed segment (an IVF trains when it is sealed)

    def build(self, base: np.ndarray) -> dict[str, Any]:
        import vectorforge as vf

        self.db = vf.connect(self.workdir / "vf") if self.path else vf.connect()
        settings = {"max_segment_points": len(base)} if self.one_segment else {}
        self.col = self.db.create_collection(
            "bench", dim=base.shape[1], metric="cosine", index=self.kind, index_params=self.index_params,
            **settings,
        )  # fmt: skip

        def insert() -> None:
            for i in range(0, len(base), 100_000):
                chunk = base[i : i + 100_000]
                self.col.upsert(ids=list(range(i, i + len(chunk))), vectors=chunk)
            if self.one_segment:
                self.col.flush()

        return {"insert_s": _timed(insert)}

    def search_one(self, q: np.ndarray) -> list[int]:
        hits = self.col.search(q, k=K, params={self.param: self.value}, with_payload=False)
        return [int(h.id) for h in hits]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        batch = self.col.search_batch(qs, k=K, params={self.param: self.value}, with_payload=False)
        return [[int(h.id) for h in hits] for hits in batch]

    def close(self) -> None:
        self.db.close()


class VectorForgeDisk(VectorForge):
    label = "vectorforge (persistent)"
    note = "vf.connect(dir): WAL + fsync per upsert; upserts of 100,000"
    path = True


class VectorForgeHNSWSQ8(VectorForge):
    label = "vectorforge (in-memory, hnsw sq8)"
    index = "hnsw M=32 efC=200, sq8 codes, re-scored (oversample 2)"
    index_params: ClassVar[dict[str, Any]] = {**VectorForge.index_params, "quantization": "sq8"}


class VectorForgeIVFSQ8(VectorForge):
    label = "vectorforge (in-memory, ivf sq8)"
    index = "ivfflat nlist~4*sqrt(n), sq8 codes, hnsw over the centroids, re-scored"
    note = "vf.connect(): one segment (max_segment_points = n) sealed by flush(), which trains the IVF"
    param = "nprobe"
    grid = NPROBE_GRID
    kind = "ivfflat"
    index_params: ClassVar[dict[str, Any]] = {"quantization": "sq8", "coarse": "hnsw"}
    one_segment = True


class RawFaiss(System):
    label = "raw FAISS"
    index = "IndexHNSWFlat M=32 efC=200"
    note = "index.add in 100,000s; index.search(q[None], 10) per query"
    modules = ("faiss",)

    def build(self, base: np.ndarray) -> dict[str, Any]:
        import faiss

        self.index_ = faiss.IndexHNSWFlat(base.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        self.index_.hnsw.efConstruction = HNSW_EF_CONSTRUCTION

        def insert() -> None:
            for i in range(0, len(base), 100_000):
                self.index_.add(base[i : i + 100_000])

        return {"insert_s": _timed(insert)}

    def set_param(self, value: int | None) -> None:
        super().set_param(value)
        self.index_.hnsw.efSearch = int(value or 16)

    def search_one(self, q: np.ndarray) -> list[int]:
        _, ids = self.index_.search(q[None], K)
        return ids[0].tolist()  # type: ignore[no-any-return]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        _, ids = self.index_.search(qs, K)
        return ids.tolist()  # type: ignore[no-any-return]


class Chroma(System):
    label = "Chroma (persistent)"
    index = "hnsw M=32 efC=200"
    note = (
        "PersistentClient; add() in batches of get_max_batch_size(). ef_search is read when the index "
        "is loaded (modify() alone leaves the loaded index as it was), so each ef is set with modify() and "
        "the client reopened"
    )
    modules = ("chromadb",)

    def build(self, base: np.ndarray) -> dict[str, Any]:
        import chromadb

        self.client = chromadb.PersistentClient(str(self.workdir / "chroma"))
        self.col = self.client.create_collection(
            "bench",
            embedding_function=None,
            configuration={
                "hnsw": {
                    "space": "ip",
                    "max_neighbors": HNSW_M,
                    "ef_construction": HNSW_EF_CONSTRUCTION,
                    "ef_search": EF_GRID[0],
                }
            },
        )
        self.loaded_ef = EF_GRID[0]
        step = self.client.get_max_batch_size()

        def insert() -> None:
            for i in range(0, len(base), step):
                chunk = base[i : i + step]
                self.col.add(ids=[str(j) for j in range(i, i + len(chunk))], embeddings=chunk)

        return {"insert_s": _timed(insert), "batch": float(step)}

    def set_param(self, value: int | None) -> None:
        import chromadb

        super().set_param(value)
        if value == self.loaded_ef:
            return
        self.col.modify(configuration={"hnsw": {"ef_search": int(value or 16)}})
        self.client.clear_system_cache()
        self.client = chromadb.PersistentClient(str(self.workdir / "chroma"))
        self.col = self.client.get_collection("bench")
        self.loaded_ef = value
        self.col.query(query_embeddings=np.zeros((1, DIM), np.float32) + 0.05, n_results=K, include=[])

    def search_one(self, q: np.ndarray) -> list[int]:
        found = self.col.query(query_embeddings=q[None], n_results=K, include=[])
        return [int(i) for i in found["ids"][0]]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        found = self.col.query(query_embeddings=qs, n_results=K, include=[])
        return [[int(i) for i in ids] for ids in found["ids"]]


class Txtai(System):
    label = "txtai"
    index = "hnsw (hnswlib) M=32 efC=200"
    note = 'Embeddings(method="external"): vectors given directly, no model; one index() call'
    backend: ClassVar[str] = "hnsw"
    modules = ("txtai",)

    def backend_config(self) -> dict[str, Any]:
        return {"m": HNSW_M, "efconstruction": HNSW_EF_CONSTRUCTION, "efsearch": EF_GRID[0]}

    def build(self, base: np.ndarray) -> dict[str, Any]:
        from txtai import Embeddings

        self.emb = Embeddings(
            {"method": "external", "backend": self.backend, self.backend: self.backend_config()}
        )
        return {"insert_s": _timed(lambda: self.emb.index((i, base[i], None) for i in range(len(base))))}

    def set_param(self, value: int | None) -> None:
        super().set_param(value)
        self.emb.config[self.backend]["efsearch"] = value

    def search_one(self, q: np.ndarray) -> list[int]:
        return [int(i) for i, _ in self.emb.search(q, K)]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        return [[int(i) for i, _ in hits] for hits in self.emb.batchsearch(qs, K)]


class TxtaiFaiss(Txtai):
    label = "txtai (default backend)"
    index = "faiss IVF{4*sqrt(n)},Flat"
    note = "txtai's default ANN: faiss IVF, cells chosen by txtai; nprobe swept"
    param = "nprobe"
    grid = NPROBE_GRID
    backend = "faiss"

    def backend_config(self) -> dict[str, Any]:
        return {"nprobe": NPROBE_GRID[0]}

    def set_param(self, value: int | None) -> None:
        self.value = value
        self.emb.config[self.backend]["nprobe"] = value


class LanceDB(System):
    label = "LanceDB"
    index = "IVF_HNSW_FLAT (1 partition) M=32 efC=200"
    note = "on disk (its only mode); tables of 100,000 rows, then create_index; nprobes=1"
    modules = ("lancedb", "lancedb.index", "pyarrow")

    def build(self, base: np.ndarray) -> dict[str, Any]:
        import lancedb
        import pyarrow as pa
        from lancedb.index import HnswFlat

        db = lancedb.connect(self.workdir / "lance")

        def table(start: int, chunk: np.ndarray) -> Any:
            ids = pa.array(np.arange(start, start + len(chunk), dtype=np.int64))
            vectors = pa.FixedSizeListArray.from_arrays(pa.array(chunk.ravel()), chunk.shape[1])
            return pa.table({"id": ids, "vector": vectors})

        def insert() -> None:
            for i in range(0, len(base), 100_000):
                chunk = table(i, base[i : i + 100_000])
                if i == 0:
                    self.table = db.create_table("bench", chunk)
                else:
                    self.table.add(chunk)

        def index() -> None:
            config = HnswFlat(
                distance_type="dot", num_partitions=1, m=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION
            )
            self.table.create_index("vector", config=config)

        insert_s = _timed(insert)
        return {"insert_s": insert_s, "index_s": _timed(index)}

    def _query(self, q: np.ndarray) -> Any:
        query = self.table.search(q).distance_type("dot").limit(K).nprobes(1)
        return query.ef(int(self.value or 16)).select(["id", "_distance"])

    def search_one(self, q: np.ndarray) -> list[int]:
        return self._query(q).to_arrow()["id"].to_pylist()  # type: ignore[no-any-return]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        found = self._query(qs).to_arrow()
        out: list[list[int]] = [[] for _ in range(len(qs))]
        for qi, pid in zip(found["query_index"].to_pylist(), found["id"].to_pylist(), strict=True):
            out[qi].append(pid)
        return out


class MilvusLite(System):
    label = "Milvus Lite"
    index = "HNSW M=32 efC=200 (faiss, per segment)"
    note = (
        "pymilvus MilvusClient on a local .db (milvus-lite 3: in-process gRPC server, segments of at most "
        "100,000 rows, each with its own faiss HNSW); inserts of 10,000, then flush, load, and a wait for "
        "the background index builds"
    )
    modules = ("pymilvus", "milvus_lite")

    def build(self, base: np.ndarray) -> dict[str, Any]:
        from pymilvus import DataType, MilvusClient

        self.client = MilvusClient(str(self.workdir / "milvus.db"))
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=base.shape[1])
        params = self.client.prepare_index_params()
        params.add_index(
            field_name="vec",
            index_type="HNSW",
            metric_type="IP",
            params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION},
        )
        self.client.create_collection("bench", schema=schema, index_params=params)

        def insert() -> None:
            for i in range(0, len(base), 10_000):
                rows = [{"id": j, "vec": base[j]} for j in range(i, min(len(base), i + 10_000))]
                self.client.insert("bench", rows)

        def index() -> None:
            self.client.flush("bench")
            self.client.load_collection("bench")
            self.segments = self._wait_for_indexes()

        insert_s = _timed(insert)
        index_s = _timed(index)
        return {"insert_s": insert_s, "index_s": index_s, "segments": self.segments}

    def _wait_for_indexes(self) -> list[tuple[int, str]]:
        """Wait until every segment has its HNSW index; returns (rows, index type) per segment.

        Milvus Lite compacts and builds indexes on a background thread after a flush, and until then
        searches those segments by brute force; describe_index reports "Finished" all along. No public
        call waits for it, so this drains the collection's (private) background queue.
        """
        from milvus_lite import server_manager_instance

        db = server_manager_instance._servers[os.path.abspath(self.workdir / "milvus.db")][1]
        col = db.get_collection("bench")
        for _ in range(100):
            col._wait_for_bg()
            segments = [s for s in col._segments_snapshot() if s.num_rows]
            if all("vec" in s.indexes for s in segments):
                return [(s.num_rows, type(s.indexes["vec"]).__name__) for s in segments]
        raise RuntimeError("Milvus Lite left segments without an index")

    def _search(self, data: Any) -> list[list[int]]:
        found = self.client.search(
            "bench",
            data=data,
            limit=K,
            search_params={"metric_type": "IP", "params": {"ef": int(self.value or 16)}},
            output_fields=["id"],
        )
        return [[int(hit["id"]) for hit in hits] for hits in found]

    def search_one(self, q: np.ndarray) -> list[int]:
        return self._search([q])[0]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        return self._search(list(qs))

    def close(self) -> None:
        from milvus_lite import server_manager_instance

        self.client.close()
        server_manager_instance.release_server(str(self.workdir / "milvus.db"))  # else it writes at exit


class QdrantLocal(System):
    label = "qdrant-client local"
    index = "none (local mode: exact scan)"
    note = 'QdrantClient(":memory:"); upserts of 10,000; no HNSW in local mode, no search parameter'
    param = "-"
    grid = (None,)
    modules = ("qdrant_client",)

    def build(self, base: np.ndarray) -> dict[str, Any]:
        from qdrant_client import QdrantClient, models

        self.models = models
        self.client = QdrantClient(":memory:")
        self.client.create_collection(
            "bench", vectors_config=models.VectorParams(size=base.shape[1], distance=models.Distance.DOT)
        )

        def insert() -> None:
            for i in range(0, len(base), 10_000):
                chunk = base[i : i + 10_000]
                batch = models.Batch(ids=list(range(i, i + len(chunk))), vectors=chunk.tolist())
                self.client.upsert("bench", points=batch, wait=True)

        return {"insert_s": _timed(insert)}

    def search_one(self, q: np.ndarray) -> list[int]:
        found = self.client.query_points("bench", query=q.tolist(), limit=K, with_payload=False)
        return [int(p.id) for p in found.points]

    def search_batch(self, qs: np.ndarray) -> list[list[int]]:
        requests = [self.models.QueryRequest(query=q.tolist(), limit=K, with_payload=False) for q in qs]
        found = self.client.query_batch_points("bench", requests=requests)
        return [[int(p.id) for p in res.points] for res in found]

    def close(self) -> None:
        self.client.close()


SYSTEMS: dict[str, type[System]] = {
    "vectorforge": VectorForge,
    "vectorforge-disk": VectorForgeDisk,
    "vectorforge-ivf-sq8": VectorForgeIVFSQ8,
    "vectorforge-hnsw-sq8": VectorForgeHNSWSQ8,
    "faiss": RawFaiss,
    "chroma": Chroma,
    "txtai": Txtai,
    "txtai-faiss": TxtaiFaiss,
    "lancedb": LanceDB,
    "milvus-lite": MilvusLite,
    "qdrant-local": QdrantLocal,
}
OURS = ("vectorforge", "vectorforge-disk", "vectorforge-ivf-sq8", "vectorforge-hnsw-sq8")
BASELINES = ("faiss",)


# ---------------------------------------------------------------------------------------------- child
def run_child(args: argparse.Namespace) -> None:
    """Measure one system; write its result (also after each phase, so a timeout keeps what was done)."""
    out_path = Path(args.child_out)
    cls = SYSTEMS[args.system]
    result: dict[str, Any] = {
        "system": args.system,
        "label": cls.label,
        "index": cls.index,
        "param": cls.param,
        "note": cls.note,
        "status": "running",
        "repo_commit": repo_commit(),  # vectorforge's code as this row ran it (a run takes an hour)
    }

    def save() -> None:
        result["peak_rss_self_mb"] = peak_rss_of(os.getpid())
        tmp = out_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        tmp.replace(out_path)

    base, queries, gt = dataset(args.n, args.data)
    workdir = Path(tempfile.mkdtemp(prefix=f"{args.system}-", dir=CACHE))
    try:
        system = cls(workdir)
        result["rss_after_data_mb"] = rss_mb()
        import_s = _timed(lambda: [importlib.import_module(m) for m in cls.modules])
        result["rss_after_import_mb"] = rss_mb()
        start = time.perf_counter()
        phases = system.build(base)
        result["insert_s"] = time.perf_counter() - start  # all vectors in and the index built
        system.set_param(cls.grid[0])
        first = _timed(lambda: system.search_one(queries[0]))  # one-off costs of a first search: apart
        result["phases"] = {"import_s": import_s, **phases, "first_query_s": first}
        result["rss_after_insert_mb"] = rss_mb()
        log(f"{args.system}: inserted in {result['insert_s']:.1f}s ({result['phases']})")
        save()

        sweep: list[dict[str, Any]] = []
        result["sweep"] = sweep
        chosen: dict[str, Any] | None = None
        for value in cls.grid:
            system.set_param(value)
            t0 = time.perf_counter()
            found = system.search_batch(queries)
            seconds = time.perf_counter() - t0
            step = {"value": value, "recall": recall_at_k(found, gt), "batch_s": seconds}
            sweep.append(step)
            setting = "exact" if value is None else f"{cls.param}={value}"
            log(f"{args.system}: {setting} recall@10={step['recall']:.4f} batch {seconds:.2f}s")
            save()
            if step["recall"] >= TARGET:
                chosen = step
                break
        reached = chosen is not None
        if chosen is None:
            chosen = max(sweep, key=lambda s: s["recall"])
        result.update(value=chosen["value"], recall=chosen["recall"], reached=reached)

        system.set_param(chosen["value"])
        batch_s = chosen["batch_s"]
        for _ in range(2):  # best of three where a batch is quick
            if batch_s > 5.0:
                break
            batch_s = min(batch_s, _timed(lambda: system.search_batch(queries)))
        result["batch_qps"] = len(queries) / batch_s

        for q in queries[: args.warmup]:
            system.search_one(q)
        latencies: list[float] = []
        single: list[list[int]] = []
        loop_start = time.perf_counter()
        for q in queries:
            t0 = time.perf_counter()
            single.append(system.search_one(q))
            latencies.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - loop_start
            if elapsed > args.single_budget and len(single) >= args.min_single:
                break
        elapsed = time.perf_counter() - loop_start
        ms = np.asarray(latencies) * 1000
        result.update(
            single_qps=len(single) / elapsed,
            single_queries=len(single),
            single_recall=recall_at_k(single, gt[: len(single)]),
            p50_ms=float(np.percentile(ms, 50)),
            p99_ms=float(np.percentile(ms, 99)),
            rss_end_mb=rss_mb(),
            status="ok",
        )
        log(
            f"{args.system}: single {result['single_qps']:.1f} QPS over {len(single)} queries, "
            f"batch {result['batch_qps']:.1f} QPS"
        )
        save()
        system.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------- parent
def peak_rss_of(pid: int) -> float:
    """VmHWM of a live process in MB (0 once it is gone).

    Not ru_maxrss: a child's ru_maxrss starts from its parent's peak at fork, so it is not the child's own.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0.0


def busy_cpu_s() -> float:
    """CPU-seconds all cores spent busy since boot (to tell how much else ran beside a system)."""
    import psutil

    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def wait_for_quiet(limit_s: float) -> float:
    """Wait until other processes leave the cores alone (< 20% of one core over 3 s), at most limit_s."""
    import psutil

    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        if psutil.cpu_percent(interval=3.0) * (os.cpu_count() or 1) < 20:
            break
    return time.perf_counter() - start


def run_system(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one system in a subprocess with a time limit; its result plus the parent's view of it."""
    logs = CACHE / "logs" / Path(args.out).stem  # one folder per result file: runs do not mix
    logs.mkdir(parents=True, exist_ok=True)
    out = logs / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--system", name, "--child-out", str(out)]
    cmd += ["--n", str(args.n), "--data", args.data, "--single-budget", str(args.single_budget)]
    cmd += ["--min-single", str(args.min_single), "--warmup", str(args.warmup)]
    log_file = logs / f"{name}.log"
    waited = wait_for_quiet(args.quiet_wait)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    start, busy0, own0 = time.perf_counter(), busy_cpu_s(), time.process_time()
    peak = 0.0
    with log_file.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        timed_out = False
        while True:
            peak = max(peak, peak_rss_of(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.perf_counter() - start > args.timeout and not timed_out:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group (its session)
            time.sleep(0.1)
    wall = time.perf_counter() - start
    others = busy_cpu_s() - busy0 - (usage.ru_utime + usage.ru_stime) - (time.process_time() - own0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"system": name}
    cls = SYSTEMS[name]
    for key, value in (("label", cls.label), ("index", cls.index), ("param", cls.param), ("note", cls.note)):
        result.setdefault(key, value)
    result["started"] = started
    result["wall_s"] = wall
    result["peak_rss_mb"] = max(peak, result.get("peak_rss_self_mb", 0.0))
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["other_processes_cpu_pct"] = max(0.0, 100 * others / wall)  # % of one core, while it ran
    result["waited_for_quiet_s"] = waited
    result["exit_code"] = proc.returncode
    result["log"] = str(log_file.relative_to(REPO))
    if timed_out:
        result["status"] = f"timeout after {args.timeout:.0f}s"
    elif result.get("status") != "ok":
        tail = log_file.read_text(errors="replace").strip().splitlines()[-3:]
        result["status"] = f"failed (exit {proc.returncode}): " + " | ".join(tail)[-300:]
    return result


def repo_commit() -> str:
    """HEAD of the repository, "+uncommitted" if vectorforge/ has changes."""
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "vectorforge"], capture_output=True, text=True
    ).stdout
    return commit.strip() + ("+uncommitted" if dirty.strip() else "")


def machine_info() -> dict[str, Any]:
    import faiss
    import psutil

    versions = {}
    for pkg in PEER_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    cpu_model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "vectorforge_commit": repo_commit(),
        "versions": versions,
    }


def ratios(results: list[dict[str, Any]]) -> dict[str, Any]:
    """vectorforge's QPS over the best peer database's, among peers that reached the recall target:
    the best of all, and the best with a graph (HNSW) index like vectorforge's; and over raw FAISS."""
    ok = [r for r in results if r.get("status") == "ok"]
    peers = [r for r in ok if r["system"] not in OURS + BASELINES and r.get("reached")]
    groups = {"best_peer": peers, "best_hnsw_peer": [r for r in peers if "hnsw" in r["index"].lower()]}
    out: dict[str, Any] = {}
    for ours in (r for r in ok if r["system"] in OURS):
        for metric in ("single_qps", "batch_qps"):
            for group, members in groups.items():
                if members:
                    best = max(members, key=lambda r: r[metric])
                    out[f"{ours['system']}/{metric}/{group}"] = {
                        "peer": best["system"],
                        "ratio": ours[metric] / best[metric],
                    }
            for base in (r for r in ok if r["system"] in BASELINES):
                out[f"{ours['system']}/{metric}/{base['system']}"] = {"ratio": ours[metric] / base[metric]}
    return out


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in results:
        ok = r.get("status") == "ok"
        value = r.get("value")
        setting = f"{r['param']}={value}" if value is not None else "exact"
        recall = f"{r['recall']:.3f}" if "recall" in r else "-"
        if "recall" in r and not r.get("reached"):
            recall += " (below 0.95!)"
        rows.append(
            [
                r["label"],
                r["index"],
                setting if ok else r.get("status", "?"),
                f"{r['insert_s']:.1f}" if "insert_s" in r else "-",
                f"{r['single_qps']:,.0f}" if ok else "-",
                f"{r['batch_qps']:,.0f}" if ok else "-",
                recall,
                f"{r['peak_rss_mb']:,.0f}" if "peak_rss_mb" in r else "-",
                f"{r['peak_rss_mb'] - r['rss_after_data_mb']:,.0f}" if "rss_after_data_mb" in r else "-",
                f"{r['other_processes_cpu_pct']:.0f}" if "other_processes_cpu_pct" in r else "-",
            ]
        )
    return rows


COLUMNS = [
    "system",
    "index",
    "search setting",
    "insert s",
    "single-query QPS",
    "batch QPS",
    "recall@10",
    "peak RSS MB",
    "RSS over data MB",
    "other CPU %",
]


def print_table(doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    cfg = doc["config"]
    data = cfg.get("data", "clustered")
    table = Table(title=f"Peers: {cfg['n']:,} x {cfg['dim']} {data}, {cfg['queries']:,} queries, k={K}")
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="left" if i < 3 else "right")
    for row in table_rows(doc["results"]):
        table.add_row(*row)
    console = Console(width=200)
    console.print(table)
    for key, value in doc["ratios"].items():
        console.print(f"{key}: {value['ratio']:.2f}x" + (f" ({value['peer']})" if "peer" in value else ""))


def markdown(doc: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 7) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(doc["results"])]
    return "\n".join(lines)


def run_parent(args: argparse.Namespace) -> None:
    names = args.systems.split(",") if args.systems else list(SYSTEMS)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise SystemExit(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    what = "the shared clustered set" if args.data == "clustered" else "the real MiniLM chunks"
    log(f"data: first {args.n:,} rows of {what} (cache: {CACHE.relative_to(REPO)})")
    _, queries, _ = dataset(args.n, args.data)  # build the cache once, before the children read it
    out = Path(args.out)
    results: list[dict[str, Any]] = []
    if args.merge and out.exists():  # re-run some systems, keep the other rows of the earlier run
        results = [r for r in json.loads(out.read_text())["results"] if r["system"] not in names]
    for name in names:
        log(f"{name}: running (limit {args.timeout:.0f}s)")
        result = run_system(name, args)
        results.append(result)
        log(
            f"{name}: {result['status']}, peak RSS {result['peak_rss_mb']:,.0f} MB, "
            f"{result['wall_s']:.0f}s in all"
        )
    doc = {
        "benchmark": "peers",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {
            "data": args.data,
            "n": args.n,
            "dim": DIM,
            "queries": len(queries),
            "k": K,
            "recall_target": TARGET,
            "ef_grid": EF_GRID,
            "nprobe_grid": NPROBE_GRID,
            "hnsw": {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
            "single_query_budget_s": args.single_budget,
            "min_single_queries": args.min_single,
            "timeout_s": args.timeout,
            "quiet_wait_s": args.quiet_wait,
        },
        "results": sorted(results, key=lambda r: list(SYSTEMS).index(r["system"])),
        "ratios": ratios(results),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print_table(doc)
    log(f"wrote {out}")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=FULL_N, help="base vectors (first n of the shared set)")
    ap.add_argument("--data", choices=("clustered", "real"), default="clustered", help="the vectors")
    ap.add_argument("--systems", help=f"comma-separated subset of: {', '.join(SYSTEMS)}")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per system before it is killed")
    ap.add_argument("--single-budget", type=float, default=30.0, help="seconds for the single-query loop")
    ap.add_argument("--min-single", type=int, default=50, help="single queries measured at least")
    ap.add_argument("--warmup", type=int, default=20, help="single queries run before timing")
    ap.add_argument(
        "--quiet-wait", type=float, default=120.0, help="seconds to wait for other load to stop per system"
    )
    ap.add_argument("--out", default=str(RESULTS / "peers.json"))
    ap.add_argument("--merge", action="store_true", help="keep --out's rows of the systems not run now")
    ap.add_argument(
        "--report",
        action="store_true",
        help="print the table of --out (and as markdown), recompute its ratios, exit",
    )
    ap.add_argument("--system", choices=sorted(SYSTEMS), help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.report:
        path = Path(args.out)
        doc = json.loads(path.read_text())
        doc["ratios"] = ratios(doc["results"])  # derived figures: recomputed from the measured rows
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print_table(doc)
        print(markdown(doc))
    elif args.system:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
