"""An on-disk cache of embeddings keyed by (model fingerprint, text hash): single vectors, and token
matrices (a multi vector: ColBERT's rows per document, stored as one blob of `rows x dim`).

Encoding costs ~15-40 ms a document on two CPU cores; re-importing a corpus, re-running an evaluation
or resuming an interrupted import should not pay that twice. SQLite gives atomic, crash-safe writes
with nothing to install.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["EmbeddingCache", "default_cache_path"]


def default_cache_path() -> Path:
    """`$VECTORFORGE_CACHE` or `~/.cache/vectorforge`, plus `embeddings.sqlite`."""
    root = os.environ.get("VECTORFORGE_CACHE") or Path.home() / ".cache" / "vectorforge"
    return Path(root) / "embeddings.sqlite"


class EmbeddingCache:
    """Get and put float32 vectors (or token matrices) for texts under one model fingerprint."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS emb (model TEXT, h BLOB, vec BLOB, PRIMARY KEY (model, h))"
        )
        self._db.commit()

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.sha256(text.encode()).digest()

    def _blobs(self, texts: Sequence[str]) -> list[bytes | None]:
        keys = [self.key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT h, vec FROM emb WHERE model = ? AND h IN ({marks})", [self.fingerprint, *chunk]
                ).fetchall()
                found.update(rows)
        return [found.get(k) for k in keys]

    def get_many(self, texts: Sequence[str], dim: int) -> list[np.ndarray | None]:
        return [
            None if blob is None else np.frombuffer(blob, dtype=np.float32, count=dim)
            for blob in self._blobs(texts)
        ]

    def get_matrices(self, texts: Sequence[str], dim: int) -> list[np.ndarray | None]:
        """The token matrices (rows x `dim`) that `put_many` stored for `texts` (None: not cached)."""
        return [
            None if blob is None else np.frombuffer(blob, dtype=np.float32).reshape(-1, dim)
            for blob in self._blobs(texts)
        ]

    def put_many(self, texts: Sequence[str], vectors: np.ndarray | Sequence[np.ndarray]) -> None:
        """Store one vector (or one token matrix) per text."""
        rows = [
            (self.fingerprint, self.key(t), np.asarray(v, dtype=np.float32).tobytes())
            for t, v in zip(texts, vectors, strict=True)
        ]
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?, ?)", rows)
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
