"""The output folder of a backfill: a manifest and one Parquet file per shard of inputs.

Shard ``k`` holds the results of inputs ``k*S .. (k+1)*S - 1`` (``S`` the shard size), sorted by
``input_index``. A shard file appears only complete: it is written beside its final name and
renamed into place (atomic on POSIX), so a killed driver leaves either the whole shard or
nothing, and a restart skips exactly the shards that exist. The manifest pins what the folder
holds (the inputs' fingerprint, shard size, model version): resuming with other inputs or
another model is refused instead of mixing results.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from karung.batch.errors import BatchError
from karung.batch.schema import SHARD_SCHEMA

MANIFEST: Final = "manifest.json"
SHARDS: Final = "shards"
FORMAT: Final = 1


class JobMismatch(BatchError, code="job_mismatch"):
    """The output folder holds the results of another job (other inputs or model)."""


@dataclass(frozen=True)
class Manifest:
    """What an output folder holds."""

    inputs: str  # fingerprint of the input rows (karung.batch.inputs.fingerprint)
    rows: int
    shard_size: int
    model_version: str
    format: int = FORMAT

    @property
    def shards(self) -> int:
        """Number of shards."""
        return -(-self.rows // self.shard_size)

    def bounds(self, shard: int) -> tuple[int, int]:
        """First input index and one past the last of ``shard``."""
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.rows)


def open_output(out: Path, manifest: Manifest) -> None:
    """Create ``out`` for ``manifest``, or check that it already belongs to the same job."""
    (out / SHARDS).mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    if path.exists():
        found = json.loads(path.read_text())
        if found != asdict(manifest):
            diff = sorted(
                k
                for k in found.keys() | asdict(manifest).keys()
                if found.get(k) != asdict(manifest).get(k)
            )
            raise JobMismatch(
                f"{out} holds another backfill (differs in {', '.join(diff)}); use a new --out"
            )
        return
    _atomic_write(path, json.dumps(asdict(manifest), indent=2).encode())


def shard_path(out: Path, shard: int) -> Path:
    """Where shard ``shard`` lives."""
    return out / SHARDS / f"part-{shard:06d}.parquet"


def finished(out: Path, manifest: Manifest) -> set[int]:
    """Shards whose file exists with the expected number of rows (leftover temp files go)."""
    for tmp in (out / SHARDS).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    done: set[int] = set()
    for shard in range(manifest.shards):
        path = shard_path(out, shard)
        if not path.exists():
            continue
        start, stop = manifest.bounds(shard)
        try:
            rows = pq.ParquetFile(path).metadata.num_rows
        except (OSError, pa.ArrowException):
            continue  # unreadable: computed again
        if rows == stop - start:
            done.add(shard)
    return done


def write_shard(out: Path, shard: int, table: pa.Table) -> Path:
    """Write ``table`` (shard columns) sorted by input index, atomically."""
    ordered = table.select(SHARD_SCHEMA.names).cast(SHARD_SCHEMA)
    ordered = ordered.take(pc.sort_indices(ordered, [("input_index", "ascending")]))
    path = shard_path(out, shard)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(ordered, tmp, compression="zstd")
    _fsync_replace(tmp, path)
    return path


def read_results(out: Path, columns: list[str] | None = None) -> pa.Table:
    """Every finished shard's rows as one table, in input order."""
    paths = sorted((out / SHARDS).glob("part-*.parquet"))
    if not paths:
        return SHARD_SCHEMA.empty_table().select(columns or SHARD_SCHEMA.names)
    return pa.concat_tables(pq.read_table(p, columns=columns) for p in paths)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    _fsync_replace(tmp, path)


def _fsync_replace(tmp: Path, path: Path) -> None:
    # fsync before the rename: after a crash the name never points at a half-written file.
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
