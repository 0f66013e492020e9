"""One node: Database (collections by name) and Collection (storage + index + payload filters)."""

from __future__ import annotations

from vectorforge.engine.collection import Collection
from vectorforge.engine.database import Database
from vectorforge.engine.merge import merge_topk

__all__ = ["Collection", "Database", "merge_topk"]
