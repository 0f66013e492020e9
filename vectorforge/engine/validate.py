"""Checks of user input. Each raises a precise InvalidInputError before anything is changed."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from vectorforge.errors import DimensionMismatch, InvalidId, InvalidParameter, InvalidPayload, InvalidVector
from vectorforge.types import Metric, PointId

__all__ = [
    "MAX_BATCH",
    "MAX_K",
    "check_idempotency_key",
    "check_ids",
    "check_k_offset",
    "check_payloads",
    "check_queries",
    "check_texts",
    "check_vectors",
    "unit_rows",
]

MAX_K = 10_000
MAX_BATCH = 100_000
MAX_QUERIES = 1_024  # queries in one search_batch
MAX_HITS = 100_000  # queries x (k + offset) in one answer
MAX_ID_INT = 2**63 - 1
MAX_ID_STR = 256
MAX_KEY = 200
MAX_PAYLOAD_DEPTH = 32  # nesting levels of a payload
MAX_PAYLOAD_BYTES = 1 << 20  # one payload, encoded


def check_idempotency_key(key: object) -> str | None:
    """An idempotency key: None, or 1-200 printable ASCII characters (a UUID, say)."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY or not (key.isascii() and key.isprintable()):
        raise InvalidParameter(
            f"idempotency_key must be 1-{MAX_KEY} printable ASCII characters (a UUID, say), not {key!r:.60}"
        )
    return key


def check_id(pid: object) -> PointId:
    if isinstance(pid, np.integer):
        pid = int(pid)
    if isinstance(pid, bool) or not isinstance(pid, int | str):
        raise InvalidId(f"point id {pid!r} is a {type(pid).__name__}; ids are int or str")
    if isinstance(pid, int) and not 0 <= pid <= MAX_ID_INT:
        raise InvalidId(f"point id {pid} is out of range; integer ids are from 0 to 2**63-1")
    if isinstance(pid, str) and not 0 < len(pid) <= MAX_ID_STR:
        raise InvalidId(
            f"point id {pid[:40]!r} must be a non-empty string of at most {MAX_ID_STR} characters"
        )
    if isinstance(pid, str) and not _is_utf8(pid):
        raise InvalidId(f"point id {pid[:40]!r} is not valid Unicode (a lone surrogate); ids are UTF-8 text")
    return pid


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_ids(ids: object, *, what: str = "ids", unique: bool = True) -> list[PointId]:
    """A list of valid ids, at least one, no repeats (when `unique`)."""
    if isinstance(ids, str | bytes | int) or ids is None:
        raise InvalidId(f"{what} must be a list of ids, not {type(ids).__name__}; wrap a single id in a list")
    try:
        items = list(ids)  # type: ignore[call-overload]
    except TypeError as exc:
        raise InvalidId(f"{what} must be a list of ids, not {type(ids).__name__}") from exc
    if not items:
        raise InvalidId(f"{what} is empty; pass at least one id")
    if len(items) > MAX_BATCH:
        raise InvalidParameter(f"{len(items)} {what} in one call; send at most {MAX_BATCH} per batch")
    checked = [check_id(p) for p in items]
    if unique and len(set(checked)) != len(checked):
        seen: set[PointId] = set()
        dups = [p for p in checked if p in seen or seen.add(p)]  # type: ignore[func-returns-value]
        raise InvalidId(f"duplicate ids in one batch: {dups[:5]}; each id may appear once per call")
    return checked


