"""API keys: roles, collection scopes, hashed storage, constant-time checks.

A key looks like `vf_<id>_<secret>`. The server stores only sha256(key) with the key's id, role and
optional list of collections, in `<data>/keys.json` (mode 0600), and re-reads the file when it
changes, so `vectorforge keys create|revoke` takes effect on a running server.

Roles: `admin` may do everything; `read-write` may read and write points; `read-only` may read.
Managing collections (create, delete, snapshot, restore) is for admins. A key limited to some
collections gets 403 for any other collection whether or not it exists, and sees only its own in
`list_collections`, so it cannot learn that others exist.

No key store locks its owner out: the first key is an admin key unless another role is asked for,
a key that would leave the store without an unscoped admin key is refused unless `allow_no_admin`,
and so is revoking the last admin key while other keys remain.
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


def _is_admin(entry: ApiKey) -> bool:
    """An admin key for every collection (a scoped admin cannot manage the others)."""
    return entry.role is Role.ADMIN and not entry.collections


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

    def create(
        self, role: str | None = None, collections: list[str] | None = None, *, allow_no_admin: bool = False
    ) -> tuple[str, ApiKey]:
        """A new key; the returned string is shown once and never stored. `role` None: admin while
        the store has no admin key, else read-only."""
        try:
            parsed = None if role is None else Role(role)
        except ValueError as exc:
            raise InvalidParameter(f"role {role!r} is unknown; use admin, read-write or read-only") from exc
        scope = [check_name(c) for c in collections] if collections else None
        key_id = secrets.token_hex(4)
        key = f"vf_{key_id}_{secrets.token_urlsafe(24)}"
        with self._editing() as keys:
            has_admin = any(_is_admin(k) for k in keys.values())
            if parsed is None:
                parsed = Role.READ_ONLY if has_admin else Role.ADMIN
            entry = ApiKey(key_id, _hash(key), parsed, scope)
            if not has_admin and not _is_admin(entry) and not allow_no_admin:
                what = (
                    "an admin key limited to some collections"
                    if parsed is Role.ADMIN
                    else f"this {parsed.value} key"
                )
                raise InvalidParameter(
                    f"{what} would leave {self.path.parent} without an admin key for every collection: "
                    "from the first key on the server requires keys, and no one could manage it. Create "
                    f"an admin key first (`vectorforge keys create --data {self.path.parent} --role admin`, "
                    "no -c), or pass --no-admin to create this one anyway"
                )
            keys[key_id] = entry
            self._save(keys)
        return key, entry

    def revoke(self, key_id: str, *, allow_no_admin: bool = False) -> None:
        """Revoke a key; the last admin key only while no other key remains (or `allow_no_admin`)."""
        with self._editing() as keys:
            if key_id not in keys:
                raise NotFoundError(f"no API key with id {key_id!r}; `vectorforge keys list` shows them")
            entry = keys.pop(key_id)
            last_admin = _is_admin(entry) and not any(_is_admin(k) for k in keys.values())
            if last_admin and keys and not allow_no_admin:
                raise InvalidParameter(
                    f"key {key_id} is the last admin key and {len(keys)} other keys remain: revoking "
                    "it leaves no one to manage the server. Create another admin key first, revoke "
                    "the others first, or pass --no-admin to revoke it anyway"
                )
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
