"""Scroll cursors: a page resumes after the last id it returned, in one id order (ints, then strs)."""

from __future__ import annotations

import bisect
import json

from vectorforge.errors import InvalidParameter
from vectorforge.types import PointId

__all__ = ["bisect_after", "decode_cursor", "encode_cursor", "id_key"]


def id_key(pid: PointId) -> tuple[bool, PointId]:
    return (isinstance(pid, str), pid)


def encode_cursor(pid: PointId) -> str:
    """The scroll cursor that resumes after `pid` (shared with sharded collections)."""
    return json.dumps(pid)


def decode_cursor(cursor: str | None) -> PointId | None:
    if cursor is None:
        return None
    try:
        value = json.loads(cursor)
    except (TypeError, ValueError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidParameter(
            f"cursor {cursor!r} is not one that scroll returned; pass next_cursor unchanged"
        )
    return value


def bisect_after(order: list[PointId], after: PointId) -> int:
    return bisect.bisect_right(order, id_key(after), key=id_key)