def check_vectors(
    vectors: object, dim: int, metric: Metric, *, expected_rows: int | None = None
) -> np.ndarray:
    """A C-contiguous float32 (n, dim) matrix, finite, normalized for cosine. 1-D input is one row."""
    try:
        if isinstance(vectors, np.ndarray) and vectors.dtype == np.float32:
            arr = vectors  # the common case; skip the conversion machinery
        else:
            raw = np.asarray(vectors)
            if raw.dtype.kind not in "iuf":  # strings, booleans, objects: never silently converted
                raise InvalidVector(f"vectors must hold numbers, not {raw.dtype} values; pass floats")
            with np.errstate(over="ignore"):  # values beyond float32 become inf, refused below
                arr = raw.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"vectors must be numbers in a (n, {dim}) array or list of lists: {exc}") from exc
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InvalidVector(f"vectors must be 1-D or 2-D (n, {dim}); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise InvalidVector("the batch of vectors is empty; pass at least one")
    if arr.shape[1] != dim:
        raise DimensionMismatch(expected=dim, got=int(arr.shape[1]))
    if expected_rows is not None and arr.shape[0] != expected_rows:
        raise InvalidParameter(
            f"{expected_rows} ids but {arr.shape[0]} vectors; pass exactly one vector per id"
        )
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise InvalidVector(
            f"vectors at rows {bad[:5].tolist()} hold NaN or infinite values; all must be finite"
        )
    if metric is Metric.COSINE:
        arr, zeros = unit_rows(arr)
        if len(zeros):
            raise InvalidVector(
                f"vectors at rows {zeros[:5].tolist()} are all zeros; a zero vector has no cosine similarity"
            )
    return np.ascontiguousarray(arr, dtype=np.float32)


def unit_rows(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`arr` with each row scaled to unit length, and the rows that are all zeros (left as they are).
    Rows already of unit length (a copy, a repair, a reshard) keep their bits: no copy is made."""
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))[:, None]
    zeros = np.flatnonzero(norms[:, 0] == 0)
    if len(zeros) or float(np.abs(norms - 1.0).max()) <= 1e-6:
        return arr, zeros
    return arr / norms, zeros


def check_payloads(payloads: object, n: int) -> list[bytes | None]:
    """Payloads encoded for storage: one JSON object (or None) per id."""
    if payloads is None:
        return [None] * n
    if isinstance(payloads, dict):
        raise InvalidPayload("payloads must be a list with one dict per id, not a single dict")
    if not isinstance(payloads, Sequence):
        raise InvalidPayload(f"payloads must be a list of dicts, not {type(payloads).__name__}")
    if len(payloads) != n:
        raise InvalidParameter(f"{n} ids but {len(payloads)} payloads; pass one payload (or None) per id")
    return [_encode_payload(p, i) for i, p in enumerate(payloads)]


def _encode_payload(payload: Any, i: int) -> bytes | None:
    if payload is None:
        return None
    if not isinstance(payload, dict):
        raise InvalidPayload(f"payload {i} is a {type(payload).__name__}; a payload is a dict (JSON object)")
    _check_value(payload, i, 0)  # depth, keys, numbers and text first: cheap, and names the problem
    try:
        # The JSON round trip both checks (str keys, JSON values, finite numbers) and deep-copies.
        plain = json.loads(json.dumps(payload, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"payload {i} is not JSON: {exc}; use str keys and JSON values") from exc
    blob: bytes = msgpack.packb(plain, use_bin_type=True)
    if len(blob) > MAX_PAYLOAD_BYTES:
        raise InvalidPayload(
            f"payload {i} takes {len(blob):,} bytes; the limit is {MAX_PAYLOAD_BYTES:,} (store large data "
            "elsewhere and keep a reference in the payload)"
        )
    return blob


def _check_value(value: Any, i: int, depth: int) -> None:
    """What every stored value must be, so that every read can send it back: nesting at most
    MAX_PAYLOAD_DEPTH, str keys, integers within 64 bits, text that is valid Unicode."""
    if depth > MAX_PAYLOAD_DEPTH:
        raise InvalidPayload(f"payload {i} is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):  # json.dumps would turn 1, True, None into "1", "true", "null"
                raise InvalidPayload(f"payload {i} is not JSON: it has a key that is not a str; use str keys")
            if not _is_utf8(key):
                raise InvalidPayload(f"payload {i} has a key that is not valid Unicode (a lone surrogate)")
            _check_value(item, i, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_value(item, i, depth + 1)
    elif isinstance(value, str):
        if not _is_utf8(value):
            raise InvalidPayload(f"payload {i} holds text that is not valid Unicode (a lone surrogate)")
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        raise InvalidPayload(
            f"payload {i} holds an integer of {value.bit_length()} bits, beyond 64; store it as a string"
        )


def one_query(vector: object, dim: int, metric: Metric) -> np.ndarray | None:
    """The common single search, cheaply: a 1-D float32 array of `dim` as a (1, dim) C-contiguous
    matrix, normalized for cosine; None where `check_vectors` must look (and name the problem).

    One dot product checks it: a NaN or an infinity anywhere makes it non-finite (so do finite
    values too large to square, which the full check then accepts)."""
    if not (isinstance(vector, np.ndarray) and vector.dtype == np.float32 and vector.shape == (dim,)):
        return None
    square = float(np.dot(vector, vector))
    if not math.isfinite(square) or square == 0.0:
        return None
    row = vector.reshape(1, dim)
    if metric is Metric.COSINE and abs(square - 1.0) > 1e-6:  # safely inside unit_rows's 1e-6 on the norm
        row = unit_rows(row)[0]  # the same bits as check_vectors would make
    return row if row.flags.c_contiguous else np.ascontiguousarray(row)


def check_queries(vectors: object, dim: int, metric: Metric, fetch: int) -> np.ndarray:
    """The queries of a search_batch: at most MAX_QUERIES, and an answer of at most MAX_HITS hits."""
    fast = one_query(vectors, dim, metric)
    if fast is not None:
        return fast
    queries = check_vectors(vectors, dim, metric)
    n = queries.shape[0]
    if n > MAX_QUERIES:
        raise InvalidParameter(
            f"search_batch takes at most {MAX_QUERIES:,} queries, not {n:,}; split the batch"
        )
    if n * fetch > MAX_HITS:
        raise InvalidParameter(
            f"{n:,} queries x (k + offset = {fetch:,}) would answer {n * fetch:,} hits; the limit is "
            f"{MAX_HITS:,}: ask for fewer queries at a time or a smaller k"
        )
    return queries


def check_k_offset(k: object, offset: object) -> tuple[int, int]:
    """k in 1..MAX_K and offset in 0..MAX_K, with k + offset <= MAX_K."""
    if type(k) is int and type(offset) is int and k >= 1 and offset >= 0 and k + offset <= MAX_K:
        return k, offset
    checked = []
    for name, value, lo in (("k", k, 1), ("offset", offset, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise InvalidParameter(f"{name} must be an integer, not {value!r}")
        if not lo <= int(value) <= MAX_K:
            raise InvalidParameter(f"{name}={value} is out of range; use {lo} <= {name} <= {MAX_K}")
        checked.append(int(value))
    if checked[0] + checked[1] > MAX_K:
        raise InvalidParameter(f"k + offset = {sum(checked)} exceeds {MAX_K}; page with scroll instead")
    return checked[0], checked[1]


def check_texts(
    texts: object, ids: Sequence[PointId] | None, payloads: Sequence[dict[str, Any] | None] | None
) -> tuple[list[str], list[PointId], list[dict[str, Any]]]:
    """Texts to embed, their ids (random hex when None) and payloads carrying each text as "text"."""
    if (
        isinstance(texts, str)
        or not isinstance(texts, Sequence)
        or not all(isinstance(t, str) for t in texts)
    ):
        raise InvalidParameter("texts must be a list of strings")
    if not texts:
        raise InvalidParameter("texts is empty; pass at least one")
    if payloads is not None and len(payloads) != len(texts):
        raise InvalidParameter(f"{len(texts)} texts but {len(payloads)} payloads; pass one per text")
    checked = check_ids([uuid.uuid4().hex for _ in texts] if ids is None else ids)
    merged = [{**(p or {}), "text": t} for p, t in zip(payloads or [None] * len(texts), texts, strict=True)]
    check_payloads(merged, len(texts))
    return list(texts), checked, merged


def check_n_probe(n_probe: object, semantic: bool, shards: int) -> int | None:
    """`n_probe`: how many of its nearest shards a semantically sharded query asks (None: all)."""
    if n_probe is None:
        return None
    if isinstance(n_probe, bool) or not isinstance(n_probe, int) or n_probe < 1:
        raise InvalidParameter(f"n_probe must be a positive integer, not {n_probe!r}")
    if not semantic:
        raise InvalidParameter(
            "n_probe goes with sharding='semantic' (a query asks its n_probe nearest shards); a hash- or "
            "key-sharded query always asks every shard"
        )
    if n_probe > shards:
        raise InvalidParameter(f"n_probe={n_probe} is more than the {shards} shards; give 1 to {shards}")
    return n_probe
