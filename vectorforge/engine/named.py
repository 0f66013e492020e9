"""Named vectors beside the dense one: sparse (BM25, SPLADE) and multi (token matrices).

One table says, for each vector kind, how a segment holds its rows (`RowIndex`), the file a sealed
segment keeps them in, how the write-ahead log packs them, and how a user's value is checked. The
engine's writes, seals, loads, compactions and restores go through it, so a new kind plugs in here
instead of in each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vectorforge.engine.validate import check_vectors, unit_rows
from vectorforge.errors import DimensionMismatch, InvalidParameter, InvalidVector
from vectorforge.index import index_class
from vectorforge.index.dense_rows import DenseRows
from vectorforge.index.sparse import SparseIndex
from vectorforge.types import CollectionConfig, Dense, Multi, Record, Sparse, SparseVector, check_vector_name

__all__ = [
    "KINDS",
    "RowIndex",
    "check_sparse",
    "parse_vectors",
    "record_vectors",
    "check_tokens",
    "named_file",
    "new_named",
    "load_named",
    "multi_info",
    "reload_named",
    "needs_training",
    "seal_named",
    "pack_named",
    "split_vectors",
    "absent_rows",
    "require_dense",
    "unpack_named",
]

MAX_SPARSE_TERMS = 65_536  # non-zero entries of one sparse vector
MAX_TOKENS = 16_384  # rows of one token matrix
MIN_SPARSE_VALUE, MAX_SPARSE_VALUE = 1e-15, 1e15  # a sparse vector's non-zero values


class RowIndex(Protocol):
    """A segment's rows of one named vector (a row may have none)."""

    @property
    def ntotal(self) -> int: ...
    def add(self, rows: Sequence[Any]) -> None: ...
    def add_kept(self, rows: Sequence[Any]) -> None:
        """Rows as `row()` of an index of the same spec returned them (compaction moving rows): added
        without the transforms `add` applies (PLAID's pooling), so none is applied twice."""
        ...

    def row(self, row: int) -> Any: ...
    def save(self, path: Path) -> None: ...


@dataclass(frozen=True)
class _Kind:
    file: str  # a sealed segment's file of the vector, by its name
    new: Callable[[Any], RowIndex]  # an empty index, from the vector's spec
    load: Callable[[Path, int, Any], RowIndex]  # (file, rows, spec) -> index
    pack: Callable[[Any], list[Any]]  # a row as the log keeps it (bytes)
    unpack: Callable[[list[Any], Any], Any]


def _pack_sparse(v: SparseVector) -> list[Any]:
    return [np.asarray(v.indices, np.int64).tobytes(), np.asarray(v.values, np.float32).tobytes()]


def _unpack_sparse(packed: list[Any], spec: Any) -> SparseVector:
    return SparseVector(np.frombuffer(packed[0], np.int64), np.frombuffer(packed[1], np.float32))


def _unpack_tokens(packed: list[Any], spec: Any) -> np.ndarray:
    return np.frombuffer(packed[0], np.float32).reshape(-1, spec.dim)


def _unpack_dense(packed: list[Any], spec: Any) -> np.ndarray:
    return np.frombuffer(packed[0], np.float32)


KINDS: dict[str, _Kind] = {
    "dense": _Kind(
        "dense-{}.npz",
        lambda spec: DenseRows(spec.dim, spec.metric),
        lambda path, rows, spec: DenseRows.load(path, rows, spec.dim, spec.metric),
        lambda v: [np.ascontiguousarray(v, np.float32).tobytes()],
        _unpack_dense,
    ),
    "sparse": _Kind(
        "sparse-{}.npz",
        lambda spec: SparseIndex(),
        lambda path, rows, spec: SparseIndex.load(path, rows),
        _pack_sparse,
        _unpack_sparse,
    ),
    "multi": _Kind(
        "multi-{}.npz",
        lambda spec: index_class(spec.index, "multi")(spec.dim, spec.index_params),
        lambda path, rows, spec: index_class(spec.index, "multi").load(
            path, rows, spec.dim, spec.index_params
        ),
        lambda m: [np.ascontiguousarray(m, np.float32).tobytes()],
        _unpack_tokens,
    ),
}


