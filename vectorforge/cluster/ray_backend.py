"""The `ray` backend: each replica is a Ray actor that owns an engine collection on its node.

`vf.connect(path, cluster=vf.Cluster(backend="ray", address=...))`. What runs where:

- this process (the coordinator) keeps each shard's `ReplicaSet`: the replication log, the clock,
  the leader and epoch, quorum counting and read routing, exactly as on the `local` backend;
- each replica is a `ReplicaActor` holding an engine collection in
  `shards/<i>/replicas/<j>[.<generation>]` on its node's disk;
- the R replicas of a shard are the R bundles of one placement group, STRICT_SPREAD when the cluster
  has at least R alive nodes (so losing a node costs each shard at most one replica), SPREAD otherwise.

A watcher thread asks Ray which nodes are alive every `health_interval` seconds. A replica on a
dead node is fenced at once (`ReplicaSet.lose`): Ray lets a removed node's actors answer for a few
seconds more, and nothing they say may count. The watcher then starts a new actor in the same
bundle; Ray re-places the bundle when a node can take it (a node is added), the new actor gets a
full copy of the leader (writes go on meanwhile) plus the log written since, and takes the lost
replica's place.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import socket
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vectorforge.extras import missing_extra

with missing_extra("a Ray cluster"):
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError
    from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from vectorforge.cluster.clock import HybridLogicalClock
from vectorforge.cluster.config import Cluster
from vectorforge.cluster.replicas import prepare_replica_folder, replica_config
from vectorforge.cluster.replicaset import ReplicaLost, ReplicaSet, ReplicaStore, StaleEpoch, WriteQuorum
from vectorforge.embed import Embedder
from vectorforge.engine import Collection
from vectorforge.engine.collection import checked_embedder
from vectorforge.engine.restore_check import RestoreLimits, plain_member, unpack
from vectorforge.errors import UnavailableError, UsageError
from vectorforge.index.sparse import CorpusStats
from vectorforge.storage import fsio
from vectorforge.storage.fsio import write_json_atomic
from vectorforge.types import CollectionConfig, Hit, PointId, Record, ScrollPage, UpdateResult

__all__ = ["ActorStore", "RayBackend", "ReplicaActor"]

logger = logging.getLogger(__name__)

GENERATIONS_FILE = "replicas.json"
HOW_TO_START = (
    "start one with `ray start --head --port=6379` (and `ray start --address=<head>:6379` on each "
    'worker; docs/distributed.md, "Running on Ray"), or `vectorforge cluster local --workers 3` for '
    "a drill on this machine"
)


class ReplicaActor:
    """One replica on one node: an engine collection and the epoch it has seen."""

    def __init__(self, config_json: str, folder: str, sync: bool) -> None:
        self.config = CollectionConfig.model_validate_json(config_json)
        self.folder = Path(folder)
        self.sync = sync
        prepare_replica_folder(self.config, self.folder)
        self.collection = Collection(replica_config(self.config), self.folder, sync=sync)
        self.epoch = int(self.collection.last_meta.get("epoch", 0))

    def node_id(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def meta(self) -> dict[str, Any]:
        return dict(self.collection.last_meta)

    def apply(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Apply a log entry; refuses one from an older epoch (a deposed coordinator's or leader's)."""
        epoch = int(entry["meta"]["epoch"])
        if epoch < self.epoch:
            raise StaleEpoch(f"replica at epoch {self.epoch} refuses a write of epoch {epoch}")
        self.epoch = epoch
        self.collection.apply_replicated(entry)
        return dict(self.collection.last_meta)

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A read or upkeep call on the collection (search_batch, get, count, scroll, info ...)."""
        return getattr(self.collection, method)(*args, **kwargs)

    def export(self) -> bytes:
        """The whole replica as one snapshot archive (for seeding a new replica)."""
        with tempfile.TemporaryDirectory(dir=self.folder.parent) as tmp:
            path = self.collection.snapshot(Path(tmp) / "copy.tar")
            return path.read_bytes()

    def load(self, data: bytes) -> dict[str, Any]:
        """Replace this replica's data with a snapshot from another replica."""
        self.collection.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:  # the restore's checked unpacking
            unpack(tar, self.folder, plain_member, RestoreLimits(), len(data))
        fsio.fsync_tree(self.folder)  # the copy is this replica's durable state from here on
        self.collection = Collection(replica_config(self.config), self.folder, sync=self.sync)
        self.epoch = max(self.epoch, int(self.collection.last_meta.get("epoch", 0)))
        return dict(self.collection.last_meta)

    def close(self) -> None:
        self.collection.close()


