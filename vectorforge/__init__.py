"""vectorforge: a vector database and retrieval platform for production.

import vectorforge as vf
db = vf.connect("./vf-data")
col = db.create_collection("docs", dim=384)
col.upsert(ids=[1, 2], vectors=vectors, payloads=[{"lang": "en"}, {"lang": "de"}])
hits = col.search(query, k=10, filter={"must": [{"key": "lang", "match": "en"}]})
"""

from __future__ import annotations

from vectorforge.api import CollectionAPI, DatabaseAPI
from vectorforge.cluster.backend import Cluster
from vectorforge.connect import connect
from vectorforge.engine import Collection, Database
from vectorforge.errors import (
    AccessError,
    AliasAlreadyExists,
    AliasNotFound,
    AuthenticationError,
    CollectionAlreadyExists,
    CollectionFailed,
    CollectionNotFound,
    ConflictError,
    CorruptionError,
    DataFolderLocked,
    DimensionMismatch,
    EmbedderMismatch,
    EmbedderUnavailable,
    ExperimentNotFound,
    GoldSetNotFound,
    InvalidFilter,
    InvalidId,
    InvalidInputError,
    InvalidName,
    InvalidParameter,
    InvalidPayload,
    InvalidVector,
    ModelNotFound,
    NotFoundError,
    PermissionDenied,
    ReplicaLost,
    ReplicaOutOfSync,
    RequestTimeout,
    RequestTooLarge,
    RunNotFound,
    ServerUnavailable,
    ShadowNotFound,
    StaleEpoch,
    StorageError,
    UnavailableError,
    UsageError,
    VectorForgeError,
    WriteNotDurable,
)
from vectorforge.multivector import MUVERAIndex as MUVERAIndex  # registers index kind "muvera"
from vectorforge.multivector import PLAIDIndex as PLAIDIndex  # registers index kind "plaid" of multi vectors
from vectorforge.types import (
    CollectionConfig,
    Dense,
    EmbedderInfo,
    Hit,
    IndexKind,
    Metric,
    Multi,
    Record,
    ScrollPage,
    Sparse,
    SparseVector,
    UpdateResult,
)

__version__ = "0.1.0"

__all__ = [
    "AccessError",
    "AliasAlreadyExists",
    "AliasNotFound",
    "AuthenticationError",
    "Cluster",
    "Collection",
    "CollectionAPI",
    "CollectionAlreadyExists",
    "CollectionConfig",
    "CollectionFailed",
    "CollectionNotFound",
    "ConflictError",
    "CorruptionError",
    "DataFolderLocked",
    "Database",
    "DatabaseAPI",
    "Dense",
    "DimensionMismatch",
    "EmbedderInfo",
    "EmbedderMismatch",
    "EmbedderUnavailable",
    "ExperimentNotFound",
    "GoldSetNotFound",
    "Hit",
    "IndexKind",
    "InvalidFilter",
    "InvalidId",
    "InvalidInputError",
    "InvalidName",
    "InvalidParameter",
    "InvalidPayload",
    "InvalidVector",
    "Metric",
    "ModelNotFound",
    "Multi",
    "NotFoundError",
    "PermissionDenied",
    "Record",
    "ReplicaLost",
    "ReplicaOutOfSync",
    "RequestTimeout",
    "RequestTooLarge",
    "RunNotFound",
    "ScrollPage",
    "ServerUnavailable",
    "ShadowNotFound",
    "Sparse",
    "SparseVector",
    "StaleEpoch",
    "StorageError",
    "UnavailableError",
    "UpdateResult",
    "UsageError",
    "VectorForgeError",
    "WriteNotDurable",
    "__version__",
    "connect",
]
