"""The state of an engine `Collection` as its parts see it. `Collection` is assembled from mixins,
one module per job (`named_search`, `compaction`, `snapshots`); each derives from `CollectionState`,
which declares the attributes they read and the methods of `Collection` they call, for the type
checker only. The state itself lives in `Collection.__init__` (engine/collection.py), guarded by
its readers-writer lock; lock order: `_maintenance` before `_lock`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vectorforge.engine.filters import Where
from vectorforge.engine.locks import RWLock
from vectorforge.engine.segment import Segment
from vectorforge.storage import Manifest
from vectorforge.types import CollectionConfig, Multi, PointId, Sparse

if TYPE_CHECKING:
    from collections.abc import Iterable

    import numpy as np

    from vectorforge.engine.named import RowIndex
    from vectorforge.errors import CollectionFailed

__all__ = ["CONFIG_FILE", "MANIFEST_FILE", "CollectionState"]

CONFIG_FILE = "config.json"  # a collection's settings, in its folder
MANIFEST_FILE = "manifest.json"  # its sealed segments and the log position they cover


class CollectionState:
    """Attributes and methods that `Collection` provides to its mixins."""

    config: CollectionConfig
    folder: Path | None
    _lock: RWLock
    _maintenance: threading.Lock
    _segments: list[Segment]
    _where: dict[PointId, tuple[Segment, int]]
    _manifest: Manifest
    _closed: bool
    _closing: bool
    _failed: str | None
    _compactor: threading.Thread | None
    _scroll_cache: tuple[int, list[PointId]] | None

    if TYPE_CHECKING:

        @property
        def name(self) -> str: ...
        @property
        def dim(self) -> int | None: ...
        @property
        def _growing(self) -> Segment: ...
        def _check_open(self) -> None: ...
        def _check_writable(self) -> None: ...
        def _indexed(self, seg: Segment) -> Segment: ...
        def _fail(self, reason: str) -> CollectionFailed: ...
        def _seal_growing(self) -> None: ...
        def _save_indexes(self, index: Any, named: dict[str, RowIndex], folder: Path) -> None: ...
        def _masks(self, where: Where | None) -> Iterable[tuple[Segment, np.ndarray | None, int]]: ...
        def sparse_spec(self, using: str) -> Sparse: ...
        def multi_spec(self, using: str) -> Multi: ...