def _specs(config: CollectionConfig) -> dict[str, tuple[str, Any]]:
    """Each named vector other than the primary dense one: name -> (kind, spec)."""
    out: dict[str, tuple[str, Any]] = {name: ("dense", spec) for name, spec in config.extra_dense.items()}
    out.update({name: ("sparse", spec) for name, spec in config.sparse.items()})
    out.update({name: ("multi", spec) for name, spec in config.multi.items()})
    return out


def named_file(config: CollectionConfig, name: str) -> str:
    """The file of a sealed segment that holds named vector `name`'s rows."""
    kind, _ = _specs(config)[name]
    return KINDS[kind].file.format(name)


def new_named(config: CollectionConfig) -> dict[str, RowIndex]:
    """Empty indexes of every named vector, for a new segment."""
    return {name: KINDS[kind].new(spec) for name, (kind, spec) in _specs(config).items()}


def load_named(config: CollectionConfig, folder: Path, rows: int) -> dict[str, RowIndex]:
    """A sealed segment's named vectors (CorruptionError if a file is missing or does not match)."""
    return {
        name: KINDS[kind].load(folder / KINDS[kind].file.format(name), rows, spec)
        for name, (kind, spec) in _specs(config).items()
    }


def reload_named(config: CollectionConfig, folder: Path, name: str, rows: int) -> RowIndex:
    """Named vector `name` of the sealed segment at `folder`, read from its file."""
    kind, spec = _specs(config)[name]
    return KINDS[kind].load(folder / KINDS[kind].file.format(name), rows, spec)


def seal_named(named: dict[str, RowIndex], train: bool = True) -> None:
    """Tell a segment's named vectors that no more rows come. An index that trains on seal (PLAID's
    k-means: minutes at scale) trains only if `train`: a seal under the write lock leaves that to
    compaction, which builds beside reads and writes (see `needs_training`)."""
    for rows in named.values():
        seal = getattr(rows, "seal", None)
        if seal is not None and (train or not getattr(rows, "trains_on_seal", False)):
            seal()


def needs_training(named: dict[str, RowIndex]) -> bool:
    """Whether a sealed segment holds an index large enough to train that has not yet."""
    return any(getattr(rows, "needs_training", False) for rows in named.values())


def describe(rows: RowIndex) -> dict[str, Any]:
    """What a multi-vector index says of itself (its `describe()`)."""
    out: dict[str, Any] = rows.describe()  # type: ignore[attr-defined]
    return out


def multi_info(named: dict[str, RowIndex], config: CollectionConfig) -> dict[str, Any]:
    """How a segment searches its multi vectors ({"multi": {name: ...}}, or nothing if it has none)."""
    found = {name: describe(named[name]) for name in config.multi if name in named}
    return {"multi": found} if found else {}


