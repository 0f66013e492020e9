"""The embedded database: a data folder of collections, or collections in memory.

Layout of a data folder::

    <root>/vectorforge.json               format marker
    <root>/.lock                          held (flock) by the process that has the folder open
    <root>/aliases.json                   alias -> collection (engine/aliases.py)
    <root>/collections/<name>/config.json
    <root>/collections/<name>/manifest.json
    <root>/collections/<name>/wal/*.log
    <root>/collections/<name>/segments/seg-NNNNNN/
    <root>/models/<name>/<version>/       registered models (vectorforge/models/registry.py)

Collection names are checked against [A-Za-z0-9_-]{1,64} before they touch the file system, and
snapshots are unpacked with tarfile's 'data' filter into a fresh folder, so nothing escapes the root.
"""

from __future__ import annotations

import fcntl
import json
import tarfile
import threading
import uuid
from pathlib import Path
from typing import IO, Any, Unpack

from pydantic import ValidationError

from vectorforge.api import CollectionSettings
from vectorforge.embed import (
    DEFAULT_EMBEDDER,
    EmbedderSource,
    add_embedder_source,
    get_embedder,
    remove_embedder_source,
)
from vectorforge.engine.aliases import ALIASES_FILE, AliasTable
from vectorforge.engine.collection import CONFIG_FILE, Collection
from vectorforge.engine.front import checked_token_encoder
from vectorforge.engine.named import parse_vectors, spec_of
from vectorforge.engine.restore_check import (
    RestoreLimits,
    check_collection,
    check_config,
    plain_member,
    sharded_member,
    unpack,
)
from vectorforge.engine.validate import check_n_probe
from vectorforge.errors import (
    AliasAlreadyExists,
    AliasNotFound,
    CollectionAlreadyExists,
    CollectionNotFound,
    ConflictError,
    CorruptionError,
    DataFolderLocked,
    DimensionMismatch,
    InvalidParameter,
    StorageError,
    UsageError,
    WriteNotDurable,
)
from vectorforge.index import index_class, new_index
from vectorforge.storage import fsio
from vectorforge.storage.fsio import fsync_dir, write_json_atomic
from vectorforge.types import CollectionConfig, Dense, IndexKind, Metric, Multi, Sharding, Sparse, check_name

__all__ = ["Database"]

FORMAT = {"format": 1, "kind": "vectorforge-data"}


