"""Every error vectorforge raises, in one tree.

Each message says what was wrong and how to fix it. Errors are grouped by who is at fault, so that a
caller (or the HTTP layer) can decide what to do without parsing messages::

    VectorForgeError
    ├── InvalidInputError (ValueError)     the caller sent something wrong; retrying will not help
    │   ├── DimensionMismatch              vector length differs from the collection's dim
    │   ├── InvalidVector                  NaN / inf, wrong shape, not numeric
    │   ├── InvalidId                      id not int/str, duplicate ids in one batch
    │   ├── InvalidPayload                 payload not a JSON object
    │   ├── InvalidFilter                  malformed filter
    │   ├── InvalidName                    collection name outside [A-Za-z0-9_-]{1,64}
    │   ├── InvalidParameter               k, offset, index parameters, batch shapes ...
    │   └── EmbedderMismatch               a query embedded by another model than the collection's
    ├── NotFoundError (LookupError)
    │   ├── CollectionNotFound
    │   ├── AliasNotFound                  no alias has that name
    │   ├── GoldSetNotFound                no gold set, or no such version of it
    │   ├── RunNotFound                    no evaluation run has that id
    │   ├── ModelNotFound                  no registered model, or no such version of it
    │   ├── ExperimentNotFound             no online experiment has that name
    │   └── ShadowNotFound                 no shadow (mirrored traffic) has that name
    ├── ConflictError
    │   ├── CollectionAlreadyExists
    │   └── AliasAlreadyExists             create_alias with a name an alias has
    ├── UnavailableError                   transient: retry later (a locked data folder, a shard down)
    │   ├── DataFolderLocked
    │   ├── ServerUnavailable              the server could not be reached or timed out
    │   ├── StaleEpoch                     a write from a deposed leader (replication)
    │   ├── ReplicaLost                    a replica's process or node is gone
    │   └── ReplicaOutOfSync               a replica missed a log entry and must catch up first
    ├── AccessError                        who is asking, not what
    │   ├── AuthenticationError            no API key, or an unknown one (HTTP 401)
    │   └── PermissionDenied               the key's role or collections do not allow this (HTTP 403)
    ├── RequestTooLarge                    a request body over the server's limit (HTTP 413)
    ├── RequestTimeout                     a request body that arrived too slowly (HTTP 408)
    ├── StorageError                       the disk holds something we cannot read or write
    │   ├── CorruptionError                a checksum or structure check failed
    │   ├── WriteNotDurable                an I/O error (disk full ...) failed a write; it was rolled back
    │   └── CollectionFailed               after an I/O error the collection refuses writes until reopened
    └── UsageError (RuntimeError)          misuse of the API: a closed database, for example

Every class takes the message as its first argument and keeps structured details as attributes,
so that the server can send them and the client rebuild the same exception.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessError",
    "AliasAlreadyExists",
    "AliasNotFound",
    "AuthenticationError",
    "CollectionAlreadyExists",
    "CollectionFailed",
    "CollectionNotFound",
    "ConflictError",
    "CorruptionError",
    "DataFolderLocked",
    "DimensionMismatch",
    "EmbedderMismatch",
    "GoldSetNotFound",
    "InvalidFilter",
    "InvalidId",
    "InvalidInputError",
    "InvalidName",
    "InvalidParameter",
    "InvalidPayload",
    "InvalidVector",
    "ExperimentNotFound",
    "ShadowNotFound",
    "ModelNotFound",
    "NotFoundError",
    "PermissionDenied",
    "ReplicaLost",
    "ReplicaOutOfSync",
    "RunNotFound",
    "RequestTimeout",
    "RequestTooLarge",
    "ServerUnavailable",
    "StaleEpoch",
    "StorageError",
    "UnavailableError",
    "UsageError",
    "VectorForgeError",
    "WriteNotDurable",
    "error_class",
]


class VectorForgeError(Exception):
    """Base of every error vectorforge raises."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data: what crosses the HTTP boundary."""
        return {"error": type(self).__name__, "message": self.message, "details": self.details}


class InvalidInputError(VectorForgeError, ValueError):
    """The request itself is wrong; the same request will fail again."""


class DimensionMismatch(InvalidInputError):
    """A vector's length differs from the collection's dimension."""

    def __init__(self, message: str | None = None, *, expected: int, got: int, **details: Any) -> None:
        super().__init__(
            message
            or f"vector dimension is {got} but the collection expects {expected}; "
            f"embed with the collection's model or create a collection with dim={got}",
            expected=expected,
            got=got,
            **details,
        )
        self.expected = expected
        self.got = got


class InvalidVector(InvalidInputError):
    """A vector holds NaN or infinite values, or is not a 1-D/2-D array of numbers."""


class InvalidId(InvalidInputError):
    """A point id is not an int or non-empty str, or repeats within one batch."""


class InvalidPayload(InvalidInputError):
    """A payload is not a JSON object (dict with str keys and JSON values, finite numbers)."""