def pack_named(config: CollectionConfig, named: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Named rows as the log keeps them: per name, per row, None or a list of bytes."""
    specs = _specs(config)
    return {
        name: [None if v is None else KINDS[specs[name][0]].pack(v) for v in rows]
        for name, rows in named.items()
    }


def unpack_named(config: CollectionConfig, packed: dict[str, list[Any]] | None) -> dict[str, list[Any]]:
    """Undo `pack_named` (a log record of a vector the collection no longer has is refused)."""
    if not packed:
        return {}
    specs = _specs(config)
    out = {}
    for name, rows in packed.items():
        kind, spec = specs[name]
        out[name] = [None if v is None else KINDS[kind].unpack(v, spec) for v in rows]
    return out


def split_vectors(
    config: CollectionConfig, vectors: Any, n: int, *, absent_ok: bool = False
) -> tuple[np.ndarray, dict[str, list[Any]]]:
    """An upsert's `vectors`: an array (the primary dense vector of every point) or a dict by vector
    name. Returns the primary dense rows, checked, with NaN rows for the points that lack it (see
    `absent_rows`), and every other named vector's rows, checked: None where a point lacks one.

    `absent_ok`: `vectors` is such an array already (inside a cluster), whose NaN rows stay absent."""
    if not isinstance(vectors, dict):
        if not config.has_dense and not absent_ok:
            raise InvalidParameter(
                f"collection {config.name!r} has no dense vector; upsert its named vectors by name: "
                f"upsert(ids, {{{', '.join(repr(v) + ': [...]' for v in config.vector_names())}}})"
            )
        return _checked_primary(vectors, config, n, absent_ok), {}
    specs = _specs(config)
    dense = config.dense_name if config.has_dense else None
    unknown = [name for name in vectors if name != dense and name not in specs]
    if unknown:
        known = ", ".join(repr(v) for v in config.vector_names())
        raise InvalidParameter(f"collection {config.name!r} has no vector {unknown[0]!r} (it has: {known})")
    named: dict[str, list[Any]] = {}
    for name, rows in vectors.items():
        if name == dense:
            continue
        kind, spec = specs[name]
        if kind == "multi" and isinstance(rows, np.ndarray) and rows.ndim == 3:  # all of one length
            rows = list(rows)
        if kind == "dense" and isinstance(rows, np.ndarray) and rows.ndim == 2:  # every point has one
            named[name] = list(_checked_batch(rows, spec, name, n))  # one check for the whole array
            continue
        _check_rows(rows, name, kind, n)
        check = _CHECKS[kind]
        named[name] = [
            None if v is None else check(v, spec, f"vectors[{name!r}][{i}]") for i, v in enumerate(rows)
        ]
    if dense is None or dense not in vectors:  # no point has the primary dense vector
        return np.full((n, config.dim), np.nan, np.float32), named
    rows = vectors[dense]
    if isinstance(rows, np.ndarray) or not any(v is None for v in _as_rows(rows)):
        return _checked_primary(rows, config, n, False), named
    _check_rows(rows, dense, "dense", n)
    present = [i for i, v in enumerate(rows) if v is not None]
    out = np.full((n, config.dim), np.nan, np.float32)
    if present:
        out[present] = _checked_primary([rows[i] for i in present], config, len(present), False)
    return out, named


def absent_rows(vectors: np.ndarray) -> np.ndarray:
    """Which rows of `split_vectors`'s dense array stand for points without the primary vector (a
    user's NaN is refused at the check, so only a missing vector is NaN there)."""
    if vectors.shape[1] == 0:
        return np.zeros(len(vectors), dtype=bool)
    absent: np.ndarray = np.isnan(vectors[:, 0])
    return absent


def _as_rows(rows: Any) -> Sequence[Any]:
    return rows if isinstance(rows, list | tuple) else ()


def _check_rows(rows: Any, name: str, kind: str, n: int) -> None:
    if isinstance(rows, np.ndarray | str | bytes | dict) or not isinstance(rows, Sequence):
        raise InvalidVector(f"vectors[{name!r}] must be a list with one {kind} vector (or None) per id")
    if len(rows) != n:
        raise InvalidVector(f"vectors[{name!r}] has {len(rows)} rows for {n} ids")


def _checked_primary(rows: Any, config: CollectionConfig, n: int, absent_ok: bool) -> np.ndarray:
    if not absent_ok:
        return check_vectors(rows, config.dim, config.metric, expected_rows=n)
    absent = absent_rows(rows)
    if not absent.any():
        return check_vectors(rows, config.dim, config.metric, expected_rows=n)
    out = np.array(rows, dtype=np.float32)
    if not absent.all():
        out[~absent] = check_vectors(out[~absent], config.dim, config.metric)
    return out


def _checked_batch(rows: np.ndarray, spec: Dense, name: str, n: int) -> np.ndarray:
    """A further dense vector given as one (n, dim) array, checked at once (as the primary one is)."""
    try:
        return check_vectors(rows, spec.dim, spec.metric, expected_rows=n)
    except DimensionMismatch as exc:
        raise DimensionMismatch(
            f"vectors[{name!r}] has {exc.got} numbers a row; this dense vector has {spec.dim}",
            expected=spec.dim,
            got=exc.got,
        ) from None
    except (InvalidVector, InvalidParameter) as exc:
        raise type(exc)(f"vectors[{name!r}]: {exc}") from None


def record_vectors(config: CollectionConfig, records: Sequence[Record]) -> dict[str, Any]:
    """The vectors of `records` (read with `with_vectors=True`) as `upsert` takes them back: by name,
    the primary dense array (a list with None where a point lacks it) and every other named vector's
    rows (None where a point has none)."""
    out: dict[str, Any] = {name: [(r.vectors or {}).get(name) for r in records] for name in _specs(config)}
    if not config.has_dense:
        return out
    dense: Any = [r.vector for r in records]
    if all(v is not None for v in dense):
        dense = np.asarray(dense, dtype=np.float32).reshape(len(records), config.dim)
    return {config.dense_name: dense, **out}


def require_dense(config: CollectionConfig) -> None:
    """Refuse a dense search of a collection that has no dense vector, naming the ones it has."""
    if not config.has_dense:
        known = ", ".join(repr(v) for v in config.vector_names())
        raise InvalidParameter(
            f"collection {config.name!r} has no dense vector; search one of its named vectors: "
            f"search(query, using=...) with one of {known}, or query(text, using=...)"
        )


def check_dense(value: Any, spec: Dense, where: str = "dense vector") -> np.ndarray:
    """One vector of `spec.dim` numbers as the index keeps it (normalized for cosine)."""
    try:
        shape = np.shape(value)
    except ValueError:  # ragged
        shape = ()
    if len(shape) != 1:
        raise InvalidVector(f"{where} must be one vector of {spec.dim} numbers")
    try:
        row: np.ndarray = check_vectors(value, spec.dim, spec.metric)[0]
    except DimensionMismatch as exc:
        raise DimensionMismatch(
            f"{where} has {exc.got} numbers; this dense vector has {spec.dim}", expected=spec.dim, got=exc.got
        ) from None
    except InvalidVector as exc:
        raise InvalidVector(f"{where}: {exc}") from None
    return row


def check_sparse(value: Any, spec: Any = None, where: str = "sparse vector") -> SparseVector:
    """A SparseVector (or {"indices": [...], "values": [...]}) as the index keeps it: indices distinct
    non-negative int64, ascending; values finite, non-negative float32, zeros dropped."""
    if isinstance(value, dict) and set(value) == {"indices", "values"}:
        value = SparseVector(value["indices"], value["values"])
    if isinstance(value, str):  # text: the analyzer makes its vector
        raise InvalidVector(
            f"{where} is text; a sparse vector is a vf.SparseVector(indices, values). Text goes through "
            "add(texts) and query(text, using=...), which analyze it, or "
            "vectorforge.embed.analyzer.get_analyzer('english').counts(text)"
        )
    if not isinstance(value, SparseVector):
        raise InvalidVector(f"{where} must be a vf.SparseVector(indices, values), not {type(value).__name__}")
    try:
        raw_indices = np.asarray(value.indices)
        raw_values = np.asarray(value.values)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"{where}: indices and values must be lists of numbers ({exc})") from None
    if len(raw_values) and raw_values.dtype.kind not in "iuf":  # strings, booleans: never converted
        raise InvalidVector(f"{where}: values must be numbers, not {raw_values.dtype} values")
    values = raw_values.astype(np.float64)
    if raw_indices.ndim != 1 or values.ndim != 1 or len(raw_indices) != len(values):
        raise InvalidVector(f"{where}: indices and values must be flat lists of the same length")
    if len(raw_indices) > MAX_SPARSE_TERMS:
        raise InvalidVector(f"{where} has {len(raw_indices)} entries; at most {MAX_SPARSE_TERMS}")
    if len(raw_indices) and not np.issubdtype(raw_indices.dtype, np.integer):
        raise InvalidVector(f"{where}: indices must be integers")
    indices = raw_indices.astype(np.int64)
    if len(indices) and (int(indices.min()) < 0 or not np.array_equal(raw_indices, indices)):
        raise InvalidVector(f"{where}: indices must be from 0 to 2**63-1")
    if not np.isfinite(values).all() or (np.abs(values) > np.finfo(np.float32).max).any():
        raise InvalidVector(f"{where}: values must be finite float32 numbers")
    order = np.argsort(indices, kind="stable")
    indices, values = indices[order], values[order]
    if len(indices) > 1 and bool((indices[1:] == indices[:-1]).any()):
        raise InvalidVector(f"{where}: indices must be distinct")
    if (values < 0).any():  # a search returns the rows that share a term with the query and score above 0
        raise InvalidVector(f"{where}: values must not be negative (term counts or a model's weights)")
    present = values[values != 0]
    if len(present) and (present.min() < MIN_SPARSE_VALUE or present.max() > MAX_SPARSE_VALUE):
        # scores are float32 sums of products of two values: neither overflows nor vanishes in this range
        raise InvalidVector(
            f"{where}: values other than 0 must be from {MIN_SPARSE_VALUE:g} to {MAX_SPARSE_VALUE:g}"
        )
    keep = values != 0
    return SparseVector(indices[keep], values[keep].astype(np.float32))


