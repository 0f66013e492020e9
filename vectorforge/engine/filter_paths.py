"""Payload keys: dotted paths with Qdrant's array steps, and the values a key selects.

`meta.lang` walks objects; `diet[].food` walks every element of the array `diet`; `diet[0].food`
only its first. A step that does not fit the payload (a key on a non-object, `[]` on a non-array,
an index past the end) selects nothing there, as in Qdrant.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["Step", "flatten", "parse_key", "select"]

Step = str | int | None
"""An object key, an array index, or None for `[]` (every element)."""

_BRACKET = re.compile(r"\[(\d*)\]")


def parse_key(key: str) -> tuple[Step, ...]:
    """The steps of `key`; ValueError saying what is wrong with its brackets."""
    if "[" not in key and "]" not in key:
        return tuple(key.split("."))  # as before brackets existed: any text between dots is a key
    steps: list[Step] = []
    for part in key.split("."):
        name, bracket, rest = part.partition("[")
        if not name or "]" in name:
            raise ValueError("each '[]' or '[index]' must follow a field name, as in 'diet[].food'")
        steps.append(name)
        rest = bracket + rest
        while rest:
            found = _BRACKET.match(rest)
            if found is None:
                raise ValueError(f"{rest!r} is not '[]' or '[index]' (an index is a number of digits)")
            steps.append(int(found.group(1)) if found.group(1) else None)
            rest = rest[found.end() :]
    return tuple(steps)


def select(payload: Any, steps: tuple[Step, ...]) -> list[Any]:
    """The values `steps` reach in `payload`, arrays kept whole; [] if the key is missing."""
    current = [payload]
    for step in steps:
        reached: list[Any] = []
        for value in current:
            if isinstance(step, str):
                if isinstance(value, dict) and step in value:
                    reached.append(value[step])
            elif step is None:
                if isinstance(value, list):
                    reached.extend(value)
            elif isinstance(value, list) and step < len(value):
                reached.append(value[step])
        if not reached:
            return reached
        current = reached
    return current


def flatten(values: list[Any]) -> list[Any]:
    """The selected values with arrays opened one level: a list matches when an element does."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, list):
            out.extend(value)
        else:
            out.append(value)
    return out
