"""Reading JSONL files one record at a time, with errors that name the file, the line and the
expected shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from vectorforge.errors import InvalidParameter

__all__ = ["read_records"]

T = TypeVar("T")


def read_records(path: str | Path, parse: Callable[[Any], T], shape: str) -> Iterator[T]:
    """`parse(row)` for each non-empty line's JSON; a bad line (not JSON, a missing key, a wrong
    type) is refused as "`path` line N: problem; each line is `shape`"."""
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield parse(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise InvalidParameter(f"{path} line {n}: {exc}; each line is {shape}") from exc
