"""What a restore checks before a snapshot becomes a collection: the file from outside is hostile
until every part agrees with every other (Qdrant and Elasticsearch validate snapshots the same way).

- Unpacking (`unpack`): only the members a snapshot can hold (config, manifest, segment files; a
  sharded snapshot's router and shard archives), regular files and folders only, and within limits:
  total bytes (replicas included), member count, and bytes per byte of the snapshot file (a gzip
  bomb is stopped after its first members, before it fills the disk).
- Parts (`check_collection`): the config is one `create_collection` would accept; the manifest and
  every listed segment parse; each segment's ids, payloads, dead rows and tombstones are well
  formed; each index file is of the collection's kind, metric and dimension and holds one row per
  id. A mismatch is refused with `InvalidParameter` naming the part by its place in the snapshot,
  never by a path on the server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faiss
import msgpack
import numpy as np

from vectorforge.engine.named import load_named, named_file
from vectorforge.engine.validate import check_id
from vectorforge.errors import InvalidInputError, InvalidParameter, UsageError, VectorForgeError
from vectorforge.index import index_class, new_index
from vectorforge.storage import Manifest, read_points
from vectorforge.types import CollectionConfig, IndexKind

__all__ = ["RestoreLimits", "check_collection", "plain_member", "sharded_member", "unpack"]

_SEGMENT = r"seg-\d{6}"
_PLAIN = re.compile(
    rf"config\.json|manifest\.json|segments|segments/{_SEGMENT}|"
    rf"segments/{_SEGMENT}/(points\.msgpack|index\.faiss|vectors\.npy|(sparse|multi|dense)-[a-z][a-z0-9_]{{0,31}}\.npz|multi-[a-z][a-z0-9_]{{0,31}}\.tokens\.npy)"
)
_SHARDED = re.compile(r"config\.json|router\.npy|shards|shards/\d{1,4}\.tar")


@dataclass(frozen=True)
class RestoreLimits:
    """How much a restore may create. The server derives `max_bytes` from its upload limit."""

    max_bytes: int = 4 << 30  # bytes written in all, every replica's copy counted
    max_members: int = 10_000  # entries in one archive
    max_ratio: float = 20.0  # bytes written per byte of the snapshot file (beyond the first MiB)
    # Read index files in a child process: a file crafted to crash FAISS's reader kills the child,
    # not the server (the server turns it on; an embedded restore of one's own file need not).
    isolate_readers: bool = False


def plain_member(name: str) -> bool:
    return _PLAIN.fullmatch(name.rstrip("/")) is not None


def sharded_member(name: str) -> bool:
    return _SHARDED.fullmatch(name.rstrip("/")) is not None


def unpack(
    tar: tarfile.TarFile,
    dest: Path,
    allowed: Callable[[str], bool],
    limits: RestoreLimits,
    source_bytes: int,
    copies: int = 1,
) -> int:
    """Extract `tar` into `dest` member by member, refusing (InvalidParameter, before writing what
    would pass a limit) anything a snapshot cannot hold. `copies`: how many times the caller will
    lay these bytes out (replicas). Returns the bytes extracted once."""
    budget = min(limits.max_bytes, int(limits.max_ratio * source_bytes) + (1 << 20))
    total = 0
    for count, member in enumerate(tar, start=1):
        name = member.name
        if count > limits.max_members:
            raise InvalidParameter(f"snapshot holds more than {limits.max_members:,} entries")
        if (
            not (member.isfile() or member.isdir())
            or name.startswith(("/", ".."))
            or ".." in Path(name).parts
        ):
            raise InvalidParameter(f"snapshot holds an unsafe entry {name!r:.80}")
        if not allowed(name):
            raise InvalidParameter(f"snapshot holds {name!r:.80}, which no snapshot holds")
        total += member.size
        if total * copies > budget:
            raise InvalidParameter(
                f"snapshot unpacks to more than {budget:,} bytes"
                + (f" ({copies} replicas)" if copies > 1 else "")
                + "; this server restores at most that much (its upload limit sets it)"
            )
        tar.extract(member, dest, filter="data")
    return total


def check_config(config: CollectionConfig) -> None:
    """A restored config must be one that create_collection accepts."""
    from vectorforge.engine.database import _with_named, _with_sharding  # the one copy of the rules

    if not config.has_dense and (config.dim, config.index, config.embedder) != (1, IndexKind.FLAT, None):
        raise InvalidParameter(
            "snapshot's config.json: a collection without a dense vector has dim 1, a flat index, no embedder"
        )
    try:
        new_index(config.index, config.dim, config.metric, dict(config.index_params))
        _with_sharding(
            config,
            config.shards,
            config.sharding.value,
            config.shard_key,
            config.n_probe,
            config.replicas,
            config.write_quorum,
        )
        _with_named(
            config,
            config.dense_name,
            {name: spec.model_dump() for name, spec in config.sparse.items()},
            {name: spec.model_dump() for name, spec in config.multi.items()},
            {name: spec.model_dump() for name, spec in config.extra_dense.items()},
        )
    except (InvalidInputError, UsageError) as exc:
        raise InvalidParameter(f"snapshot's config.json is not valid: {exc}") from exc


def check_collection(folder: Path, config: CollectionConfig, where: str = "", isolate: bool = False) -> None:
    """Check an unpacked plain collection (or one replica of a shard) part against part; with
    `isolate`, index files are opened in a child process."""
    place = f"{where}/" if where else ""
    try:
        manifest = Manifest.load(folder / "manifest.json")
    except VectorForgeError as exc:
        raise InvalidParameter(f"snapshot's {place}manifest.json cannot be read") from exc
    if not all(isinstance(s, str) and re.fullmatch(_SEGMENT, s) for s in manifest.segments):
        raise InvalidParameter(f"snapshot's {place}manifest.json names segments that are not seg-NNNNNN")
    if len(set(manifest.segments)) != len(manifest.segments):
        raise InvalidParameter(f"snapshot's {place}manifest.json names a segment twice")
    for name in manifest.segments:
        segment = f"{place}segments/{name}"
        _check_segment(folder / "segments" / name, config, segment, manifest.checkpoint_seq, isolate)


def _check_segment(path: Path, config: CollectionConfig, place: str, checkpoint: int, isolate: bool) -> None:
    if not (path / "points.msgpack").is_file():
        raise InvalidParameter(f"snapshot lacks {place}/points.msgpack")
    try:
        data = read_points(path)
    except VectorForgeError as exc:
        raise InvalidParameter(f"snapshot's {place}/points.msgpack cannot be read") from exc
    n = len(data.ids) if isinstance(data.ids, list) else -1
    try:
        for pid in [*data.ids, *data.tombstones]:
            check_id(pid)
    except (VectorForgeError, TypeError) as exc:
        raise InvalidParameter(f"snapshot's {place} holds an invalid point id") from exc
    if not isinstance(data.payloads, list) or len(data.payloads) != n:
        raise InvalidParameter(f"snapshot's {place} has {n} ids but not as many payloads")
    for blob in data.payloads:
        if blob is not None and not (isinstance(blob, bytes) and _is_object(blob)):
            raise InvalidParameter(f"snapshot's {place} holds a payload that is not a JSON object")
    if not all(type(r) is int and 0 <= r < n for r in data.dead_rows):
        raise InvalidParameter(f"snapshot's {place} lists dead rows outside its {n} rows")
    if not isinstance(data.absent, list) or not all(type(r) is int and 0 <= r < n for r in data.absent):
        raise InvalidParameter(f"snapshot's {place} lists rows without the dense vector outside its {n} rows")
    if type(data.max_seq) is not int or not 0 <= data.max_seq <= max(checkpoint, 0):
        raise InvalidParameter(f"snapshot's {place} covers log positions its manifest does not")
    _check_index(path, config, place, n, isolate)
    if isolate:
        _check_named_faiss(path, config, place)
    try:
        load_named(config, path, n)
    except (VectorForgeError, OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidParameter(
            f"snapshot's {place}: named vectors that do not match its {n} rows ({exc})"
        ) from exc


def describe_index(path: Path, isolate: bool) -> tuple[str, int, int, int]:
    """(FAISS class, dimension, rows, metric) of an index file, read here or in a child process."""
    if not isolate:
        index = faiss.read_index(str(path))
        return type(index).__name__, int(index.d), int(index.ntotal), int(index.metric_type)
    done = subprocess.run(
        [sys.executable, "-c", _DESCRIBE, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the index reader failed (exit {done.returncode})")
    name, d, ntotal, metric = json.loads(done.stdout)
    return str(name), int(d), int(ntotal), int(metric)


def _check_named_faiss(path: Path, config: CollectionConfig, place: str) -> None:
    """The FAISS indexes serialized inside multi-vector files (a MUVERA graph: `faiss_arrays`),
    read first in a child process, as index.faiss is: a crafted one kills the child, not the server."""
    for name, spec in config.multi.items():
        keys = getattr(index_class(spec.index, "multi"), "faiss_arrays", ())
        file = path / named_file(config, name)
        if not keys or not file.is_file():
            continue  # a missing file is load_named's to report
        done = subprocess.run(
            [sys.executable, "-c", _DESERIALIZE, str(file), *keys],
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise InvalidParameter(f"snapshot's {place}/{file.name} holds an index that cannot be read")


_DESERIALIZE = (
    "import sys, faiss, numpy as np; d = np.load(sys.argv[1], allow_pickle=False); "
    "[faiss.deserialize_index(np.ascontiguousarray(d[k], np.uint8)) for k in sys.argv[2:] if k in d.files]"
)

_DESCRIBE = (
    "import json, sys, faiss; i = faiss.read_index(sys.argv[1]); "
    "print(json.dumps([type(i).__name__, i.d, i.ntotal, i.metric_type]))"
)


def _check_index(path: Path, config: CollectionConfig, place: str, n: int, isolate: bool) -> None:
    """The index files must be of the collection's kind, metric and dimension, one row per id."""
    kind, dim = config.index, config.dim
    cls = index_class(kind)
    probe = cls(dim, config.metric, dict(config.index_params))  # what this kind with these params keeps
    if probe.vectors_on_disk:  # a quantized hnsw, say
        try:
            vectors = np.load(path / "vectors.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InvalidParameter(f"snapshot's {place}/vectors.npy cannot be read") from exc
        if vectors.dtype != np.float32 or vectors.shape != (n, dim):
            raise InvalidParameter(
                f"snapshot's {place}/vectors.npy holds {vectors.dtype} {tuple(vectors.shape)}; "
                f"the config and ids say float32 ({n}, {dim})"
            )
        if not (path / "index.faiss").exists():
            return  # an IVF segment too small to train is searched exactly
    elif not (path / "index.faiss").is_file():
        raise InvalidParameter(f"snapshot lacks {place}/index.faiss")
    try:
        found, d, ntotal, metric = describe_index(path / "index.faiss", isolate)
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
        raise InvalidParameter(f"snapshot's {place}/index.faiss cannot be read") from exc
    expected_metric = probe.stored_metric
    if found not in cls.faiss_types:
        raise InvalidParameter(
            f"snapshot's {place}/index.faiss is a {found}; a {kind.value} index holds "
            f"{' or '.join(cls.faiss_types)}"
        )
    if d != dim:
        raise InvalidParameter(f"snapshot's {place}/index.faiss has dimension {d}; the config says {dim}")
    if metric != expected_metric:
        raise InvalidParameter(
            f"snapshot's {place}/index.faiss uses another metric than {config.metric.value}"
        )
    if ntotal != n:
        raise InvalidParameter(f"snapshot's {place}/index.faiss holds {ntotal} rows for {n} ids")


def _is_object(blob: bytes) -> bool:
    try:
        return isinstance(msgpack.unpackb(blob, raw=False), dict)
    except (ValueError, msgpack.UnpackException):
        return False
