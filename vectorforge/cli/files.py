"""Reading points from files: JSONL, CSV, Parquet (with pyarrow) and NumPy, one dict per row."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vectorforge.cli.common import CliError

__all__ = ["FORMATS", "Source", "open_source"]

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".npy": "npy"}
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")  # JSON's number grammar: no "007"


@dataclass
class Source:
    """A file of points: its format, the columns of its first row, its row count and content hash."""

    path: Path
    format: str
    columns: list[str]
    total: int | None
    digest: str

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row as a dict, in file order."""
        if self.format == "jsonl":
            return _jsonl_rows(self.path)
        if self.format == "csv":
            return _csv_rows(self.path)
        if self.format == "parquet":
            return _parquet_rows(self.path)
        return _npy_rows(self.path)


def open_source(path: Path) -> Source:
    """Look at `path`: its format by extension, its columns, its size; errors in CLI words."""
    if not path.exists():
        raise CliError(f"no such file: {path}")
    if path.is_dir():
        raise CliError(f"{path} is a folder; give a .jsonl, .csv, .parquet or .npy file")
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CliError(
            f"cannot tell the format of {path.name} from its extension",
            f"name it .jsonl, .csv, .parquet or .npy (one of {', '.join(FORMATS)})",
        )
    digest = _sha256(path)
    if fmt == "jsonl":
        first = next(_jsonl_rows(path), None)
        columns, total = list(first or {}), _count_jsonl(path)
    elif fmt == "csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            total = sum(1 for _ in reader)
        columns = list(header)
    elif fmt == "parquet":
        pq = _pyarrow_parquet()
        meta = pq.ParquetFile(path)
        columns, total = list(meta.schema_arrow.names), int(meta.metadata.num_rows)
    else:
        array = _load_npy(path)
        columns, total = ["id", "vector"], int(array.shape[0])
    return Source(path, fmt, columns, total, digest)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _count_jsonl(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise CliError(f"{path.name} line {number} is not JSON: {exc}") from exc
            if not isinstance(row, dict):
                raise CliError(
                    f"{path.name} line {number} is not a JSON object", 'e.g. {"id": 1, "vector": [...]}'
                )
            yield row


def _cell(value: str) -> Any:
    """A CSV cell: a number if it reads as one (JSON's grammar, so "007" stays text); "" is absent."""
    if value == "":
        return None
    if _NUMBER.fullmatch(value):
        return json.loads(value)
    if value.startswith("[") or value.startswith("{"):  # a vector, or a nested object
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield {k: _cell(v) for k, v in row.items() if k is not None and isinstance(v, str)}


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise CliError(
            "reading Parquet needs pyarrow, which is not installed",
            "install it into this environment (pip install pyarrow), or export the file to JSONL or CSV",
        ) from exc
    return pq


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    pq = _pyarrow_parquet()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        yield from batch.to_pylist()


def _load_npy(path: Path) -> np.ndarray:
    try:
        array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise CliError(f"{path.name} is not a NumPy array file: {exc}") from exc
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise CliError(
            f"{path.name} holds a {array.dtype} array of shape {array.shape}; "
            "points import takes a 2-D array of numbers, one vector per row"
        )
    return array


def _npy_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a .npy matrix: ids are row numbers, as in FAISS."""
    array = _load_npy(path)
    for i in range(array.shape[0]):
        yield {"id": i, "vector": array[i]}