class ActorStore:
    """A `ReplicaStore` whose collection lives in a `ReplicaActor`; a lost actor raises ReplicaLost."""

    def __init__(self, actor: Any, config: CollectionConfig, node_id: str, timeout: float) -> None:
        self.actor = actor
        self.config = config
        self.node_id = node_id
        self.timeout = timeout
        self.last_meta: dict[str, Any] = self._wait(actor.meta.remote())
        self._embedder: Embedder | None = None

    def _wait(self, ref: Any) -> Any:
        try:
            return ray.get(ref, timeout=self.timeout)
        except RayTaskError as exc:  # an error the collection raised: the same class, unwrapped
            if isinstance(exc.cause, Exception):
                raise exc.cause from None
            raise
        except (RayActorError, GetTimeoutError) as exc:
            raise ReplicaLost(f"replica actor on node {self.node_id[:12]} is lost: {exc}") from exc

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._wait(self.actor.call.remote(method, args, kwargs))

    def begin_apply(self, entry: dict[str, Any]) -> Callable[[], object]:
        ref = self.actor.apply.remote(entry)

        def finish() -> object:
            self.last_meta = self._wait(ref)
            return self.last_meta

        return finish

    def apply_replicated(self, entry: dict[str, Any]) -> bool:
        self.begin_apply(entry)()
        return True

    def search_batch(self, vectors: Any, k: int = 10, **kwargs: Any) -> list[list[Hit]]:
        result: list[list[Hit]] = self._call("search_batch", vectors, k, **kwargs)
        return result

    def get(self, ids: Sequence[PointId], **kwargs: Any) -> list[Record]:
        result: list[Record] = self._call("get", list(ids), **kwargs)
        return result

    def sparse_stats(self, using: str, terms: Sequence[int]) -> CorpusStats:
        result: CorpusStats = self._call("sparse_stats", using, list(terms))
        return result

    def search_sparse(self, using: str, vector: Any, k: int = 10, **kwargs: Any) -> list[Hit]:
        result: list[Hit] = self._call("search_sparse", using, vector, k, **kwargs)
        return result

    def search_multi(self, using: str, query: Any, k: int = 10, **kwargs: Any) -> list[Hit]:
        result: list[Hit] = self._call("search_multi", using, query, k, **kwargs)
        return result

    def search_dense(self, using: str, query: Any, k: int = 10, **kwargs: Any) -> list[Hit]:
        result: list[Hit] = self._call("search_dense", using, query, k, **kwargs)
        return result

    def count(self, filter: dict[str, Any] | None = None, **kwargs: Any) -> int:
        return int(self._call("count", filter, **kwargs))

    def scroll(self, limit: int = 1000, cursor: str | None = None, **kwargs: Any) -> ScrollPage:
        result: ScrollPage = self._call("scroll", limit, cursor, **kwargs)
        return result

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("info")
        return result

    def upsert(
        self, ids: Sequence[PointId], vectors: Any, payloads: Sequence[dict[str, Any] | None] | None = None
    ) -> UpdateResult:
        """A direct write to this replica (anti-entropy repairs it), outside the shard's log."""
        result: UpdateResult = self._call(
            "upsert", list(ids), vectors, None if payloads is None else list(payloads)
        )
        return result

    def restore_points(
        self, ids: Sequence[PointId], vectors: Any, payloads: Sequence[dict[str, Any] | None] | None = None
    ) -> UpdateResult:
        """A direct write of points as a peer keeps them (anti-entropy), outside the shard's log."""
        result: UpdateResult = self._call(
            "restore_points", list(ids), vectors, None if payloads is None else list(payloads)
        )
        return result

    def delete(
        self, ids: Sequence[PointId] | None = None, filter: dict[str, Any] | None = None
    ) -> UpdateResult:
        result: UpdateResult = self._call("delete", None if ids is None else list(ids), filter)
        return result

    def recall(self, key: str) -> int | None:
        found = self._call("recall", key)
        return None if found is None else int(found)

    def remembered_keys(self) -> list[tuple[str, int]]:
        return [(str(k), int(v)) for k, v in self._call("remembered_keys")]

    def flush(self) -> None:
        self._call("flush")

    def optimize(self) -> bool:
        return bool(self._call("optimize"))

    def create_payload_index(self, field: str, schema: str = "keyword") -> None:
        self._call("create_payload_index", field, schema)

    def delete_payload_index(self, field: str) -> None:
        self._call("delete_payload_index", field)

    def embedder(self) -> Embedder:
        """Texts are embedded here, in the coordinator, not in the replica actors."""
        if self._embedder is None:
            self._embedder = checked_embedder(self.config)
        return self._embedder

    def export(self) -> bytes:
        data: bytes = self._wait(self.actor.export.remote())
        return data

    def snapshot(self, path: Path) -> Path:
        """The replica's snapshot archive, written here (on the coordinator) at `path`."""
        path.write_bytes(self.export())
        return path

    def load(self, data: bytes) -> None:
        self.last_meta = self._wait(self.actor.load.remote(data))

    def close(self) -> None:
        with contextlib.suppress(RayError):  # a lost actor's writes are in the log and on other replicas
            ray.get(self.actor.close.remote(), timeout=self.timeout)
        ray.kill(self.actor, no_restart=True)


