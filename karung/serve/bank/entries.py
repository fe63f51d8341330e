"""The bank's value types: entries to add and stored, banks, changes, match events, the rows the
matcher indexes, and their validators (no database access; :mod:`karung.serve.bank.store` is
the repository that reads and writes them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Final

from PIL import Image

from karung.serve.bank.errors import InvalidBankSetting, InvalidEntry
from karung.serve.bank.models import BankRow, EntryRow, MatchEventRow
from karung.vision.crops import MAX_CROPS, CropHashes, decode_crops, encode_crops
from karung.vision.hash_kinds import PDQ, PHASH, hash_kind
from karung.vision.hashing import (
    HASH_VERSION,
    REFERENCE_VERSION,
    HashValue,
    ImageHashes,
    compute_hashes,
)

BANK_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")
# Longest accepted text of each metadata field (the column widths).
TEXT_LIMITS: Final = {
    "listing_id": 256,
    "seller_id": 256,
    "source_url": 2048,
    "added_by": 128,
    "note": 1024,
}


def validate_bank_name(name: str) -> str:
    """Return ``name`` when it is a valid bank name (letters, digits, ``_.:-``; 1..64 chars)."""
    if not isinstance(name, str) or not BANK_NAME_RE.match(name):
        raise InvalidBankSetting(
            f"invalid bank name {name!r}: use 1-64 letters, digits, '_', '.', ':' or '-'"
        )
    return name


def validate_threshold(kind: str, value: int) -> int:
    """Return ``value`` when it is a sensible Hamming threshold for ``kind`` (0..half the bits)."""
    top = hash_kind(kind).max_threshold
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise InvalidBankSetting(f"{kind} threshold must be an integer in 0..{top}, got {value!r}")
    return value


@dataclass(frozen=True)
class NewEntry:
    """An entry to add: the bank, at least one of sha256/PDQ/pHash, and metadata."""

    bank: str
    sha256: str | None
    pdq: HashValue | None = None
    pdq_quality: int | None = None
    phash: HashValue | None = None
    trim_pdq: HashValue | None = None
    trim_pdq_quality: int | None = None
    trim_phash: HashValue | None = None
    listing_id: str | None = None
    seller_id: str | None = None
    source_url: str | None = None
    added_by: str | None = None
    note: str | None = None
    added_at: datetime | None = None
    crops: tuple[CropHashes, ...] = ()
    hash_version: int = HASH_VERSION

    def __post_init__(self) -> None:
        validate_bank_name(self.bank)
        if self.hash_version not in (REFERENCE_VERSION, HASH_VERSION):
            raise InvalidEntry(
                f"hash_version must be {REFERENCE_VERSION} or {HASH_VERSION}, "
                f"got {self.hash_version!r}"
            )
        if self.sha256 is not None and not SHA256_RE.match(self.sha256):
            raise InvalidEntry(f"sha256 must be 64 lower-case hex digits, got {self.sha256!r}")
        if self.sha256 is None and self.pdq is None and self.phash is None:
            raise InvalidEntry("an entry needs at least one of sha256, pdq and phash")
        _check_hash_pair("pdq", self.pdq, self.pdq_quality)
        _check_hash_pair("pdq", self.trim_pdq, self.trim_pdq_quality)
        for name, value in (("phash", self.phash), ("trim_phash", self.trim_phash)):
            if value is not None and value.kind != PHASH.name:
                raise InvalidEntry(f"{name} must be a phash, got a {value.kind} hash")
        if not isinstance(self.crops, tuple) or len(self.crops) > MAX_CROPS:
            raise InvalidEntry(f"crops must be a tuple of at most {MAX_CROPS} crop variants")
        if any(not isinstance(c, CropHashes) for c in self.crops):
            raise InvalidEntry("crops must hold CropHashes")
        for name, limit in TEXT_LIMITS.items():
            text = getattr(self, name)
            if text is not None and (not isinstance(text, str) or len(text) > limit):
                raise InvalidEntry(f"{name} must be text of at most {limit} characters")

    @classmethod
    def from_image(cls, bank: str, sha256: str | None, image: Image.Image, **meta: Any) -> NewEntry:
        """An entry holding every hash of ``image``: plain, trimmed and the crop variants."""
        hashes = compute_hashes(image)
        crops = () if hashes.stored_crop is None else (hashes.stored_crop,)
        return cls.from_hashes(bank, sha256, hashes, crops=crops, **meta)

    @classmethod
    def from_hashes(
        cls,
        bank: str,
        sha256: str | None,
        hashes: ImageHashes,
        *,
        crops: tuple[CropHashes, ...] = (),
        **meta: Any,
    ) -> NewEntry:
        """An entry holding ``hashes`` (and their trimmed variant, when there is one) and the
        crop variants ``crops`` (:func:`karung.vision.crops.crop_hashes` of the same image)."""
        trimmed = hashes.trimmed
        return cls(
            bank=bank,
            sha256=sha256,
            pdq=hashes.pdq,
            pdq_quality=hashes.pdq_quality,
            phash=hashes.phash,
            trim_pdq=trimmed.pdq if trimmed else None,
            trim_pdq_quality=trimmed.pdq_quality if trimmed else None,
            trim_phash=trimmed.phash if trimmed else None,
            crops=crops,
            **meta,
        )


def _check_hash_pair(name: str, value: HashValue | None, quality: int | None) -> None:
    if value is None:
        if quality is not None:
            raise InvalidEntry(f"{name} quality given without a {name} hash")
        return
    if value.kind != PDQ.name:
        raise InvalidEntry(f"{name} must be a pdq hash, got a {value.kind} hash")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
        raise InvalidEntry(f"{name} quality must be an integer in 0..100, got {quality!r}")


@dataclass(frozen=True)
class Entry:
    """A stored entry."""

    id: int
    bank: str
    sha256: str | None
    pdq: HashValue | None
    pdq_quality: int | None
    phash: HashValue | None
    trim_pdq: HashValue | None
    trim_pdq_quality: int | None
    trim_phash: HashValue | None
    listing_id: str | None
    seller_id: str | None
    source_url: str | None
    added_at: datetime
    added_by: str | None
    note: str | None
    crops: tuple[CropHashes, ...] = ()
    hash_version: int = HASH_VERSION

    @classmethod
    def from_row(cls, row: EntryRow) -> Entry:
        """Convert an ORM row (hex columns become :class:`HashValue`)."""
        values = {name: getattr(row, name) for name in _ROW_FIELDS}
        for name, kind in _HASH_FIELDS.items():
            values[name] = _hash(kind, values[name])
        return cls(
            **values,
            id=int(row.id),
            added_at=as_utc(row.added_at),
            crops=decode_crops(row.crop_hashes),
            hash_version=int(row.hash_version),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (hashes as hex, time as ISO 8601, crops in their stored text)."""
        out = json_ready(self)
        out.pop("crops")
        out["crop_hashes"] = encode_crops(self.crops)
        out["hash_version"] = out.pop("hash_version")  # keeps its place after crop_hashes
        return out


