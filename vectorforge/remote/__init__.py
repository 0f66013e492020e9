"""The HTTP client: the same Database/Collection API over the network."""

from __future__ import annotations

from vectorforge.remote._client import RemoteCollection, RemoteDatabase

__all__ = ["RemoteCollection", "RemoteDatabase"]
