"""The HTTP wire forms, built and parsed once: the client (`remote/`) encodes with these functions and
the server (`server/`) decodes with them.

Bulk numbers travel as base64 of little-endian arrays with their shape (JSON lists of floats cost
~3x the bytes and most of the parse time); the server also takes the plain JSON forms. Encoding
never judges a value: anything it cannot put in a binary form goes as JSON, so that the server (the
engine's own checks) refuses it with the message an embedded call gives.

- dense vectors: {"b64", "shape": [rows, dim]} or a list of lists;
- sparse rows: {"sparse_b64": int64 indices, "values_b64": float32 values, "lengths"} or a list of
  {"indices", "values"} (or None);
- token matrices: {"b64", "shape": [tokens, dim], "lengths"} or a list of lists of lists (or None);
  a length of -1 marks a point without that vector;
- a list of single vectors (a further dense vector, None where a point lacks it): {"b64", "shape":
  [present, dim], "present": [true, false, ...]}.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vectorforge.errors import InvalidVector
from vectorforge.types import Hit, Record, SparseVector, UpdateResult

__all__ = [
    "MSGPACK",
    "hit_from_dict",
    "hit_to_dict",
    "named_from_wire",
    "named_to_wire",
    "record_from_dict",
    "record_to_dict",
    "sparse_from_wire",
    "sparse_to_wire",
    "to_json",
    "update_from_dict",
    "update_to_dict",
    "vectors_from_wire",
    "vectors_to_wire",
]

MSGPACK = "application/msgpack"  # the media type of the hot calls' routes (`/msgpack/...`)


def vectors_to_wire(vectors: Any) -> dict[str, Any]:
    """Dense vectors as base64 of little-endian float32, with the shape (1-D: one row)."""
    arr = np.ascontiguousarray(np.asarray(vectors, dtype="<f4"))
    if arr.ndim == 1:
        arr = arr[None, :]
    return {"b64": _b64(arr, "<f4"), "shape": list(arr.shape)}


def vectors_from_wire(value: Any) -> Any:
    """Undo `vectors_to_wire`; plain lists pass through (the engine checks both)."""
    if isinstance(value, dict) and set(value) == {"b64", "shape"}:
        shape = value["shape"]
        if not (
            isinstance(shape, list) and len(shape) == 2 and all(type(s) is int and s >= 0 for s in shape)
        ):
            raise InvalidVector("vectors.shape must be [rows, dim] of non-negative integers")
        raw = _unb64(value["b64"], "vectors.b64")
        if len(raw) != 4 * shape[0] * shape[1]:
            raise InvalidVector(
                f"vectors.b64 holds {len(raw)} bytes; shape {shape} needs {4 * shape[0] * shape[1]}"
            )
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)
    return value


def named_to_wire(vectors: dict[str, Any]) -> dict[str, Any]:
    """An upsert's `vectors` by name: each name's value in its binary form where it has one."""
    out: dict[str, Any] = {}
    for name, value in vectors.items():
        if isinstance(value, np.ndarray) and value.ndim == 3:  # token matrices of one length
            value = list(value)
        if isinstance(value, np.ndarray) and value.ndim == 2 and value.dtype.kind in "iuf":
            out[name] = vectors_to_wire(value)  # dense
        elif _rows_of(value, lambda r: isinstance(r, SparseVector)):
            out[name] = sparse_to_wire(list(value))
        elif _rows_of(value, _is_matrix):
            out[name] = _ragged_to_wire(list(value))
        elif _rows_of(value, _is_vector) and len({len(r) for r in value if r is not None}) == 1:
            present = [r for r in value if r is not None]  # vectors, some points may lack: None
            out[name] = {**vectors_to_wire(np.stack(present)), "present": [r is not None for r in value]}
        else:
            out[name] = to_json(value)
    return out


def named_from_wire(value: dict[str, Any]) -> dict[str, Any]:
    """Undo `named_to_wire`; the JSON forms pass through (the engine checks them)."""
    out: dict[str, Any] = {}
    for name, v in value.items():
        if isinstance(v, dict) and set(v) == {"sparse_b64", "values_b64", "lengths"}:
            out[name] = sparse_from_wire(v, name)
        elif isinstance(v, dict) and set(v) == {"b64", "shape", "present"}:
            present = v["present"]
            rows = vectors_from_wire({"b64": v["b64"], "shape": v["shape"]})
            if not (isinstance(present, list) and all(type(p) is bool for p in present)):
                raise InvalidVector(f"vectors[{name!r}].present must be a list of true and false")
            if sum(present) != len(rows):
                raise InvalidVector(
                    f"vectors[{name!r}].present marks {sum(present)} rows; it holds {len(rows)}"
                )
            found = iter(rows)
            out[name] = [next(found) if p else None for p in present]
        elif isinstance(v, dict) and set(v) == {"b64", "shape", "lengths"}:
            tokens = vectors_from_wire({"b64": v["b64"], "shape": v["shape"]})
            out[name] = _split(tokens, _lengths(v, name, len(tokens)))
        else:
            out[name] = vectors_from_wire(v)
    return out


def sparse_to_wire(rows: list[SparseVector | None]) -> Any:
    """Sparse rows in the binary form; rows whose numbers are not plain integers and reals go as
    JSON instead, for the server to refuse."""
    present = [r for r in rows if r is not None]
    try:
        indices = [np.asarray(r.indices) for r in present]
        values = [np.asarray(r.values) for r in present]
    except (TypeError, ValueError):
        return to_json(rows)
    binary = all(
        i.ndim == 1 and x.ndim == 1 and len(i) == len(x) and i.dtype.kind in "iu" and x.dtype.kind in "iuf"
        for i, x in zip(indices, values, strict=True)
    ) and all(not len(i) or int(i.max()) < 2**63 for i in indices)
    if not binary:
        return to_json(rows)
    return {
        "sparse_b64": _b64(np.concatenate(indices) if indices else np.empty(0), "<i8"),
        "values_b64": _b64(np.concatenate(values) if values else np.empty(0), "<f4"),
        "lengths": [-1 if r is None else len(np.asarray(r.indices)) for r in rows],
    }


def sparse_from_wire(v: dict[str, Any], name: str) -> list[SparseVector | None]:
    indices = np.frombuffer(_unb64(v["sparse_b64"], f"vectors[{name!r}].sparse_b64"), dtype="<i8")
    values_raw = _unb64(v["values_b64"], f"vectors[{name!r}].values_b64")
    if len(values_raw) % 4:
        raise InvalidVector(f"vectors[{name!r}].values_b64 is not whole float32 values")
    values = np.frombuffer(values_raw, dtype="<f4")
    if len(indices) != len(values):
        raise InvalidVector(f"vectors[{name!r}] holds {len(indices)} indices, {len(values)} values")
    lengths = _lengths(v, name, len(indices))
    return [
        None if i is None else SparseVector(i.astype(np.int64), x.astype(np.float32))
        for i, x in zip(_split(indices, lengths), _split(values, lengths), strict=True)
    ]


def to_json(value: Any) -> Any:
    """`value` in plain JSON types (arrays as lists, a SparseVector as {"indices", "values"})."""
    if isinstance(value, SparseVector):
        return {"indices": to_json(value.indices), "values": to_json(value.values)}
    if isinstance(value, complex) or (isinstance(value, np.ndarray | np.generic) and value.dtype.kind == "c"):
        raise InvalidVector("vectors hold complex values; they must be real numbers")
    if isinstance(value, np.ndarray):
        return [to_json(v) for v in value] if value.dtype.kind == "O" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def update_to_dict(result: UpdateResult) -> dict[str, Any]:
    """A write's answer; "seq" (the same id) is what clients before 0.2 read as the session token."""
    return {
        "operation_id": result.operation_id,
        "count": result.count,
        "status": result.status,
        "seq": result.operation_id,
    }


