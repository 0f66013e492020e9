"""Small durable-file helpers: every write that must survive a crash goes through here."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["extract_tar", "fsync_dir", "write_atomic", "write_json_atomic"]


def extract_tar(tar: tarfile.TarFile, dest: Path) -> None:
    """Unpack a snapshot into `dest`, refusing links, devices and paths that would leave it.

    Raises ValueError naming the first unsafe entry; nothing is unpacked then.
    """
    for member in tar.getmembers():
        if (
            not (member.isfile() or member.isdir())
            or member.name.startswith(("/", ".."))
            or (".." in Path(member.name).parts)
        ):
            raise ValueError(f"unsafe entry {member.name!r}")
    tar.extractall(dest, filter="data")


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file inside `path` durable (POSIX needs the directory synced too)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new file, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_json_atomic(path: Path, obj: Any) -> None:
    """`write_atomic` for a JSON document."""
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())
