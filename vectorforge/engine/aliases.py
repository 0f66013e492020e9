"""Collection aliases: a second name for a collection, moved to another in one write (Qdrant's and
Milvus's aliases; a blue/green switch of what `docs` means without the clients knowing).

The table is `<root>/aliases.json`, `{"format": 1, "aliases": {alias: collection}}`, replaced
atomically (`fsio.write_json_atomic`: a temporary file, fsync, rename, fsync of the folder); an
in-memory database keeps it in memory only. The owner (`Database`) changes it under its lock, so the
namespace rules (an alias is not a collection's name, points at a collection that exists) hold
between the check and the write.

A change is written first and published after: the new table replaces the old one in memory by one
reference assignment once the file is durable, so a reader sees the old target or the new one and
never none, and a write that fails leaves the old table in memory and on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

from vectorforge.errors import CorruptionError, InvalidName, StorageError, WriteNotDurable
from vectorforge.storage.fsio import UncertainCommit, write_json_atomic
from vectorforge.types import check_name

__all__ = ["ALIASES_FILE", "AliasTable"]

ALIASES_FILE = "aliases.json"
_FORMAT = 1


class AliasTable:
    """Alias -> collection name, persisted in `path` (None: in memory). Not locked: its owner is."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._targets: dict[str, str] = _load(path) if path is not None else {}

    def target(self, alias: str) -> str | None:
        """The collection `alias` points at, None if `alias` is not an alias."""
        return self._targets.get(alias)

    def resolve(self, name: str) -> str:
        """The collection that `name` means: an alias's target, or `name` itself."""
        return self._targets.get(name, name)

    def aliases_of(self, collection: str) -> list[str]:
        """The aliases that point at `collection`, sorted."""
        return sorted(a for a, c in self._targets.items() if c == collection)

    def mapping(self) -> dict[str, str]:
        """Every alias and its collection, sorted by alias (a copy)."""
        return dict(sorted(self._targets.items()))

    def __contains__(self, alias: object) -> bool:
        return alias in self._targets

    def set(self, alias: str, collection: str) -> None:
        """Point `alias` at `collection` (a new alias or a switch), durably, then in memory."""
        self._commit({**self._targets, alias: collection})

    def remove(self, alias: str) -> None:
        """Drop `alias`, durably, then in memory."""
        self._commit({a: c for a, c in self._targets.items() if a != alias})

    def _commit(self, new: dict[str, str]) -> None:
        if self.path is not None:
            try:
                _save(self.path, new)
            except UncertainCommit as exc:
                # The rename was made but not made durable: the disk may hold either table after a
                # power loss. Writing the old one back makes disk and memory agree again.
                try:
                    _save(self.path, self._targets)
                except OSError as again:
                    raise StorageError(
                        f"the alias change could not be made durable ({exc}), nor undone ({again}): "
                        "this process keeps the old aliases; after a restart aliases.json may hold "
                        "either, so check list_aliases() then"
                    ) from again
                raise WriteNotDurable(
                    f"the alias change could not be made durable ({exc}); nothing changed"
                ) from exc
            except OSError as exc:
                raise WriteNotDurable(f"the aliases could not be written ({exc}); nothing changed") from exc
        self._targets = new  # one assignment: readers see the old table or the new one, whole


def _save(path: Path, targets: dict[str, str]) -> None:
    write_json_atomic(path, {"format": _FORMAT, "aliases": targets})


def _load(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CorruptionError(f"{path.name} cannot be read: {exc}") from exc
    aliases = raw.get("aliases") if isinstance(raw, dict) and raw.get("format") == _FORMAT else None
    if not isinstance(aliases, dict) or not all(
        isinstance(a, str) and isinstance(c, str) for a, c in aliases.items()
    ):
        raise CorruptionError(f'{path.name} is not {{"format": 1, "aliases": {{alias: collection}}}}')
    try:
        for alias, collection in aliases.items():
            check_name(alias, "alias")
            check_name(collection)
    except InvalidName as exc:
        raise CorruptionError(f"{path.name} holds a name that is not allowed: {exc}") from exc
    return dict(aliases)