def update_from_dict(d: dict[str, Any]) -> UpdateResult:
    return UpdateResult(int(d["operation_id"]), int(d["count"]))


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    return {"id": hit.id, "score": hit.score, "payload": hit.payload, "vector": hit.vector}


def hit_from_dict(d: dict[str, Any]) -> Hit:
    return Hit(d["id"], d["score"], d.get("payload"), d.get("vector"))


def record_to_dict(rec: Record) -> dict[str, Any]:
    out = {"id": rec.id, "payload": rec.payload, "vector": rec.vector}
    if rec.vectors:
        out["vectors"] = {name: to_json(v) for name, v in rec.vectors.items()}
    return out


def record_from_dict(d: dict[str, Any]) -> Record:
    named = d.get("vectors")
    if named:
        named = {
            name: SparseVector(v["indices"], v["values"]) if isinstance(v, dict) else v
            for name, v in named.items()
        }
    return Record(d["id"], d.get("payload"), d.get("vector"), named or None)


def _rows_of(value: Any, kind: Callable[[Any], bool]) -> bool:
    """`value` is a non-empty list of rows of one kind (or None)."""
    return isinstance(value, list | tuple) and bool(value) and all(r is None or kind(r) for r in value)


def _is_vector(value: Any) -> bool:
    if not isinstance(value, np.ndarray | list | tuple):
        return False
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # ragged
        return False
    return arr.ndim == 1 and arr.dtype.kind in "iuf"


def _is_matrix(value: Any) -> bool:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # ragged
        return False
    return arr.ndim == 2 and arr.dtype.kind in "iuf"


def _ragged_to_wire(rows: list[Any]) -> Any:
    present = [np.asarray(r, dtype="<f4") for r in rows if r is not None]
    if len({m.shape[1] for m in present}) > 1:  # tokens of two dims: the server says which is wrong
        return to_json(rows)
    dim = present[0].shape[1] if present else 0
    return {
        "b64": _b64(np.concatenate(present) if present else np.empty((0, 0)), "<f4"),
        "shape": [sum(len(m) for m in present), dim],
        "lengths": [-1 if r is None else len(r) for r in rows],
    }


def _b64(arr: Any, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype=dtype).tobytes()).decode()


def _unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidVector(f"{what} is not valid base64: {exc}") from exc


def _lengths(v: dict[str, Any], name: str, total: int) -> list[int]:
    lengths = v.get("lengths")
    if not (isinstance(lengths, list) and all(type(n) is int and n >= -1 for n in lengths)):
        raise InvalidVector(f"vectors[{name!r}].lengths must be a list of integers (-1: no vector)")
    if sum(max(n, 0) for n in lengths) != total:
        raise InvalidVector(f"vectors[{name!r}].lengths add up to more or less than the data it holds")
    return lengths


def _split(flat: Any, lengths: Sequence[int]) -> list[Any]:
    rows: list[Any] = []
    at = 0
    for n in lengths:
        rows.append(None if n < 0 else flat[at : at + n])
        at += max(n, 0)
    return rows