@dataclass
class _Shard:
    """The Ray side of one shard: its placement group and each replica's folder generation."""

    replicas: ReplicaSet
    config: CollectionConfig
    folder: Path
    group: PlacementGroup
    generations: list[int]
    pending: dict[int, tuple[Any, Any, int]] = field(default_factory=dict)  # index: actor, ready, gen


def _alive_nodes() -> set[str]:
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return {str(n["NodeID"]) for n in nodes if n["Alive"]}


def replica_room(cpus_per_replica: float) -> list[int]:
    """How many replicas each alive node can hold by its CPUs (nodes that can hold none left out:
    a head started with no CPUs runs no replica, so it must not count towards STRICT_SPREAD)."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    room = [int(float(n["Resources"].get("CPU", 0)) // cpus_per_replica) for n in nodes if n["Alive"]]
    return [r for r in room if r > 0]


def connect(address: str | None, timeout: float) -> None:
    """Join the Ray cluster at `address` (None: start or reuse one here), or raise UnavailableError
    within about `timeout` seconds. Ray itself would retry a dead address for minutes."""
    if address is not None and address.startswith("ray://"):  # the CLI's form, in Python too
        address = address[len("ray://") :]
    target = address
    if address == "auto":  # Ray's own lookup: $RAY_ADDRESS, else the cluster last started here
        from ray._private.services import canonicalize_bootstrap_address

        try:
            target = canonicalize_bootstrap_address("auto")
        except ConnectionError as exc:
            raise UnavailableError(f"no Ray cluster to join at 'auto' ({exc}); {HOW_TO_START}") from None
    if target not in (None, "local"):
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise UnavailableError(f"Ray address {target!r} is not host:port; {HOW_TO_START}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(
                    (host.strip("[]"), int(port)), timeout=max(0.1, deadline - time.monotonic())
                ).close()
                break
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise UnavailableError(
                        f"no Ray cluster answers at {target} (tried for {timeout:g} s: {exc}); "
                        + HOW_TO_START
                    ) from None
                time.sleep(0.2)
    try:
        ray.init(address=address, namespace="vectorforge", log_to_driver=False)
    except ConnectionError as exc:  # address="auto" and no cluster here
        raise UnavailableError(f"no Ray cluster to join at {address!r} ({exc}); {HOW_TO_START}") from None


def _seed(source: ReplicaStore, target: ReplicaStore) -> None:
    assert isinstance(source, ActorStore) and isinstance(target, ActorStore)
    target.load(source.export())


class RayBackend:
    """Opens shards whose replicas are Ray actors, and replaces replicas that nodes take down."""

    def __init__(self, cluster: Cluster, sync: bool) -> None:
        self.cluster = cluster
        self.sync = sync
        self._started_ray = False
        if not ray.is_initialized():
            connect(cluster.address, cluster.connect_timeout)
            self._started_ray = True
        self._shards: list[_Shard] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="vf-ray-watch", daemon=True)
        self._watcher.start()

    # ------------------------------------------------------------------ opening
    def open_shard(
        self, config: CollectionConfig, folder: Path | None, clock: HybridLogicalClock
    ) -> ReplicaSet:
        if folder is None:
            raise UsageError(
                "the ray backend keeps each replica on its node's disk; open a data folder: "
                "vf.connect('./vf-data', cluster=vf.Cluster(backend='ray'))"
            )
        folder.mkdir(parents=True, exist_ok=True)
        generations = [0] * config.replicas
        if (folder / GENERATIONS_FILE).exists():
            generations = json.loads((folder / GENERATIONS_FILE).read_text())["generations"]
        cpus = self.cluster.cpus_per_replica
        room = replica_room(cpus)
        fixes = (
            f"add a node (`ray start --address=<head>:6379`), ask for fewer replicas, or give each "
            f"less CPU (vf.Cluster(cpus_per_replica=...), now {cpus:g})"
        )
        if sum(room) < config.replicas:  # Ray would wait for a node that may never come
            raise UnavailableError(
                f"Ray cannot place {config.replicas} replicas of {config.name!r}: its {len(room)} nodes "
                f"that can hold one have room for {sum(room)} at {cpus:g} CPU each; {fixes}"
            )
        strategy = "STRICT_SPREAD" if len(room) >= config.replicas else "SPREAD"
        if strategy == "SPREAD" and config.replicas > 1:
            logger.warning(
                "%s: %d nodes can hold a replica, fewer than its %d replicas: some share a node (SPREAD), "
                "and losing that node loses more than one copy",
                config.name,
                len(room),
                config.replicas,
            )
        group = placement_group([{"CPU": cpus}] * config.replicas, strategy=strategy)
        timeout = self.cluster.placement_timeout
        try:
            ray.get(group.ready(), timeout=timeout)
        except GetTimeoutError as exc:
            remove_placement_group(group)
            raise UnavailableError(
                f"Ray could not place {config.replicas} replicas of {config.name!r} ({strategy}, {cpus:g} "
                f"CPU each) within {timeout:g} s: other actors may hold the CPUs; {fixes}"
            ) from exc
        stores: list[ActorStore] = []
        try:
            for j in range(config.replicas):
                actor, ready = self._start(config, folder, group, j, generations[j])
                stores.append(ActorStore(actor, config, ray.get(ready), self.cluster.call_timeout))
            replicas = ReplicaSet(list(stores), folder, clock, WriteQuorum(config.write_quorum))
        except BaseException:  # nothing of this shard stays behind
            for store in stores:
                ray.kill(store.actor, no_restart=True)
            remove_placement_group(group)
            raise
        with self._lock:
            self._shards.append(_Shard(replicas, config, folder, group, generations))
        return replicas

    def _start(
        self, config: CollectionConfig, folder: Path, group: PlacementGroup, index: int, generation: int
    ) -> tuple[Any, Any]:
        """Start replica `index`'s actor in its bundle; returns it and a reference to its node id."""
        name = str(index) if generation == 0 else f"{index}.{generation}"
        actor_class = ray.remote(ReplicaActor).options(
            num_cpus=self.cluster.cpus_per_replica,
            max_concurrency=4,  # reads run beside a write; writes reach it one at a time
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=group, placement_group_bundle_index=index
            ),
        )
        actor = actor_class.remote(config.model_dump_json(), str(folder / "replicas" / name), self.sync)
        return actor, actor.node_id.remote()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ watching
    def _watch(self) -> None:
        while not self._stop.wait(self.cluster.health_interval):
            if not ray.is_initialized():  # the driver disconnected: nothing left to watch
                return
            try:
                self.check()
            except Exception:  # the watcher must outlive a failed round (Ray busy, a node flapping)
                logger.exception("ray backend: health check failed")

    def check(self) -> None:
        """One round: fence replicas on dead nodes, start their replacements, install ready ones."""
        alive = _alive_nodes()
        with self._lock:
            for shard in [s for s in self._shards if s.replicas.closed]:  # its collection was closed
                self._release(shard)
                self._shards.remove(shard)
            shards = list(self._shards)
        for shard in shards:
            for replica in list(shard.replicas.replicas):
                store = replica.collection
                if not replica.lost and isinstance(store, ActorStore) and store.node_id not in alive:
                    logger.warning("replica %d of %s: node lost, fenced", replica.index, shard.folder)
                    shard.replicas.lose(replica.index)
                if replica.lost and replica.index not in shard.pending:
                    if isinstance(store, ActorStore):  # frees its bundle; a removed node's actor may linger
                        ray.kill(store.actor, no_restart=True)
                    generation = shard.generations[replica.index] + 1
                    actor, ready = self._start(
                        shard.config, shard.folder, shard.group, replica.index, generation
                    )
                    shard.pending[replica.index] = (actor, ready, generation)
            for index, (actor, ready, generation) in list(shard.pending.items()):
                done, _ = ray.wait([ready], timeout=0)
                if done:
                    del shard.pending[index]
                    self._install(shard, index, actor, ray.get(ready), generation)

    def _install(self, shard: _Shard, index: int, actor: Any, node_id: str, generation: int) -> None:
        old = shard.replicas.replicas[index].collection
        store = ActorStore(actor, shard.config, node_id, self.cluster.call_timeout)
        try:
            shard.replicas.replace(index, store, _seed)
        except Exception:  # the leader was lost mid-copy, say: the next round starts over
            ray.kill(actor, no_restart=True)
            raise
        old_folder = (
            shard.folder
            / "replicas"
            / (str(index) if shard.generations[index] == 0 else f"{index}.{shard.generations[index]}")
        )
        shard.generations[index] = generation
        write_json_atomic(shard.folder / GENERATIONS_FILE, {"generations": shard.generations})
        if isinstance(old, ActorStore):
            ray.kill(old.actor, no_restart=True)
        shutil.rmtree(old_folder, ignore_errors=True)
        logger.warning("replica %d of %s: replaced on node %s", index, shard.folder, node_id[:12])

    # ------------------------------------------------------------------ closing
    def discard(self, replicas: ReplicaSet) -> None:
        """Give back a shard opened for a collection whose create failed later: its group, its actors."""
        with self._lock:
            for shard in [s for s in self._shards if s.replicas is replicas]:
                self._shards.remove(shard)
                for replica in shard.replicas.replicas:
                    if isinstance(replica.collection, ActorStore):
                        ray.kill(replica.collection.actor, no_restart=True)
                self._release(shard)

    @staticmethod
    def _release(shard: _Shard) -> None:
        """Stop what the replica set does not close itself: lost and pending actors, the group."""
        for replica in shard.replicas.replicas:
            if replica.lost and isinstance(replica.collection, ActorStore):
                ray.kill(replica.collection.actor, no_restart=True)
        for actor, _, _ in shard.pending.values():
            ray.kill(actor, no_restart=True)
        remove_placement_group(shard.group)

    def close(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()
        with self._lock:
            for shard in self._shards:
                self._release(shard)
            self._shards.clear()
        if self._started_ray:
            ray.shutdown()