class InvalidFilter(InvalidInputError):
    """A filter does not follow the must/should/must_not grammar."""


class InvalidName(InvalidInputError):
    """A collection name is outside [A-Za-z0-9_-]{1,64}."""


class InvalidParameter(InvalidInputError):
    """An argument is out of range or of the wrong kind (k, offset, metric, index parameters ...)."""


class EmbedderMismatch(InvalidInputError):
    """A query was (or would be) embedded by another model than the one that made the collection."""


class NotFoundError(VectorForgeError, LookupError):
    """Something named in the request does not exist."""


class CollectionNotFound(NotFoundError):
    """No collection has that name."""

    def __init__(self, message: str | None = None, *, name: str, **details: Any) -> None:
        super().__init__(
            message or f"collection {name!r} does not exist; list_collections() shows the ones that do",
            name=name,
            **details,
        )
        self.name = name


class AliasNotFound(NotFoundError):
    """No alias has that name (switch_alias, delete_alias)."""

    def __init__(self, message: str | None = None, *, name: str, **details: Any) -> None:
        super().__init__(
            message or f"alias {name!r} does not exist; list_aliases() shows the ones that do",
            name=name,
            **details,
        )
        self.name = name


class GoldSetNotFound(NotFoundError):
    """No gold set, or no version of it, has that name."""


class RunNotFound(NotFoundError):
    """No evaluation run has that id."""


class ModelNotFound(NotFoundError):
    """No registered model, or no such version of it."""


class ExperimentNotFound(NotFoundError):
    """No online experiment (A/B test or interleaving) has that name."""


class ShadowNotFound(NotFoundError):
    """No shadow (a candidate that live queries are mirrored to) has that name."""


class ConflictError(VectorForgeError):
    """The request clashes with the current state."""


class CollectionAlreadyExists(ConflictError):
    """create_collection was called with a name that is taken."""

    def __init__(self, message: str | None = None, *, name: str, **details: Any) -> None:
        super().__init__(
            message or f"collection {name!r} already exists; use get_collection({name!r}) or delete it first",
            name=name,
            **details,
        )
        self.name = name


class AliasAlreadyExists(ConflictError):
    """create_alias was called with a name that an alias has (switch_alias moves an alias)."""

    def __init__(self, message: str | None = None, *, name: str, **details: Any) -> None:
        super().__init__(
            message
            or f"alias {name!r} already exists; switch_alias({name!r}, collection) points it elsewhere",
            name=name,
            **details,
        )
        self.name = name


class UnavailableError(VectorForgeError):
    """Transient: the same request may succeed later."""


class EmbedderUnavailable(UnavailableError):
    """An embedder's model cannot be loaded here (its files are missing or unreadable)."""


class DataFolderLocked(UnavailableError):
    """Another process has the data folder open."""


class ServerUnavailable(UnavailableError):
    """The server could not be reached, or did not answer in time."""


class StaleEpoch(UnavailableError):
    """A write from a leader of an older epoch: a deposed leader can never acknowledge a write."""


class ReplicaLost(UnavailableError):
    """A replica's process or node is gone (or stopped answering): it is fenced until replaced."""


class ReplicaOutOfSync(UnavailableError):
    """A replica was sent a log entry that does not follow the last one it applied."""


class AccessError(VectorForgeError):
    """The caller is not allowed to do this."""


class AuthenticationError(AccessError):
    """No API key was sent, or the key is not known to the server."""


class PermissionDenied(AccessError):
    """The API key's role or collection list does not allow this request."""


class RequestTooLarge(VectorForgeError):
    """A request body exceeds the server's size limit."""


class RequestTimeout(VectorForgeError):
    """A request body did not arrive within the server's read timeout."""


class StorageError(VectorForgeError):
    """The data folder holds something that cannot be read or written."""


class CorruptionError(StorageError):
    """A checksum or structure check failed on data that should be intact."""


class WriteNotDurable(StorageError):
    """An I/O error (a full disk, a file too large, a failing device) stopped a write before it was
    durable; it was rolled back, so it changed nothing. Retry once the cause is fixed."""


class CollectionFailed(StorageError):
    """An I/O error left the disk in a state that cannot be trusted (a failed fsync, a failed
    rollback): the collection answers reads but refuses writes until it is opened again."""


class UsageError(VectorForgeError, RuntimeError):
    """The API was used out of order: a closed database, for example."""


class MissingExtra(VectorForgeError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra
    that brings it (`pip install 'vectorforge[embed]'`)."""


def _subclasses(cls: type[VectorForgeError]) -> list[type[VectorForgeError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def error_class(name: str) -> type[VectorForgeError]:
    """The error class called `name` (as in `to_dict()["error"]`); the base class if unknown.

    The table is every subclass of `VectorForgeError`, found when asked, so a class defined anywhere
    crosses HTTP as itself; every class a remote client can receive is defined in this module.
    """
    for cls in _subclasses(VectorForgeError):
        if cls.__name__ == name:
            return cls
    return VectorForgeError
