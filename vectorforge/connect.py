"""`vf.connect(...)`: one entry point that returns a database, wherever it lives."""

from __future__ import annotations

from pathlib import Path

from vectorforge.engine import Database
from vectorforge.errors import InvalidParameter

__all__ = ["connect"]


def connect(path: str | Path | None = None, *, sync: bool = True) -> Database:
    """Open a database.

    Args:
        path: None for an in-memory database; a folder for an embedded, persistent one (created if
            missing). `http://host:port` URLs (a running `vectorforge serve`) arrive with the server.
        sync: fsync each write before acknowledging it (the default). False trades durability of the
            last writes on a power loss for speed; a process crash still loses nothing.

    Example:
        >>> import vectorforge as vf
        >>> db = vf.connect()
        >>> col = db.create_collection("docs", dim=3, metric="cosine", index="flat")
    """
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        raise InvalidParameter(
            "remote databases (http://...) are not available in this version; "
            "open the data folder directly with vf.connect('./vf-data')"
        )
    return Database(path, sync=sync)
