"""The one place that touches the disk for durable state, and the seam where fault tests fail it.

Every write, fsync, truncate, rename and folder fsync that a durability promise depends on goes
through a function here. A test (or a drill) installs a `FaultPlan` with `inject(...)`: the plan
counts the calls by kind and makes the Nth one fail with an `OSError` of the chosen errno, as a full
disk (ENOSPC), a file too large (EFBIG) or a failing device (EIO) would. A failed `write` first
writes part of its bytes, as a real short write followed by an error does.

Rules the callers follow (PostgreSQL's fsync lesson): a failed write is rolled back (truncated away
and fsynced) before anything else is written; after a failed fsync nothing is retried over it, the
owner stops taking writes until it is reopened.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "OPS",
    "FaultPlan",
    "UncertainCommit",
    "fsync",
    "fsync_dir",
    "fsync_file",
    "fsync_tree",
    "inject",
    "install",
    "make_dirs",
    "open_append",
    "remove_tree",
    "replace",
    "truncate",
    "write_all",
    "write_atomic",
    "write_file",
    "write_json_atomic",
    "write_with",
]

# The kinds of call a plan can fail.
OPS = ("write", "fsync", "truncate", "rename", "fsync_dir", "mkdir")


@dataclass
class FaultPlan:
    """Fail calls of kind `op` ("any": of any kind) with `errno`, from the `nth` (1-based) on, `count`
    of them in a row (a disk that stays full: a large count). `nth=0` never fails.

    `calls` records every call seen (kind, path), so a first run with `nth=0` tells a sweep how many
    calls an operation makes. With `thread` set, only that thread's calls count and fail (a
    background compaction then neither fails nor shifts the count).
    """

    op: str = "any"
    nth: int = 0
    errno: int = errnos.EIO
    count: int = 1
    every: int = 0  # > 0: after the nth, every `every`-th call fails again (a flaky disk)
    thread: int | None = None
    where: str | None = None
    crash: bool = False
    record: bool = True  # keep `calls` (a long drill turns it off)
    calls: list[tuple[str, str]] = field(default_factory=list)
    fired: list[tuple[str, str]] = field(default_factory=list)
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, op: str, path: str) -> None:
        if self.thread is not None and threading.get_ident() != self.thread:
            return
        if self.where is not None and self.where not in path:
            return
        with self._lock:
            if self.record:
                self.calls.append((op, path))
            if self.op not in ("any", op):
                return
            self._seen += 1
            if not self._fails(self._seen):
                return
            self.fired.append((op, path))
        if self.crash:
            os._exit(137)
        raise OSError(self.errno, f"{os.strerror(self.errno)} (injected at {op} #{self._seen})", path)

    def _fails(self, seen: int) -> bool:
        if self.nth <= 0 or seen < self.nth:
            return False
        if self.every > 0:
            return (seen - self.nth) % self.every < self.count
        return seen < self.nth + self.count

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """A plan from text, for drills (`VECTORFORGE_FAULTS`): "op:ERRNO:nth[:every]", for example
        "write:ENOSPC:20:37" fails the 20th write and every 37th after it with ENOSPC."""
        parts = spec.split(":")
        if len(parts) not in (3, 4) or parts[0] not in ("any", *OPS) or not hasattr(errnos, parts[1]):
            raise ValueError(f"fault plan {spec!r} is not op:ERRNO:nth[:every] (op in any, {', '.join(OPS)})")
        every = int(parts[3]) if len(parts) == 4 else 0
        return cls(parts[0], int(parts[2]), getattr(errnos, parts[1]), every=every, record=False)


class UncertainCommit(OSError):
    """A rename was made but the folder fsync after it failed: after a power loss the disk may hold
    the old file or the new one. The caller keeps what both need and stops writing."""


_plan: FaultPlan | None = None


def install(plan: FaultPlan | None) -> None:
    """Install `plan` for the rest of the process (a drill: `VECTORFORGE_FAULTS`), or remove it."""
    global _plan
    _plan = plan


@contextlib.contextmanager
def inject(plan: FaultPlan) -> Iterator[FaultPlan]:
    """Install `plan` for the calls made inside the block (every thread of this process)."""
    global _plan
    previous, _plan = _plan, plan
    try:
        yield plan
    finally:
        _plan = previous


def _check(op: str, path: object) -> None:
    plan = _plan
    if plan is not None:
        plan.check(op, str(path))


# ---------------------------------------------------------------------------------------- primitives
def open_append(path: Path) -> int:
    """An unbuffered descriptor appending to `path` (created if missing): nothing waits in a
    user-space buffer, so a failed write leaves no bytes behind to be flushed by the next one."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def write_all(fd: int, data: bytes | memoryview, path: object = "") -> None:
    """Write every byte of `data` to `fd` (looping over short writes)."""
    view = memoryview(data).cast("B")
    plan = _plan
    if plan is not None:
        try:
            plan.check("write", str(path))
        except OSError:
            os.write(fd, view[: len(view) // 2])  # a short write, then the error
            raise
    while view:
        done = os.write(fd, view)
        view = view[done:]


def fsync(fd: int, path: object = "") -> None:
    _check("fsync", path)
    os.fsync(fd)


def truncate(fd: int, size: int, path: object = "") -> None:
    _check("truncate", path)
    os.ftruncate(fd, size)


def replace(src: Path, dst: Path) -> None:
    """Rename `src` over `dst` (atomic on POSIX); the caller fsyncs the folder."""
    _check("rename", dst)
    os.replace(src, dst)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file inside `path` durable (POSIX needs the directory synced too)."""
    _check("fsync_dir", path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """`mkdir -p`, with every folder it creates made durable in its parent."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        _check("mkdir", folder)
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync(fd, path)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and folder under `root` (an unpacked snapshot), folders after their files."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            fsync_file(Path(folder) / name)
        fsync_dir(Path(folder))


def write_file(path: Path, data: bytes | memoryview, sync: bool = True) -> None:
    """Create (or truncate) `path` with `data`, fsynced. Not atomic: use for files in a folder that
    is published by a rename afterwards."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data, path)
        if sync:
            fsync(fd, path)
    finally:
        os.close(fd)


def write_with(path: Path, writer: Callable[[Path], object]) -> None:
    """Let `writer(path)` make a file (a FAISS or numpy writer that takes a path), then fsync it.
    The seam counts it as one write, failed before the writer runs, as a full disk would fail it."""
    _check("write", path)
    writer(path)
    fsync_file(path)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old or the new file, never a mix."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write_file(tmp, data)
        replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        raise UncertainCommit(
            exc.errno, f"{exc.strerror} (syncing the folder after renaming)", str(path)
        ) from exc


def write_json_atomic(path: Path, obj: Any) -> None:
    """`write_atomic` for a JSON document."""
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def remove_tree(path: Path) -> None:
    """Remove a folder that no durable state refers to (a leftover or an abandoned temporary)."""
    shutil.rmtree(path, ignore_errors=True)