# The hash columns of an entry (hashes and qualities), in the order tables and files list them.
HASH_COLUMNS: Final = ("pdq", "pdq_quality", "phash", "trim_pdq", "trim_pdq_quality", "trim_phash")
# Hash fields of an entry and their kinds; fields stored as they are (hashes as hex).
_HASH_FIELDS: Final = {
    "pdq": PDQ.name,
    "phash": PHASH.name,
    "trim_pdq": PDQ.name,
    "trim_phash": PHASH.name,
}
_ROW_FIELDS: Final = (
    *_HASH_FIELDS,
    *("bank", "sha256", "pdq_quality", "trim_pdq_quality"),
    *("listing_id", "seller_id", "source_url", "added_by", "note"),
)


def json_ready(record: Any) -> dict[str, Any]:
    """A dataclass's fields in order, hashes as hex and times in ISO 8601 (the JSON forms)."""
    out: dict[str, Any] = {}
    for item in fields(record):
        value = getattr(record, item.name)
        if isinstance(value, HashValue):
            value = value.hex()
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[item.name] = value
    return out


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC, so say so."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hash(kind: str, text: str | None) -> HashValue | None:
    return None if text is None else hash_kind(kind).parse(text)


@dataclass(frozen=True)
class AddResult:
    """The stored entry and whether this call created it (False: it was already there)."""

    entry: Entry
    created: bool


@dataclass(frozen=True)
class BankInfo:
    """A bank's settings and size."""

    name: str
    enabled: bool
    pdq_threshold: int
    phash_threshold: int
    created_at: datetime
    description: str | None
    entries: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return json_ready(self)


@dataclass(frozen=True)
class Change:
    """What ``version`` changed: ``op`` is ``add``, ``remove`` or ``bank``."""

    version: int
    op: str
    bank: str
    entry_id: int | None


@dataclass(frozen=True)
class MatchEvent:
    """A query image from ``seller_id`` that matched an entry of ``entry_seller_id``."""

    query_sha256: str
    seller_id: str | None
    listing_id: str | None
    entry_id: int
    bank: str
    entry_seller_id: str | None
    entry_listing_id: str | None
    kind: str
    distance: int
    id: int | None = None
    created_at: datetime | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return json_ready(self)


EVENT_FIELDS: Final = (
    "query_sha256",
    "seller_id",
    "listing_id",
    "entry_id",
    "bank",
    "entry_seller_id",
    "entry_listing_id",
    "kind",
    "distance",
)


@dataclass(frozen=True)
class IndexRow:
    """The columns the matcher indexes (no metadata: that is fetched only for matches)."""

    id: int
    bank: str
    sha256: str | None
    pdq: str | None
    pdq_quality: int | None
    phash: str | None
    trim_pdq: str | None
    trim_pdq_quality: int | None
    trim_phash: str | None
    crop_hashes: str | None
    hash_version: int


def entry_row(item: NewEntry) -> EntryRow:
    """The ORM row that stores ``item`` (hashes as hex, crops in their text form)."""
    values = {name: getattr(item, name) for name in _ROW_FIELDS}
    for name in _HASH_FIELDS:
        values[name] = values[name].hex() if values[name] is not None else None
    row = EntryRow(**values, crop_hashes=encode_crops(item.crops), hash_version=item.hash_version)
    if item.added_at is not None:
        row.added_at = item.added_at
    return row


def bank_info(row: BankRow) -> BankInfo:
    """The settings of a bank row (its entry count is filled in by the store)."""
    return BankInfo(
        name=row.name,
        enabled=bool(row.enabled),
        pdq_threshold=int(row.pdq_threshold),
        phash_threshold=int(row.phash_threshold),
        created_at=as_utc(row.created_at),
        description=row.description,
    )


def match_event(row: MatchEventRow) -> MatchEvent:
    """A stored match event."""
    return MatchEvent(
        **{k: getattr(row, k) for k in EVENT_FIELDS},
        id=int(row.id),
        created_at=as_utc(row.created_at),
    )