class Database:
    """Collections by name. `vf.connect(path)` opens one on disk; `vf.connect()` makes one in memory."""

    def __init__(self, path: str | Path | None = None, *, sync: bool = True) -> None:
        self.path = Path(path).resolve() if path is not None else None
        self._sync = sync
        self._collections: dict[str, Collection] = {}
        self._lock = threading.RLock()
        self._lock_file: IO[bytes] | None = None
        self._models: EmbedderSource | None = None
        self._closed = False
        self.restore_limits = RestoreLimits()  # the server lowers them to a multiple of its upload limit
        self._aliases = AliasTable(None)
        if self.path is not None:
            self._open_folder(self.path)

    def _open_folder(self, root: Path) -> None:
        if root.exists() and not root.is_dir():
            raise StorageError(f"data folder {root} is a file; pass a folder path")
        fsio.make_dirs(root / "collections")
        marker = root / "vectorforge.json"
        if not marker.exists():
            write_json_atomic(marker, FORMAT)
        self._lock_file = open(root / ".lock", "a+b")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            self._lock_file.close()
            self._lock_file = None
            raise DataFolderLocked(
                f"data folder {root} is open in another process; close it there (or talk to its server)"
            ) from exc
        for leftover in (root / "collections").iterdir():
            if leftover.name.startswith("."):  # a create, restore or delete that a crash interrupted
                fsio.remove_tree(leftover)
        try:
            self._aliases = AliasTable(root / ALIASES_FILE)
        except BaseException:
            self._lock_file.close()
            self._lock_file = None
            raise
        from vectorforge.models import ModelRegistry

        # The folder's registered models become embedders ("name@version") while it is open.
        self._models = ModelRegistry(root / "models").resolve
        add_embedder_source(self._models)

    # ------------------------------------------------------------------ collections
    def create_collection(
        self,
        name: str,
        dim: int | None = None,
        metric: str | Metric = Metric.COSINE,
        index: str | IndexKind = IndexKind.HNSW,
        *,
        index_params: dict[str, Any] | None = None,
        embedder: str | None = None,
        max_segment_points: int | None = None,
        shards: int = 1,
        sharding: str = "hash",
        shard_key: str | None = None,
        n_probe: int | None = None,
        replicas: int = 1,
        write_quorum: str = "majority",
        sparse: dict[str, Any] | None = None,
        vectors: dict[str, Any] | None = None,
    ) -> Collection:
        """Create an empty collection.

        Args:
            name: 1-64 characters of [A-Za-z0-9_-].
            dim: vector length; taken from the embedder if one is given.
            metric: "cosine" (default), "dot" or "l2"; scores are higher-is-better for all three.
            index: "hnsw" (default), "flat" (exact) or "ivfpq" (compressed, for large collections).
            index_params: hnsw: M, ef_construction, ef; ivfpq: nlist, m, nbits, nprobe, rerank.
            embedder: a registered embedder name ("minilm") to enable `add(texts=...)` and `query(text)`.
            max_segment_points: rows per segment before it is sealed (default 250,000).
            shards: split the collection over this many shards (see docs/distributed.md).
            sharding: "hash" (by id), "key" (by the payload field `shard_key`) or "semantic" (by the
                nearest k-means centroid; a query probes its `n_probe` nearest shards).
            sparse: named sparse vectors beside the dense one, e.g. {"bm25": vf.Sparse()} (BM25 over
                the English analyzer); `add(texts)` fills them, `query(text, using="bm25")` and
                `query(text, mode="hybrid")` search them.
            vectors: named vectors instead of dim=/metric=/index=: name -> vf.Dense(dim, metric,
                index, index_params), vf.Sparse(...) or vf.Multi(dim) (token matrices scored by
                MaxSim), e.g. {"dense": vf.Dense(dim=384), "bm25": vf.Sparse()}; without a vf.Dense,
                a collection of sparse or multi vectors alone.
            replicas: copies of each shard; a write is acknowledged once `write_quorum` ("1",
                "majority", "all") of them have it durably.
        """
        return self._create(
            self._config_for(
                name,
                dim,
                metric,
                index,
                index_params=index_params,
                embedder=embedder,
                max_segment_points=max_segment_points,
                shards=shards,
                sharding=sharding,
                shard_key=shard_key,
                n_probe=n_probe,
                replicas=replicas,
                write_quorum=write_quorum,
                sparse=sparse,
                vectors=vectors,
            )
        )

    def get_or_create_collection(self, name: str, **settings: Unpack[CollectionSettings]) -> Collection:
        """The collection `name`, created with `settings` if there is none; an existing one whose
        settings differ from those given is refused (ConflictError, naming the setting)."""
        with self._lock:
            if not self.has_collection(name):
                return self._create(self._config_for(name, **settings))
            col = self.get_collection(name)
            given: CollectionSettings = {**settings}
            if not {"dim", "vectors", "embedder"} & set(given):  # what it cannot be made without
                if col.config.has_dense:
                    given["dim"] = col.config.dim
                else:  # its vectors, less the sparse ones given on their own
                    spec = col.config.vectors_spec()
                    given["vectors"] = {
                        k: v for k, v in spec.items() if k not in (settings.get("sparse") or {})
                    }
            expected = self._config_for(name, **given)  # a bad setting is refused here too
            check_same_settings(col.config, expected, set(settings))
            return col

    def _config_for(
        self,
        name: str,
        dim: int | None = None,
        metric: str | Metric = Metric.COSINE,
        index: str | IndexKind = IndexKind.HNSW,
        *,
        index_params: dict[str, Any] | None = None,
        embedder: str | None = None,
        max_segment_points: int | None = None,
        shards: int = 1,
        sharding: str = "hash",
        shard_key: str | None = None,
        n_probe: int | None = None,
        replicas: int = 1,
        write_quorum: str = "majority",
        sparse: dict[str, Any] | None = None,
        vectors: dict[str, Any] | None = None,
    ) -> CollectionConfig:
        """The config `create_collection` would make (InvalidParameter for a bad setting)."""
        check_name(name)
        dense_name, multi, extra_dense, has_dense = "", dict[str, Multi](), dict[str, Any](), True
        if vectors is not None:
            if dim is not None or index_params is not None or str(metric) != "cosine" or str(index) != "hnsw":
                raise InvalidParameter(
                    "give the dense vector's settings once: in vectors={name: vf.Dense(dim=..., metric=..., "
                    "index=...)} or as dim=/metric=/index=, not both"
                )
            dense_name, dense, extra_dense, named_sparse, multi = parse_vectors(vectors)
            if dense is None:  # sparse or multi vectors alone
                if embedder is not None:
                    raise InvalidParameter(
                        f"embedder {embedder!r} makes dense vectors, and vectors= has no vf.Dense: add "
                        "one, e.g. vectors={'dense': vf.Dense(dim=384), ...}, or leave the embedder out "
                        "(add(texts) still fills every sparse vector that has an analyzer)"
                    )
                if sharding == "semantic":
                    raise InvalidParameter(
                        "semantic sharding places points by their dense vector, and vectors= has no "
                        "vf.Dense: use sharding='hash' or 'key'"
                    )
                # a one-number zero row per point holds its place in the index
                has_dense, dense = False, Dense(dim=1, metric=Metric.L2, index=IndexKind.FLAT)
            if embedder is not None and dense.dim != get_embedder(embedder).info.dim:
                raise DimensionMismatch(
                    f"vf.Dense(dim={dense.dim}) but embedder {embedder!r} makes "
                    f"{get_embedder(embedder).info.dim}-dimensional vectors",
                    expected=get_embedder(embedder).info.dim,
                    got=dense.dim,
                )
            dim, metric, index, index_params = dense.dim, dense.metric, dense.index, dict(dense.index_params)
            if sparse is not None and not isinstance(sparse, dict):
                raise InvalidParameter(
                    'sparse= takes a dict of name -> vf.Sparse(...), e.g. {"bm25": vf.Sparse()}'
                )
            twice = sorted(set(sparse or {}) & set(vectors))
            if twice:
                raise InvalidParameter(f"vector name {twice[0]!r} is given twice, in vectors= and in sparse=")
            sparse = {**named_sparse, **(sparse or {})}
        config = self._make_config(name, dim, metric, index, index_params, embedder, max_segment_points)
        config = _with_sharding(config, shards, sharding, shard_key, n_probe, replicas, write_quorum)
        config = _with_named(config, dense_name, sparse, multi, extra_dense)
        for spec in config.multi.values():  # an encoder that exists here, of the vector's width
            if spec.encoder is not None:
                checked_token_encoder(spec.encoder, spec.dim)
        if not has_dense:
            config = config.model_copy(update={"has_dense": False})
        return config

    def _create(self, config: CollectionConfig) -> Collection:
        name = config.name
        with self._lock:
            self._check_open()
            if name in self._collections or (self.path and (self.path / "collections" / name).exists()):
                raise CollectionAlreadyExists(name=name)
            self._refuse_alias_name(name)
            if self.path is None:
                col = self._open_collection(config, None)
            else:
                final = self.path / "collections" / name
                tmp = self.path / "collections" / f".new-{name}-{uuid.uuid4().hex[:8]}"
                try:
                    tmp.mkdir()
                    write_json_atomic(tmp / CONFIG_FILE, json.loads(config.model_dump_json()))
                    fsio.replace(tmp, final)
                    fsync_dir(final.parent)
                    col = self._open_collection(config, final)
                except OSError as exc:  # a failed create leaves nothing behind
                    fsio.remove_tree(tmp)
                    fsio.remove_tree(final)
                    raise WriteNotDurable(f"collection {name!r} could not be created: {exc}") from exc
                except BaseException:  # e.g. replicas Ray cannot place: all or nothing
                    fsio.remove_tree(tmp)
                    fsio.remove_tree(final)
                    raise
            self._collections[name] = col
            return col

    @staticmethod
    def _make_config(
        name: str,
        dim: int | None,
        metric: str | Metric,
        index: str | IndexKind,
        index_params: dict[str, Any] | None,
        embedder: str | None,
        max_segment_points: int | None,
    ) -> CollectionConfig:
        try:
            metric = Metric(metric)
        except ValueError as exc:
            raise InvalidParameter(f"metric {metric!r} is unknown; use 'cosine', 'dot' or 'l2'") from exc
        try:
            index = IndexKind(index)
        except ValueError as exc:
            raise InvalidParameter(
                f"index {index!r} is unknown; use 'flat', 'hnsw', 'ivfflat' or 'ivfpq'"
            ) from exc
        info = None
        if embedder is not None:
            model = get_embedder(embedder)
            model.check()  # its files are here: refused now, not at the first add or query
            info = model.info
            if dim is not None and dim != info.dim:
                raise DimensionMismatch(
                    f"dim={dim} but embedder {embedder!r} makes {info.dim}-dimensional vectors; omit dim",
                    expected=info.dim,
                    got=dim,
                )
            dim = info.dim
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 65536:
            raise InvalidParameter(
                f"dim must be an integer from 1 to 65536, not {dim!r} (or pass embedder={DEFAULT_EMBEDDER!r})"
            )
        params = dict(index_params or {})
        new_index(index, dim, metric, params)  # validates the parameters now, not at the first write
        try:
            config = CollectionConfig(
                name=name, dim=dim, metric=metric, index=index, index_params=params, embedder=info
            )
            if max_segment_points is not None:
                config = CollectionConfig.model_validate(
                    {**config.model_dump(), "max_segment_points": max_segment_points}
                )
            return config
        except ValidationError as exc:
            raise InvalidParameter(f"invalid collection settings: {exc.errors()[0]['msg']}") from exc

    def get_collection(self, name: str) -> Collection:
        """The collection called `name`, or that the alias `name` points at; CollectionNotFound if
        there is none."""
        check_name(name)
        with self._lock:
            self._check_open()
            alias, name = name, self._aliases.resolve(name)
            col = self._collections.get(name)
            if col is not None:
                return col
            folder = self.path / "collections" / name if self.path else None
            if folder is None or not (folder / CONFIG_FILE).exists():
                if alias != name:  # only if its folder was removed by hand: deletes keep targets
                    raise CollectionNotFound(
                        f"alias {alias!r} points at collection {name!r}, which does not exist; "
                        f"switch_alias({alias!r}, ...) to another or delete_alias({alias!r})",
                        name=name,
                        alias=alias,
                    )
                raise CollectionNotFound(name=name)
            try:
                config = CollectionConfig.model_validate_json((folder / CONFIG_FILE).read_text())
            except ValidationError as exc:
                raise CorruptionError(f"config of collection {name!r} cannot be read: {exc}") from exc
            try:
                col = self._open_collection(config, folder)
            except OSError as exc:
                raise StorageError(f"collection {name!r} cannot be opened: {exc}") from exc
            self._collections[name] = col
            return col

    def _open_collection(self, config: CollectionConfig, folder: Path | None) -> Collection:
        """Build the object serving a collection; the cluster layer overrides this for shards."""
        if config.shards > 1 or config.replicas > 1:
            raise UsageError(
                f"collection {config.name!r} is sharded; open the database with vf.connect(), which "
                "serves shards"
            )
        return Collection(config, folder, sync=self._sync)

    def _unpack_restored(self, config: CollectionConfig, folder: Path) -> None:
        """Lay out an unpacked snapshot before it is opened; the cluster layer overrides this."""

    def list_collections(self) -> list[str]:
        """Names of all collections, sorted."""
        with self._lock:
            self._check_open()
            names = set(self._collections)
            if self.path is not None:
                names |= {
                    p.name
                    for p in (self.path / "collections").iterdir()
                    if not p.name.startswith(".") and (p / CONFIG_FILE).exists()
                }
            return sorted(names)

    def has_collection(self, name: str) -> bool:
        with self._lock:
            return check_name(name) in self._aliases or name in self.list_collections()

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its data; CollectionNotFound if there is none. Refused for an
        alias and for a collection that aliases point at (ConflictError, naming them)."""
        check_name(name)
        with self._lock:
            self._check_open()
            target = self._aliases.target(name)
            if target is not None:
                raise ConflictError(
                    f"{name!r} is an alias of collection {target!r}, not a collection: "
                    f"delete_alias({name!r}) removes the alias, delete_collection({target!r}) the "
                    "collection (once no alias points at it)",
                    name=name,
                    alias_of=target,
                )
            if name not in self.list_collections():
                raise CollectionNotFound(name=name)
            pointing = self._aliases.aliases_of(name)
            if pointing:
                shown = ", ".join(repr(a) for a in pointing)
                raise ConflictError(
                    f"collection {name!r} is the target of alias{'es' if len(pointing) > 1 else ''} "
                    f"{shown}: switch them to another collection (switch_alias) or delete them "
                    "(delete_alias) first",
                    name=name,
                    aliases=pointing,
                )
            col = self._collections.pop(name, None)
            if col is not None:
                col.close()
            if self.path is not None:
                folder = self.path / "collections" / name
                trash = self.path / "collections" / f".del-{name}-{uuid.uuid4().hex[:8]}"
                fsio.replace(folder, trash)
                fsync_dir(folder.parent)
                fsio.remove_tree(trash)

    def restore(self, path: str | Path, name: str | None = None) -> Collection:
        """Bring back a collection from a `Collection.snapshot` file, as `name` (default: its own name).

        The snapshot is unpacked within `restore_limits` and checked part against part
        (`engine/restore_check.py`) before it becomes a collection; the unpacking holds no lock,
        so other collections' requests go on meanwhile. All or nothing: a restore that fails
        leaves no collection and no files behind."""
        if self.path is None:
            raise UsageError("restore needs a persistent database: vf.connect('./path')")
        source = Path(path)
        if name is not None:
            check_name(name)  # before anything is unpacked
            with self._lock:
                self._refuse_alias_name(name)
            if self.has_collection(name):
                raise CollectionAlreadyExists(name=name)
        if not source.is_file():
            raise InvalidParameter(f"snapshot {source} does not exist or is not a file")
        self._check_open()
        tmp = self.path / "collections" / f".restore-{uuid.uuid4().hex[:8]}"
        try:
            config = self._unpack_snapshot(source, tmp, name)
        except BaseException:
            fsio.remove_tree(tmp)
            raise
        with self._lock:
            self._check_open()
            if config.name in self.list_collections() or config.name in self._aliases:
                fsio.remove_tree(tmp)
                self._refuse_alias_name(config.name)
                raise CollectionAlreadyExists(name=config.name)
            final = self.path / "collections" / config.name
            try:
                fsio.fsync_tree(tmp)  # every restored file durable before the rename publishes it
                fsio.replace(tmp, final)
                fsync_dir(final.parent)
            except OSError as exc:
                fsio.remove_tree(tmp)
                fsio.remove_tree(final)
                raise WriteNotDurable(f"the restore of {config.name!r} could not be written: {exc}") from exc
            try:
                return self.get_collection(config.name)
            except BaseException:
                self._collections.pop(config.name, None)
                trash = self.path / "collections" / f".del-{config.name}-{uuid.uuid4().hex[:8]}"
                fsio.replace(final, trash)
                fsio.remove_tree(trash)
                raise

    def _unpack_snapshot(self, source: Path, tmp: Path, name: str | None) -> CollectionConfig:
        """Unpack and check a snapshot into `tmp`; its config (named `name` if given)."""
        limits = self.restore_limits
        try:
            with tarfile.open(source, "r") as tar:
                first = tar.next()
                if first is None or first.name != CONFIG_FILE or not first.isfile() or first.size > 1 << 20:
                    raise InvalidParameter(
                        "this is not a vectorforge snapshot: it does not start with config.json"
                    )
                raw = tar.extractfile(first)
                assert raw is not None
                try:
                    config = CollectionConfig.model_validate_json(raw.read())
                except ValidationError as exc:
                    raise InvalidParameter(
                        f"snapshot's config.json is not valid: {exc.errors()[0]['msg']}"
                    ) from exc
                if name is not None:
                    config = config.model_copy(update={"name": name})
                elif self.has_collection(config.name):  # before anything is unpacked
                    with self._lock:
                        self._refuse_alias_name(config.name)
                    raise CollectionAlreadyExists(name=config.name)
                check_config(config)
                sharded = config.shards > 1 or config.replicas > 1
                tmp.mkdir()
                unpack(
                    tar,
                    tmp,
                    sharded_member if sharded else plain_member,
                    limits,
                    source.stat().st_size,
                    copies=config.replicas if sharded else 1,
                )
        except tarfile.TarError as exc:
            raise InvalidParameter(
                "this is not a vectorforge snapshot: the file is not a tar archive"
            ) from exc
        except OSError as exc:
            raise InvalidParameter(f"the snapshot could not be unpacked: {exc.strerror or exc}") from exc
        write_json_atomic(tmp / CONFIG_FILE, json.loads(config.model_dump_json()))
        if sharded:
            self._unpack_restored(config, tmp)
        else:
            check_collection(tmp, config, isolate=limits.isolate_readers)
        return config

    # ------------------------------------------------------------------ aliases
    def create_alias(self, alias: str, collection: str) -> None:
        """Name `collection` also `alias`; refused if `alias` is taken (AliasAlreadyExists, or
        ConflictError for a collection's name) or `collection` does not exist."""
        check_name(alias, "alias")
        with self._lock:
            self._check_open()
            if alias in self._aliases:
                raise AliasAlreadyExists(name=alias, collection=self._aliases.target(alias))
            if alias in self.list_collections():
                raise ConflictError(
                    f"{alias!r} is the name of a collection; an alias may not share it (they are one "
                    "namespace): choose another alias name",
                    name=alias,
                )
            self._aliases.set(alias, self._alias_target(alias, collection))

    def switch_alias(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection` instead, in one write; AliasNotFound if there is none."""
        check_name(alias, "alias")
        with self._lock:
            self._check_open()
            self._existing_alias(alias)
            self._aliases.set(alias, self._alias_target(alias, collection))

    def delete_alias(self, alias: str) -> None:
        """Remove `alias` (its collection stays); AliasNotFound if there is none."""
        check_name(alias, "alias")
        with self._lock:
            self._check_open()
            self._existing_alias(alias)
            self._aliases.remove(alias)

    def list_aliases(self) -> dict[str, str]:
        """Every alias and the collection it points at, sorted by alias."""
        with self._lock:
            self._check_open()
            return self._aliases.mapping()

    def _existing_alias(self, alias: str) -> None:
        if alias in self._aliases:
            return
        if alias in self.list_collections():
            raise AliasNotFound(
                f"{alias!r} is a collection, not an alias; create_alias(alias, {alias!r}) names it anew",
                name=alias,
            )
        raise AliasNotFound(name=alias)

    def _alias_target(self, alias: str, collection: str) -> str:
        """`collection`, if an alias may point at it: a collection that exists, not another alias."""
        check_name(collection)
        target = self._aliases.target(collection)
        if target is not None:  # chains would make a switch of one silently move the other
            raise InvalidParameter(
                f"{collection!r} is an alias (of {target!r}); point alias {alias!r} at a collection, "
                f"e.g. {target!r}",
                name=collection,
            )
        if collection not in self.list_collections():
            raise CollectionNotFound(name=collection)
        return collection

    def _refuse_alias_name(self, name: str) -> None:
        """CollectionAlreadyExists if `name` is an alias (a collection may not take its name)."""
        target = self._aliases.target(name)
        if target is not None:
            raise CollectionAlreadyExists(
                f"{name!r} is an alias of collection {target!r}; a collection may not take an alias's "
                f"name: choose another name, or delete_alias({name!r}) first",
                name=name,
                alias_of=target,
            )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Seal and close every open collection and release the data folder."""
        with self._lock:
            if self._closed:
                return
            for col in self._collections.values():
                col.close()
            self._collections.clear()
            if self._models is not None:
                remove_embedder_source(self._models)
            if self._lock_file is not None:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None
            self._closed = True

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "memory"
        return f"Database({where!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("the database is closed; open it again with vf.connect(...)")


def _with_sharding(
    config: CollectionConfig,
    shards: int,
    sharding: str,
    shard_key: str | None,
    n_probe: int | None,
    replicas: int = 1,
    write_quorum: str = "majority",
) -> CollectionConfig:
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1024:
        raise InvalidParameter(f"shards must be an integer from 1 to 1024, not {shards!r}")
    try:
        mode = Sharding(sharding)
    except ValueError as exc:
        raise InvalidParameter(f"sharding {sharding!r} is unknown; use 'hash', 'key' or 'semantic'") from exc
    if mode is Sharding.KEY and not shard_key:
        raise InvalidParameter("sharding='key' needs shard_key='<payload field>' (a tenant id, for example)")
    check_n_probe(n_probe, mode is Sharding.SEMANTIC, shards)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= 16:
        raise InvalidParameter(f"replicas must be an integer from 1 to 16, not {replicas!r}")
    if str(write_quorum) not in ("1", "majority", "all"):
        raise InvalidParameter(f"write_quorum must be '1', 'majority' or 'all', not {write_quorum!r}")
    update = {"shards": shards, "sharding": mode, "shard_key": shard_key, "n_probe": n_probe}
    return config.model_copy(update={**update, "replicas": replicas, "write_quorum": str(write_quorum)})


def _with_named(
    config: CollectionConfig,
    dense_name: str,
    sparse: dict[str, Any] | None,
    multi: dict[str, Any] | None,
    extra_dense: dict[str, Any] | None = None,
) -> CollectionConfig:
    """`config` with its named vectors, checked (the one copy of the rules: restores use it too)."""
    if not sparse and not multi and not dense_name and not extra_dense:
        return config
    if sparse and not isinstance(sparse, dict):
        raise InvalidParameter('sparse= takes a dict of name -> vf.Sparse(...), e.g. {"bm25": vf.Sparse()}')
    sparse_specs = {name: spec_of(spec, Sparse, f"sparse[{name!r}]") for name, spec in (sparse or {}).items()}
    multi_specs = {name: spec_of(spec, Multi, f"multi[{name!r}]") for name, spec in (multi or {}).items()}
    for spec in multi_specs.values():
        # a kind the registry has (InvalidParameter names the known), with parameters it takes
        index_class(spec.index, "multi")(spec.dim, spec.index_params)
    try:
        update = {"dense_name": dense_name, "sparse": sparse_specs, "multi": multi_specs}
        extra = {
            name: spec_of(spec, Dense, f"vectors[{name!r}]") for name, spec in (extra_dense or {}).items()
        }
        update["extra_dense"] = extra
        for name, dense in extra.items():
            if dense.index is not IndexKind.FLAT:
                raise InvalidParameter(
                    f"vectors[{name!r}]: a collection's second dense vector is searched exactly for now; "
                    f"give vf.Dense(dim={dense.dim}, index='flat') (the first takes any index)"
                )
        return CollectionConfig.model_validate({**config.model_dump(), **update})
    except ValidationError as exc:
        raise InvalidParameter(f"invalid named vectors: {exc.errors()[0]['msg']}") from exc


# Each setting of `create_collection` and the config fields it decides.
_SETTING_FIELDS: dict[str, tuple[str, ...]] = {
    "dim": ("dim",),
    "metric": ("metric",),
    "index": ("index",),
    "index_params": ("index_params",),
    "embedder": ("embedder",),
    "max_segment_points": ("max_segment_points",),
    "shards": ("shards",),
    "sharding": ("sharding",),
    "shard_key": ("shard_key",),
    "n_probe": ("n_probe",),
    "replicas": ("replicas",),
    "write_quorum": ("write_quorum",),
    "sparse": ("sparse",),
    "vectors": (
        "has_dense",
        "dense_name",
        "dim",
        "metric",
        "index",
        "index_params",
        "extra_dense",
        "sparse",
        "multi",
    ),
}


def check_same_settings(existing: CollectionConfig, expected: CollectionConfig, given: set[str]) -> None:
    """Refuse (ConflictError) an existing collection that differs from `expected` in a setting given."""
    for setting in sorted(given):
        for field in _SETTING_FIELDS.get(setting, ()):
            have, want = getattr(existing, field), getattr(expected, field)
            if have != want:
                raise ConflictError(
                    f"collection {existing.name!r} exists with {field}={_shown(have)}, not {_shown(want)}: "
                    "get it with get_collection(name), or give another name"
                )


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return repr(
            {k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else v) for k, v in value.items()}
        )
    return repr(value.value if hasattr(value, "value") else value)
