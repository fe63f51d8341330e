"""Catalogue inputs: CSV/Parquet files (or folders of them) and folders of image files.

Every input becomes one row ``{input_index, url, path, listing_id, seller_id}`` in a fixed order
(arguments in order, folders walked sorted), so a rerun over the same inputs numbers the rows
alike: shard boundaries and resumption depend on it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from karung.batch.errors import BatchError

TABLE_SUFFIXES: Final = frozenset({".csv", ".parquet", ".pq"})
IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})
FIELDS: Final = ("url", "path", "listing_id", "seller_id")
INPUT_SCHEMA: Final = pa.schema(
    [
        ("input_index", pa.int64()),
        ("url", pa.string()),
        ("path", pa.string()),
        ("listing_id", pa.string()),
        ("seller_id", pa.string()),
    ]
)


class InputError(BatchError, code="input_invalid"):
    """An input file or folder cannot be used (missing, unreadable, without url/path column)."""


def read_inputs(sources: Sequence[str | Path], limit: int | None = None) -> pa.Table:
    """Every input row, numbered from 0 (at most ``limit`` rows), as :data:`INPUT_SCHEMA`."""
    rows: list[dict[str, Any]] = []
    for row in _iter_rows(sources):
        if limit is not None and len(rows) >= limit:
            break
        rows.append({"input_index": len(rows), **row})
    if not rows:
        raise InputError("the inputs hold no rows or images")
    return pa.Table.from_pylist(rows, schema=INPUT_SCHEMA)


def fingerprint(table: pa.Table) -> str:
    """A sha256 over every row's fields: the identity of a job's input list."""
    digest = hashlib.sha256()
    for row in table.select(list(FIELDS)).to_pylist():
        digest.update(json.dumps([row[f] for f in FIELDS]).encode() + b"\n")
    return digest.hexdigest()


def _iter_rows(sources: Sequence[str | Path]) -> Iterator[dict[str, Any]]:
    for raw in sources:
        source = Path(raw)
        if source.is_dir():
            yield from _iter_folder(source)
        elif source.is_file() and source.suffix.lower() in TABLE_SUFFIXES:
            yield from _iter_table(source)
        elif source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
            yield _path_row(source)
        else:
            raise InputError(f"{source}: not a CSV/Parquet file, an image or a folder")


def _iter_folder(folder: Path) -> Iterator[dict[str, Any]]:
    """A folder of tables is read as tables; otherwise its images (walked, sorted) are rows."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    tables = [p for p in files if p.suffix.lower() in TABLE_SUFFIXES]
    if tables:
        for table in tables:
            yield from _iter_table(table)
        return
    for path in files:
        if path.suffix.lower() in IMAGE_SUFFIXES:
            yield _path_row(path)


def _path_row(path: Path) -> dict[str, Any]:
    return {"url": None, "path": str(path.resolve()), "listing_id": None, "seller_id": None}


def _iter_table(path: Path) -> Iterator[dict[str, Any]]:
    records = _read_csv(path) if path.suffix.lower() == ".csv" else _read_parquet(path)
    for record in records:
        yield _normalise(record, path)


def _read_csv(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            _check_columns(path, reader.fieldnames or [])
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from exc


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read Parquet: {exc}") from exc
    _check_columns(path, table.column_names)
    wanted = [c for c in FIELDS if c in table.column_names]
    return list(table.select(wanted).to_pylist())


def _check_columns(path: Path, columns: Sequence[str]) -> None:
    if "url" not in columns and "path" not in columns:
        raise InputError(f"{path}: needs a 'url' or 'path' column, has {list(columns)}")


def _normalise(record: dict[str, Any], table: Path) -> dict[str, Any]:
    """Empty cells are missing values; a relative ``path`` is relative to its table's folder.

    A row with neither a url nor a path is kept (it becomes an error row, never a silent gap).
    """
    row = {f: _text(record.get(f)) for f in FIELDS}
    if row["path"] is not None and not Path(row["path"]).is_absolute():
        row["path"] = str((table.parent / row["path"]).resolve())
    return row


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
