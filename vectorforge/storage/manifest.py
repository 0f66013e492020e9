"""The manifest: which segments make up a collection and which log position they cover.

It is replaced atomically (write, fsync, rename, fsync the folder), so a crash leaves the old or the
new manifest, never a mix. Segment folders that it does not list are leftovers of a crash and are
removed on open.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vectorforge.errors import CorruptionError
from vectorforge.storage.fsio import write_json_atomic

__all__ = ["Manifest"]

FORMAT = 1


@dataclass
class Manifest:
    """segments: oldest first. checkpoint_seq: every operation up to it is in the segments."""

    segments: list[str] = field(default_factory=list)
    checkpoint_seq: int = 0
    # Replication metadata of the last operation in the segments (rseq, ts, op_id, epoch); the log
    # tail carries it for later operations.
    meta: dict[str, Any] = field(default_factory=dict)
    next_segment: int = 1
    # The most recent idempotency keys and the results they returned ([key, result] pairs, oldest
    # first); the log tail carries the keys of later operations.
    keys: list[list[Any]] = field(default_factory=list)
    format: int = FORMAT

    @classmethod
    def load(cls, path: Path) -> Manifest:
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            manifest = cls(**data)
        except (ValueError, TypeError) as exc:
            raise CorruptionError(f"manifest {path} cannot be read ({exc}); restore from a snapshot") from exc
        if manifest.format != FORMAT:
            raise CorruptionError(
                f"manifest {path} has format {manifest.format}; this version reads {FORMAT}"
            )
        return manifest

    def save(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))

    def new_segment_name(self) -> str:
        name = f"seg-{self.next_segment:06d}"
        self.next_segment += 1
        return name
