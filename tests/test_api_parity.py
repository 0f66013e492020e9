"""The embedded, clustered and remote objects expose the same methods with the same parameters."""

from __future__ import annotations

import inspect

import pytest

import vectorforge as vf
from vectorforge.cluster import ClusterDatabase, ShardedCollection
from vectorforge.remote import RemoteCollection, RemoteDatabase

COLLECTION_METHODS = [
    "upsert",
    "delete",
    "get",
    "count",
    "scroll",
    "search",
    "search_batch",
    "add",
    "query",
    "add_pages",
    "query_pages",
    "flush",
    "optimize",
    "repair",
    "reshard",
    "info",
    "snapshot",
]
DATABASE_METHODS = [
    "create_collection",
    "get_collection",
    "list_collections",
    "has_collection",
    "delete_collection",
    "restore",
    "create_alias",
    "switch_alias",
    "delete_alias",
    "list_aliases",
    "close",
]


def _params(cls: type, name: str) -> list[tuple[str, object, object]]:
    sig = inspect.signature(getattr(cls, name))
    return [(p.name, p.kind, p.default) for p in sig.parameters.values() if p.name != "self"]


@pytest.mark.parametrize("method", COLLECTION_METHODS)
@pytest.mark.parametrize("other", [RemoteCollection, ShardedCollection])
def test_collection_methods_match(method: str, other: type) -> None:
    if method == "query":  # in-process queries also take an explicit embedder to check against
        embedded = [p[0] for p in _params(vf.Collection, method) if p[0] != "embedder"]
        theirs = [p[0] for p in _params(other, method) if p[0] != "embedder"]
        assert embedded == theirs
        return
    assert _params(other, method) == _params(vf.Collection, method)


@pytest.mark.parametrize("method", DATABASE_METHODS)
@pytest.mark.parametrize("other", [RemoteDatabase, ClusterDatabase])
def test_database_methods_match(method: str, other: type) -> None:
    assert _params(other, method) == _params(vf.Database, method)


def test_exported_names_are_sorted_and_present() -> None:
    assert vf.__all__ == sorted(vf.__all__, key=str.lower) or vf.__all__ == sorted(vf.__all__)
    for name in vf.__all__:
        assert hasattr(vf, name), name
