"""ThreatExchange-style hash lists: one signal per row, ``signal_type,signal_str,...``.

Trust-and-safety teams exchange hash lists in this shape (ThreatExchange's signal types: ``pdq``
with the 64-hex-digit hash as ``signal_str``). karung writes one row per entry, its strongest
signal first in the two standard columns, and everything else it knows in extra columns that
tools reading only the first two ignore::

    signal_type,signal_str,pdq_quality,phash,sha256,bank,listing_id,seller_id,source_url,
    added_at,note,karung_hash_version

``signal_type`` is ``pdq`` for entries with a PDQ hash, else ``phash`` (imagehash's 16 hex
digits) or ``sha256``. On import only ``signal_type`` and ``signal_str`` are required; other
signal types are reported as malformed rows (the rest still load). A PDQ hash without
``pdq_quality`` is taken as usable (quality 50: the list's owner vouched for it) and, without
``karung_hash_version``, as version 1, the reference PDQ every other tool computes. Exported
version-2 hashes (PDQ of the 64 x 64 normalised image) lie about 11 bits (at most 30 on 80 CC0
photos) from the reference hash of the same photo; the ``karung_hash_version`` column says
which is which, so karung never compares the two.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any, Final, TextIO

from karung.serve.bank.csv_io import parse_int, parse_time
from karung.serve.bank.errors import BankError, InvalidEntry, MalformedCsvRow
from karung.serve.bank.store import Entry, NewEntry
from karung.vision.errors import KarungVisionError
from karung.vision.hash_kinds import KINDS, PDQ, PHASH
from karung.vision.hashing import MIN_PDQ_QUALITY, REFERENCE_VERSION

COLUMNS: Final = (
    "signal_type",
    "signal_str",
    "pdq_quality",
    "phash",
    "sha256",
    "bank",
    "listing_id",
    "seller_id",
    "source_url",
    "added_at",
    "note",
    "karung_hash_version",
)
SIGNAL_TYPES: Final = (*KINDS, "sha256")
_TEXT_COLUMNS: Final = ("listing_id", "seller_id", "source_url", "note")


def write_te_csv(entries: Iterable[Entry], out: TextIO) -> int:
    """Write the header and one row per entry; return the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for entry in entries:
        writer.writerow(_row(entry))
        count += 1
    return count


def _row(entry: Entry) -> list[Any]:
    if entry.pdq is not None:
        signal, text = PDQ.name, entry.pdq.hex()
    elif entry.phash is not None:
        signal, text = PHASH.name, entry.phash.hex()
    else:
        signal, text = "sha256", entry.sha256 or ""
    data = entry.to_dict()
    values = {
        "signal_type": signal,
        "signal_str": text,
        "pdq_quality": entry.pdq_quality if signal == PDQ.name else None,
        "phash": data["phash"] if signal != PHASH.name else None,
        "sha256": entry.sha256 if signal != "sha256" else None,
        "karung_hash_version": entry.hash_version,
        **{k: data[k] for k in ("bank", "added_at", *_TEXT_COLUMNS)},
    }
    return ["" if values[c] is None else values[c] for c in COLUMNS]


def read_te_csv(source: TextIO, *, bank: str | None = None) -> Iterator[NewEntry | MalformedCsvRow]:
    """Parse a ThreatExchange-style list; an entry per good row, a :class:`MalformedCsvRow` per
    bad one (``bank`` fills rows without a bank column).

    Raises:
        MalformedCsvRow: on line 1 when the header lacks ``signal_type`` or ``signal_str``.
    """
    reader = csv.DictReader(source)
    header = reader.fieldnames or []
    if not {"signal_type", "signal_str"} <= set(header):
        raise MalformedCsvRow(1, "a ThreatExchange list needs signal_type and signal_str columns")
    for row in reader:
        try:
            yield _parse(row, bank)
        except (BankError, KarungVisionError, ValueError) as exc:
            yield MalformedCsvRow(reader.line_num, str(exc))


def _parse(row: dict[Any, Any], bank: str | None) -> NewEntry:
    values = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in row.items() if k}
    signal = (values.get("signal_type") or "").lower()
    text = values.get("signal_str") or ""
    if signal not in SIGNAL_TYPES:
        raise InvalidEntry(f"signal_type must be one of {list(SIGNAL_TYPES)}, got {signal!r}")
    kwargs: dict[str, Any] = {"bank": values.get("bank") or bank}
    if kwargs["bank"] is None:
        raise InvalidEntry("no bank: fill the bank column or pass a default bank")
    sha = text if signal == "sha256" else values.get("sha256")
    kwargs["sha256"] = sha.lower() if sha else None
    phash = text if signal == PHASH.name else values.get("phash")
    kwargs["phash"] = PHASH.parse(phash) if phash else None
    if signal == PDQ.name:
        kwargs["pdq"] = PDQ.parse(text)
        quality = values.get("pdq_quality")
        kwargs["pdq_quality"] = parse_int("pdq_quality", quality) if quality else MIN_PDQ_QUALITY
    version = values.get("karung_hash_version")
    kwargs["hash_version"] = (
        parse_int("karung_hash_version", version) if version else REFERENCE_VERSION
    )
    for column in _TEXT_COLUMNS:
        kwargs[column] = values.get(column)
    added = values.get("added_at")
    kwargs["added_at"] = parse_time(added) if added else None
    return NewEntry(**kwargs)
