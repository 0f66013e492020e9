"""`vf.connect(...)`: one entry point that returns a database, wherever it lives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from vectorforge.api import CollectionAPI, DatabaseAPI
from vectorforge.cluster import ClusterDatabase, ShardedCollection
from vectorforge.cluster.backend import Cluster
from vectorforge.engine import Collection, Database
from vectorforge.errors import InvalidParameter
from vectorforge.remote import RemoteCollection, RemoteDatabase

if TYPE_CHECKING:  # mypy checks that every implementation is the API, not only alike in name
    _collections: tuple[type[CollectionAPI], ...] = (Collection, ShardedCollection, RemoteCollection)
    _databases: tuple[type[DatabaseAPI], ...] = (Database, ClusterDatabase, RemoteDatabase)

__all__ = ["connect"]


def connect(
    path: str | Path | None = None,
    *,
    api_key: str | None = None,
    sync: bool = True,
    cluster: Cluster | None = None,
    **client_options: Any,
) -> DatabaseAPI:
    """Open a database.

    Args:
        path: None for an in-memory database; a folder for an embedded, persistent one (created if
            missing); an `http://` or `https://` URL for a running `vectorforge serve`.
        api_key: for a server that requires keys.
        sync: (embedded) fsync each write before acknowledging it (the default). False trades the
            last writes on a power loss for speed; a process crash still loses nothing.
        cluster: (embedded) where shards and replicas run: `vf.Cluster(backend="ray", address=...)`
            puts each replica in a Ray actor (see docs/distributed.md); the default runs them here.
        client_options: (remote) timeout, retries, verify; see `RemoteDatabase`.

    The three kinds have the same methods, arguments, results and exceptions.

    Example:
        >>> import vectorforge as vf
        >>> db = vf.connect()
        >>> col = db.create_collection("docs", dim=3, metric="cosine", index="flat")
    """
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        if cluster is not None:
            raise InvalidParameter("cluster= is for an embedded database; a server chooses its own backend")
        return RemoteDatabase(path, api_key, **client_options)
    if client_options:
        raise InvalidParameter(f"{sorted(client_options)} apply only to a server URL")
    return ClusterDatabase(path, sync=sync, cluster=cluster)
