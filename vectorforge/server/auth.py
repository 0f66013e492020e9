"""API keys: roles, collection scopes, hashed storage, constant-time checks.

A key looks like `vf_<id>_<secret>`. The server stores only sha256(key) with the key's id, role and
optional list of collections, in `<data>/keys.json` (mode 0600), and re-reads the file when it
changes, so `vectorforge keys create|revoke` takes effect on a running server.

Roles: `admin` may do everything; `read-write` may read and write points; `read-only` may read.
Managing collections (create, delete, snapshot, restore) is for admins. A key limited to some
collections gets 403 for any other collection whether or not it exists, and sees only its own in
`list_collections`, so it cannot learn that others exist.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from vectorforge.errors import AuthenticationError, InvalidParameter, NotFoundError, PermissionDenied
from vectorforge.storage.fsio import write_atomic
from vectorforge.types import check_name

__all__ = ["ApiKey", "KeyStore", "Principal", "Role"]

KEYS_FILE = "keys.json"


class Role(StrEnum):
    ADMIN = "admin"
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    MANAGE = "manage"


_ALLOWED = {
    Role.ADMIN: {Action.READ, Action.WRITE, Action.MANAGE},
    Role.READ_WRITE: {Action.READ, Action.WRITE},
    Role.READ_ONLY: {Action.READ},
}


@dataclass
class ApiKey:
    """A stored key: never the key itself, only its hash."""

    id: str
    sha256: str
    role: Role
    collections: list[str] | None = None
    created: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class Principal:
    """Who is asking: a role and, optionally, the only collections it may touch."""

    role: Role
    collections: frozenset[str] | None = None
    key_id: str | None = None

    def may_see(self, collection: str) -> bool:
        return self.collections is None or collection in self.collections

    def require(self, action: Action, collection: str | None = None) -> None:
        """Raise PermissionDenied unless this principal may do `action` (on `collection`)."""
        if collection is not None and not self.may_see(collection):
            # The same answer whether or not the collection exists: a scoped key learns nothing.
            raise PermissionDenied(f"this API key has no access to collection {collection!r}")
        if action not in _ALLOWED[self.role]:
            raise PermissionDenied(f"this API key's role {self.role.value!r} may not {action.value}")


OPEN_ACCESS = Principal(Role.ADMIN)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The keys of one data folder."""

    def __init__(self, data: Path) -> None:
        self.path = data / KEYS_FILE
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._keys: dict[str, ApiKey] = {}

    def _load(self) -> dict[str, ApiKey]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                self._keys, self._mtime = {}, None
                return self._keys
            if mtime != self._mtime:
                raw = json.loads(self.path.read_text())
                self._keys = {k["id"]: ApiKey(**{**k, "role": Role(k["role"])}) for k in raw}
                self._mtime = mtime
            return self._keys

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, ApiKey]]:
        """The keys, read fresh under a file lock that every process respects, for one change:
        two `keys create` at once must not lose one of the keys."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(KEYS_FILE + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            with self._lock:
                self._mtime = None  # another process may have written within our mtime's resolution
            yield dict(self._load())

    def _save(self, keys: dict[str, ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps([asdict(k) for k in keys.values()], indent=1).encode())
        os.chmod(self.path, 0o600)

    def entries(self) -> list[ApiKey]:
        """All stored keys."""
        return [*self._load().values()]

    def __bool__(self) -> bool:
        return bool(self._load())

    @property
    def required(self) -> bool:
        """Keys are required once any key has existed: revoking the last one does not reopen the
        server to anonymous admins. Only `turn_off` (`vectorforge keys off`) does, on purpose."""
        return self.path.exists()

    def turn_off(self) -> None:
        """Let a loopback server answer without keys again; refused while a key exists."""
        with self._editing() as keys:
            if keys:
                raise InvalidParameter(
                    f"{len(keys)} API keys exist; revoke them first (`vectorforge keys list` shows them)"
                )
            self.path.unlink(missing_ok=True)

    def create(self, role: str, collections: list[str] | None = None) -> tuple[str, ApiKey]:
        """A new key; the returned string is shown once and never stored."""
        try:
            parsed = Role(role)
        except ValueError as exc:
            raise InvalidParameter(f"role {role!r} is unknown; use admin, read-write or read-only") from exc
        scope = [check_name(c) for c in collections] if collections else None
        key_id = secrets.token_hex(4)
        key = f"vf_{key_id}_{secrets.token_urlsafe(24)}"
        entry = ApiKey(key_id, _hash(key), parsed, scope)
        with self._editing() as keys:
            keys[key_id] = entry
            self._save(keys)
        return key, entry

    def revoke(self, key_id: str) -> None:
        with self._editing() as keys:
            if key_id not in keys:
                raise NotFoundError(f"no API key with id {key_id!r}; `vectorforge keys list` shows them")
            del keys[key_id]
            self._save(keys)

    def authenticate(self, key: str | None) -> Principal:
        """The principal for `key`; AuthenticationError if it is missing or unknown."""
        if not key:
            raise AuthenticationError("this server requires an API key: send 'Authorization: Bearer <key>'")
        parts = key.split("_")
        entry = self._load().get(parts[1]) if len(parts) >= 3 and parts[0] == "vf" else None
        # Compare hashes in constant time, and hash even when the id is unknown, so timing says nothing.
        expected = entry.sha256 if entry else _hash("vf_unknown_key")
        if not hmac.compare_digest(_hash(key), expected) or entry is None:
            raise AuthenticationError("unknown or revoked API key")
        return Principal(entry.role, frozenset(entry.collections) if entry.collections else None, entry.id)
