"""CSV exchange of hash lists: hashes and metadata only, never images.

Platforms share these files to block each other's known re-uploads. Columns (header required,
any order; only ``bank`` and one of ``sha256``/``pdq``/``phash`` are needed per row)::

    bank,sha256,pdq,pdq_quality,phash,trim_pdq,trim_pdq_quality,trim_phash,
    listing_id,seller_id,source_url,added_at,added_by,note,crop_hashes,hash_version

``crop_hashes`` (optional) holds the entry's crop variants, ``<pdq hex>:<phash hex>`` separated by
spaces (:func:`karung.vision.crops.encode_crops`); rows without it match by their other hashes.
``hash_version`` (optional) says how the PDQ hashes were computed
(:data:`karung.vision.hashing.HASH_VERSION`); rows without it are version 1, the reference PDQ
other tools (and karung before version 2) compute.

ThreatExchange-style lists (``signal_type,signal_str,...``) are read and written by
:mod:`karung.serve.bank.te_csv`.

PDQ is 64 hex digits in ThreatExchange's layout, pHash 16 hex digits as ``imagehash`` prints it.
A malformed row is reported as :class:`MalformedCsvRow` naming its line; the other rows still load.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from karung.serve.bank.errors import BankError, InvalidEntry, MalformedCsvRow
from karung.serve.bank.store import HASH_COLUMNS, Entry, NewEntry
from karung.vision.crops import decode_crops
from karung.vision.errors import KarungVisionError
from karung.vision.hash_kinds import PDQ, PHASH
from karung.vision.hashing import REFERENCE_VERSION

COLUMNS: Final = (
    "bank",
    "sha256",
    *HASH_COLUMNS,
    "listing_id",
    "seller_id",
    "source_url",
    "added_at",
    "added_by",
    "note",
    "crop_hashes",
    "hash_version",
)
_HASH_COLUMNS: Final = {"pdq": PDQ, "trim_pdq": PDQ, "phash": PHASH, "trim_phash": PHASH}
_INT_COLUMNS: Final = ("pdq_quality", "trim_pdq_quality")
_TEXT_COLUMNS: Final = ("listing_id", "seller_id", "source_url", "added_by", "note")


def write_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write the header and one row per entry; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for entry in entries:
        data = entry.to_dict()
        writer.writerow(["" if data[c] is None else data[c] for c in COLUMNS])
        count += 1
    return count


def read_csv(source: TextIO, *, bank: str | None = None) -> Iterator[NewEntry | MalformedCsvRow]:
    """Parse a hash list; yield an entry per good row and a :class:`MalformedCsvRow` per bad one.

    Args:
        source: the open text file.
        bank: the bank for rows without one (``bank`` column empty or absent); with neither the
            row is malformed.

    Raises:
        MalformedCsvRow: on line 1 when the header is missing or names an unknown column.
    """
    reader = csv.DictReader(source)
    header = reader.fieldnames
    if not header:
        raise MalformedCsvRow(1, "empty file: expected a header row")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise MalformedCsvRow(1, f"unknown column(s) {unknown}; expected some of {list(COLUMNS)}")
    if not {"sha256", "pdq", "phash"} & set(header):
        raise MalformedCsvRow(1, "the header needs at least one of sha256, pdq, phash")
    for row in reader:
        line = reader.line_num
        try:
            yield parse_row(row, bank)
        except (BankError, KarungVisionError, ValueError) as exc:
            yield MalformedCsvRow(line, str(exc))


def parse_row(row: dict[Any, Any], bank: str | None) -> NewEntry:
    """One CSV row as an entry; raises a typed error saying which field is wrong."""
    if None in row:  # DictReader files surplus fields under the key None
        raise InvalidEntry(f"{len(row[None])} more field(s) than the header has")
    values = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in row.items()}
    kwargs: dict[str, Any] = {"bank": values.get("bank") or bank}
    if kwargs["bank"] is None:
        raise InvalidEntry("no bank: fill the bank column or pass a default bank")
    sha = values.get("sha256")
    kwargs["sha256"] = sha.lower() if sha else None
    for column, kind in _HASH_COLUMNS.items():
        text = values.get(column)
        kwargs[column] = kind.parse(text) if text else None
    for column in _INT_COLUMNS:
        text = values.get(column)
        kwargs[column] = parse_int(column, text) if text else None
    for column in _TEXT_COLUMNS:
        kwargs[column] = values.get(column)
    kwargs["crops"] = decode_crops(values.get("crop_hashes"))
    version = values.get("hash_version")
    kwargs["hash_version"] = parse_int("hash_version", version) if version else REFERENCE_VERSION
    added = values.get("added_at")
    kwargs["added_at"] = parse_time(added) if added else None
    return NewEntry(**kwargs)


def parse_int(column: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidEntry(f"{column} must be an integer, got {text!r}") from None


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidEntry(f"added_at must be an ISO 8601 time, got {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
