"""The columns of a backfill's Parquet shards: one row per input, errors included.

Columns starting with ``_`` travel from the workers to the driver only (the review thumbnail,
the bank entry to add, the batch's CPU time) and are dropped before a shard is written.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa

MATCH_TYPE: Final = pa.struct(
    [
        ("entry_id", pa.int64()),
        ("bank", pa.string()),
        ("kind", pa.string()),
        ("distance", pa.int32()),
        ("listing_id", pa.string()),
        ("seller_id", pa.string()),
        ("source_url", pa.string()),
    ]
)
SHARD_SCHEMA: Final = pa.schema(
    [
        ("input_index", pa.int64()),
        ("path", pa.string()),
        ("url", pa.string()),
        ("listing_id", pa.string()),
        ("seller_id", pa.string()),
        ("sha256", pa.string()),
        ("scores", pa.map_(pa.string(), pa.float64())),
        ("risk", pa.float64()),
        ("label", pa.string()),
        ("decision", pa.string()),
        ("model_decision", pa.string()),
        ("reasons", pa.list_(pa.string())),
        ("matches", pa.list_(MATCH_TYPE)),
        ("pdq", pa.string()),
        ("pdq_quality", pa.int32()),
        ("phash", pa.string()),
        ("error_code", pa.string()),
        ("error_message", pa.string()),
        ("model_version", pa.string()),
    ]
)
PRIVATE_FIELDS: Final = (
    ("_thumbnail", pa.binary()),
    ("_bank_entry", pa.binary()),
    ("_cpu_s", pa.float64()),  # the worker's CPU seconds for the batch, on its first row
)
WORKER_SCHEMA: Final = pa.schema(list(SHARD_SCHEMA) + [pa.field(n, t) for n, t in PRIVATE_FIELDS])


def empty_row(item: dict[str, Any], model_version: str) -> dict[str, Any]:
    """A result row with the input's fields and nothing else filled in yet."""
    row: dict[str, Any] = {name: None for name in WORKER_SCHEMA.names}
    for name in ("input_index", "path", "url", "listing_id", "seller_id"):
        row[name] = item.get(name)
    row["reasons"] = []
    row["matches"] = []
    row["model_version"] = model_version
    return row


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Worker rows as an Arrow table (``scores`` dicts become map entries)."""
    prepared = [
        {**r, "scores": None if r["scores"] is None else list(r["scores"].items())} for r in rows
    ]
    return pa.Table.from_pylist(prepared, schema=WORKER_SCHEMA)


def public(table: pa.Table) -> pa.Table:
    """The shard columns of a worker table, in :data:`SHARD_SCHEMA` order."""
    return table.select(SHARD_SCHEMA.names)