def check_tokens(value: Any, spec: Multi, where: str = "multi vector") -> np.ndarray:
    """A token matrix (tokens x dim) as float32, normalized row by row for the cosine metric."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind not in "iuf":  # strings, booleans, complex: never silently converted
            raise TypeError(f"it holds {raw.dtype} values")
        with np.errstate(over="ignore"):  # beyond float32: inf, refused below
            arr = raw.astype(np.float32)  # a copy: normalizing never touches the caller's array
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"{where} must be a (tokens, {spec.dim}) matrix of numbers ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InvalidVector(
            f"{where} must be a (tokens, {spec.dim}) matrix with a token or more, not shape {arr.shape}"
        )
    if arr.shape[1] != spec.dim:
        raise DimensionMismatch(
            f"{where} has tokens of {arr.shape[1]} dimensions; this multi vector's are {spec.dim}",
            expected=spec.dim,
            got=int(arr.shape[1]),
        )
    if arr.shape[0] > MAX_TOKENS:
        raise InvalidVector(f"{where} has {arr.shape[0]} tokens; at most {MAX_TOKENS}")
    if not np.isfinite(arr).all():
        raise InvalidVector(f"{where} holds NaN or infinite values")
    if spec.metric == "cosine":
        arr, zeros = unit_rows(arr)
        if len(zeros):
            raise InvalidVector(f"{where} has a zero token, which has no direction under the cosine metric")
    return arr


_SPEC_CLASSES: dict[str, type[Dense | Sparse | Multi]] = {cls.kind: cls for cls in (Dense, Sparse, Multi)}


def spec_of(value: Any, cls: type[Dense | Sparse | Multi] | None = None, where: str = "a vector") -> Any:
    """A named vector's settings: an instance of `cls` (any spec class if None), or the JSON form, a
    dict of its settings (with "kind" unless `cls` says it)."""
    if isinstance(value, dict):
        settings = dict(value)
        kind = settings.pop("kind", None if cls is None else cls.kind)
        if not isinstance(kind, str) or kind not in _SPEC_CLASSES or (cls is not None and kind != cls.kind):
            wanted = '"dense", "sparse" or "multi"' if cls is None else repr(cls.kind)
            raise InvalidParameter(f'{where} needs "kind": {wanted}, not {kind!r}')
        return _SPEC_CLASSES[kind](**settings)
    if isinstance(value, cls or (Dense, Sparse, Multi)):
        return value
    wanted = "vf.Dense(...), vf.Sparse(...) or vf.Multi(...)" if cls is None else f"vf.{cls.__name__}(...)"
    raise InvalidParameter(f"{where} must be {wanted}, not {type(value).__name__}")


def parse_vectors(
    vectors: Any,
) -> tuple[str, Dense | None, dict[str, Dense], dict[str, Sparse], dict[str, Multi]]:
    """`create_collection(vectors={...})`: name -> vf.Dense / vf.Sparse / vf.Multi (or, over JSON,
    {"kind": "dense" | "sparse" | "multi", ...settings}). The first vf.Dense is the primary one
    (any index); the others are searched exactly. A point may lack any of them; without a vf.Dense
    the primary dense vector is None (a collection of sparse or multi vectors alone)."""
    if not isinstance(vectors, dict) or not vectors:
        raise InvalidParameter(
            "vectors= takes a dict of name -> vf.Dense(...), vf.Sparse(...) or vf.Multi(...), e.g. "
            '{"dense": vf.Dense(dim=384), "bm25": vf.Sparse()}'
        )
    dense: dict[str, Dense] = {}
    sparse: dict[str, Sparse] = {}
    multi: dict[str, Multi] = {}
    for name, spec in vectors.items():
        try:
            check_vector_name(name)
        except ValueError as exc:
            raise InvalidParameter(str(exc)) from None
        spec = spec_of(spec, where=f"vectors[{name!r}]")
        if isinstance(spec, Dense):
            dense[name] = spec
        elif isinstance(spec, Sparse):
            sparse[name] = spec
        else:
            multi[name] = spec
    if not dense:
        return "", None, {}, sparse, multi
    (dense_name, dense_spec), *others = dense.items()  # the rule for the others: engine/database.py
    return dense_name, dense_spec, dict(others), sparse, multi


_CHECKS: dict[str, Callable[[Any, Any, str], Any]] = {
    "dense": check_dense,
    "sparse": check_sparse,
    "multi": check_tokens,
}
