"""A snapshot of an engine collection: its config, manifest and sealed segments in one tar file,
complete and durable or absent."""

from __future__ import annotations

import tarfile
import uuid
from pathlib import Path

from vectorforge.engine.parts import CONFIG_FILE, MANIFEST_FILE, CollectionState
from vectorforge.errors import UsageError, WriteNotDurable
from vectorforge.storage import fsio

__all__ = ["Snapshots"]


class Snapshots(CollectionState):
    """Mixed into `Collection` (see engine/parts.py)."""

    def snapshot(self, path: str | Path) -> Path:
        """Write the whole collection into one file (a tar archive) that `Database.restore` reads.

        The file appears complete and durable, or not at all (it is written beside the target,
        fsynced, then renamed)."""
        if self.folder is None:
            raise UsageError("snapshots need a persistent database: vf.connect('./path')")
        target = Path(path)
        with self._maintenance, self._lock.write():
            self._check_writable()
            self._seal_growing()
            tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}.tmp")  # one per snapshot
            folder = self.folder

            def write_tar(out: Path) -> None:
                with tarfile.open(out, "w") as tar:
                    tar.add(folder / CONFIG_FILE, arcname=CONFIG_FILE)
                    if (folder / MANIFEST_FILE).exists():  # none until the first seal
                        tar.add(folder / MANIFEST_FILE, arcname=MANIFEST_FILE)
                    for name in self._manifest.segments:
                        tar.add(folder / "segments" / name, arcname=f"segments/{name}")

            try:
                fsio.write_with(tmp, write_tar)
                fsio.replace(tmp, target)
                fsio.fsync_dir(target.parent)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise WriteNotDurable(f"snapshot {target} could not be written: {exc}") from exc
        return target
