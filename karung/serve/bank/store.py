"""Persistence of the hash bank: banks, entries, the version counter and the change log.

Every writing transaction starts by bumping ``bank_state.version`` (one row). That first write
takes SQLite's write lock (or PostgreSQL's row lock) before anything is read, so concurrent
writers are serialised and the idempotency checks that follow see every committed entry; a
transaction that turns out to change nothing is rolled back and leaves the version alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from PIL import Image
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from karung.serve.bank.errors import BankNotFound, EntryNotFound, InvalidBankSetting, InvalidEntry
from karung.serve.bank.models import (
    DEFAULT_PDQ_THRESHOLD,
    DEFAULT_PHASH_THRESHOLD,
    STATE_ROW_ID,
    BankRow,
    ChangeRow,
    EntryRow,
    MatchEventRow,
    StateRow,
)
from karung.serve.db import session_factory
from karung.vision.crops import MAX_CROPS, CropHashes, decode_crops, encode_crops
from karung.vision.hashing import (
    HASH_BITS,
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
ADD_BATCH: Final = 1000


def validate_bank_name(name: str) -> str:
    """Return ``name`` when it is a valid bank name (letters, digits, ``_.:-``; 1..64 chars)."""
    if not isinstance(name, str) or not BANK_NAME_RE.match(name):
        raise InvalidBankSetting(
            f"invalid bank name {name!r}: use 1-64 letters, digits, '_', '.', ':' or '-'"
        )
    return name


def validate_threshold(kind: str, value: int) -> int:
    """Return ``value`` when it is a sensible Hamming threshold for ``kind`` (0..half the bits)."""
    top = HASH_BITS[kind] // 2
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
            if value is not None and value.kind != "phash":
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
    if value.kind != "pdq":
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
        return cls(
            id=int(row.id),
            bank=row.bank,
            sha256=row.sha256,
            pdq=_hash("pdq", row.pdq),
            pdq_quality=row.pdq_quality,
            phash=_hash("phash", row.phash),
            trim_pdq=_hash("pdq", row.trim_pdq),
            trim_pdq_quality=row.trim_pdq_quality,
            trim_phash=_hash("phash", row.trim_phash),
            listing_id=row.listing_id,
            seller_id=row.seller_id,
            source_url=row.source_url,
            added_at=as_utc(row.added_at),
            added_by=row.added_by,
            note=row.note,
            crops=decode_crops(row.crop_hashes),
            hash_version=int(row.hash_version),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (hashes as hex, time as ISO 8601)."""
        return {
            "id": self.id,
            "bank": self.bank,
            "sha256": self.sha256,
            "pdq": self.pdq.hex() if self.pdq else None,
            "pdq_quality": self.pdq_quality,
            "phash": self.phash.hex() if self.phash else None,
            "trim_pdq": self.trim_pdq.hex() if self.trim_pdq else None,
            "trim_pdq_quality": self.trim_pdq_quality,
            "trim_phash": self.trim_phash.hex() if self.trim_phash else None,
            "listing_id": self.listing_id,
            "seller_id": self.seller_id,
            "source_url": self.source_url,
            "added_at": self.added_at.isoformat(),
            "added_by": self.added_by,
            "note": self.note,
            "crop_hashes": encode_crops(self.crops),
            "hash_version": self.hash_version,
        }


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC, so say so."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _hash(kind: str, text: str | None) -> HashValue | None:
    return None if text is None else HashValue.from_hex(kind, text)


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
        return {
            "name": self.name,
            "enabled": self.enabled,
            "pdq_threshold": self.pdq_threshold,
            "phash_threshold": self.phash_threshold,
            "created_at": self.created_at.isoformat(),
            "description": self.description,
            "entries": self.entries,
        }


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
        out: dict[str, Any] = {k: getattr(self, k) for k in _EVENT_FIELDS}
        out["id"] = self.id
        out["created_at"] = self.created_at.isoformat() if self.created_at else None
        return out


_EVENT_FIELDS: Final = (
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


_INDEX_COLUMNS: Final = (
    EntryRow.id,
    EntryRow.bank,
    EntryRow.sha256,
    EntryRow.pdq,
    EntryRow.pdq_quality,
    EntryRow.phash,
    EntryRow.trim_pdq,
    EntryRow.trim_pdq_quality,
    EntryRow.trim_phash,
    EntryRow.crop_hashes,
    EntryRow.hash_version,
)


_HASH_COLUMNS: Final = (
    "pdq",
    "pdq_quality",
    "phash",
    "trim_pdq",
    "trim_pdq_quality",
    "trim_phash",
    "crop_hashes",
    "hash_version",
)


class BankStore:
    """Banks and entries in SQLite or PostgreSQL (the schema is migrated beforehand)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)

    # -- writing ---------------------------------------------------------------------------------

    def add(self, entries: Sequence[NewEntry]) -> list[AddResult]:
        """Add entries (idempotent per bank and sha256), committing every :data:`ADD_BATCH`."""
        results: list[AddResult] = []
        for start in range(0, len(entries), ADD_BATCH):
            with self.sessions() as session:
                results.extend(self.add_in(session, entries[start : start + ADD_BATCH]))
                if any(r.created for r in results[start:]):
                    session.commit()
                else:
                    session.rollback()  # nothing new: leave the version alone
        return results

    def add_in(self, session: Session, entries: Sequence[NewEntry]) -> list[AddResult]:
        """Add entries inside the caller's transaction (the caller commits)."""
        if not entries:
            return []
        version = _bump(session)
        results: list[AddResult] = []
        for item in entries:
            found = _find_existing(session, item)
            if found is not None:
                results.append(AddResult(Entry.from_row(found), created=False))
                continue
            _ensure_bank(session, item.bank, version)
            row = _new_row(item)
            session.add(row)
            session.flush()
            session.add(ChangeRow(version=version, op="add", bank=item.bank, entry_id=row.id))
            results.append(AddResult(Entry.from_row(row), created=True))
        session.flush()
        return results

    def remove(self, entry_id: int) -> Entry:
        """Remove one entry and return it; :class:`EntryNotFound` when there is none."""
        with self.sessions() as session:
            version = _bump(session)
            row = session.get(EntryRow, entry_id)
            if row is None:
                session.rollback()
                raise EntryNotFound(f"no bank entry with id {entry_id}")
            entry = Entry.from_row(row)
            _delete(session, [row], version)
            session.commit()
            return entry

    def rehash(self, updates: Sequence[tuple[int, NewEntry]]) -> int:
        """Replace the hashes (and hash version) of existing entries; metadata is kept.

        Each item is ``(entry id, entry holding the new hashes)``. Replicas see each entry
        removed and added again in one version. Returns the number of entries updated (ids no
        longer in the bank are skipped).
        """
        done = 0
        for start in range(0, len(updates), ADD_BATCH):
            with self.sessions() as session:
                version = _bump(session)
                for entry_id, item in updates[start : start + ADD_BATCH]:
                    row = session.get(EntryRow, entry_id)
                    if row is None:
                        continue
                    fresh = _new_row(item)
                    for column in _HASH_COLUMNS:
                        setattr(row, column, getattr(fresh, column))
                    for op in ("remove", "add"):
                        session.add(
                            ChangeRow(version=version, op=op, bank=row.bank, entry_id=row.id)
                        )
                    done += 1
                session.commit()
        return done

    def remove_in(self, session: Session, entry_ids: Sequence[int], bank: str | None = None) -> int:
        """Remove the given entries (of ``bank`` when given) inside the caller's transaction."""
        if not entry_ids:
            return 0
        version = _bump(session)
        query = select(EntryRow).where(EntryRow.id.in_([int(i) for i in entry_ids]))
        if bank is not None:
            query = query.where(EntryRow.bank == bank)
        rows = list(session.scalars(query))
        _delete(session, rows, version)
        return len(rows)

    def configure_bank(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        pdq_threshold: int | None = None,
        phash_threshold: int | None = None,
        description: str | None = None,
        create: bool = False,
    ) -> BankInfo:
        """Change a bank's settings (``create`` makes it when missing, else BankNotFound)."""
        validate_bank_name(name)
        if pdq_threshold is not None:
            validate_threshold("pdq", pdq_threshold)
        if phash_threshold is not None:
            validate_threshold("phash", phash_threshold)
        with self.sessions() as session:
            version = _bump(session)
            row = session.get(BankRow, name)
            if row is None and not create:
                session.rollback()
                raise BankNotFound(f"no bank named {name!r}")
            row = row or _ensure_bank(session, name, version)
            for attr, value in (
                ("enabled", enabled),
                ("pdq_threshold", pdq_threshold),
                ("phash_threshold", phash_threshold),
                ("description", description),
            ):
                if value is not None:
                    setattr(row, attr, value)
            session.add(ChangeRow(version=version, op="bank", bank=name, entry_id=None))
            session.commit()
        return self.bank(name)

    def record_events(self, events: Sequence[MatchEvent]) -> int:
        """Store match events, skipping ones already recorded; return how many were new."""
        new = 0
        with self.sessions() as session:
            for event in events:
                seen = session.scalar(
                    select(MatchEventRow.id).where(
                        MatchEventRow.query_sha256 == event.query_sha256,
                        _is(MatchEventRow.seller_id, event.seller_id),
                        MatchEventRow.entry_id == event.entry_id,
                    )
                )
                if seen is None:
                    session.add(MatchEventRow(**{k: getattr(event, k) for k in _EVENT_FIELDS}))
                    session.flush()
                    new += 1
            session.commit()
        return new

    # -- reading ---------------------------------------------------------------------------------

    def version(self) -> int:
        """The change counter (0 for a new bank)."""
        with self.sessions() as session:
            return int(
                session.scalar(select(StateRow.version).where(StateRow.id == STATE_ROW_ID)) or 0
            )

    def changes_since(self, version: int) -> list[Change]:
        """Changes made after ``version``, oldest first."""
        with self.sessions() as session:
            rows = session.scalars(
                select(ChangeRow).where(ChangeRow.version > version).order_by(ChangeRow.id)
            )
            return [Change(int(r.version), r.op, r.bank, r.entry_id) for r in rows]

    def get(self, entry_id: int) -> Entry:
        """One entry; :class:`EntryNotFound` when there is none."""
        with self.sessions() as session:
            row = session.get(EntryRow, entry_id)
            if row is None:
                raise EntryNotFound(f"no bank entry with id {entry_id}")
            return Entry.from_row(row)

    def get_many(self, entry_ids: Sequence[int]) -> dict[int, Entry]:
        """The entries that exist among ``entry_ids``, by id."""
        if not entry_ids:
            return {}
        with self.sessions() as session:
            rows = session.scalars(select(EntryRow).where(EntryRow.id.in_(list(entry_ids))))
            return {int(r.id): Entry.from_row(r) for r in rows}

    def entries(
        self, bank: str | None = None, *, after_id: int = 0, limit: int | None = None
    ) -> list[Entry]:
        """Entries (of ``bank`` when given) with ids above ``after_id``, oldest first."""
        return list(self.iter_entries(bank, after_id=after_id, limit=limit))

    def iter_entries(
        self,
        bank: str | None = None,
        *,
        after_id: int = 0,
        limit: int | None = None,
        batch: int = 2000,
    ) -> Iterator[Entry]:
        """Stream entries in id order, one short query per ``batch`` (keyset pagination)."""
        remaining = limit
        while remaining is None or remaining > 0:
            size = batch if remaining is None else min(batch, remaining)
            with self.sessions() as session:
                query = select(EntryRow).where(EntryRow.id > after_id)
                if bank is not None:
                    query = query.where(EntryRow.bank == bank)
                rows = list(session.scalars(query.order_by(EntryRow.id).limit(size)))
            yield from (Entry.from_row(r) for r in rows)
            if len(rows) < size:
                return
            after_id = int(rows[-1].id)
            remaining = None if remaining is None else remaining - len(rows)

    def entries_by_sha256(self, sha256: str) -> list[Entry]:
        """Every entry (of any bank) banked from the photo with this sha256."""
        with self.sessions() as session:
            query = select(EntryRow).where(EntryRow.sha256 == sha256).order_by(EntryRow.id)
            return [Entry.from_row(r) for r in session.scalars(query)]

    def version_counts(self) -> dict[int, int]:
        """Number of entries per hash version."""
        with self.sessions() as session:
            query = select(EntryRow.hash_version, func.count()).group_by(EntryRow.hash_version)
            return {int(v): int(n) for v, n in session.execute(query).all()}

    def index_rows(self, enabled_only: bool = True, batch: int = 20000) -> Iterator[IndexRow]:
        """The hash columns of every entry (of enabled banks), streamed in id order."""
        after = 0
        while True:
            with self.sessions() as session:
                query = select(*_INDEX_COLUMNS).where(EntryRow.id > after)
                if enabled_only:
                    query = query.join(BankRow, BankRow.name == EntryRow.bank).where(
                        BankRow.enabled.is_(True)
                    )
                rows = session.execute(query.order_by(EntryRow.id).limit(batch)).all()
            yield from (IndexRow(*r) for r in rows)
            if len(rows) < batch:
                return
            after = int(rows[-1][0])

    def index_rows_by_id(self, entry_ids: Sequence[int]) -> list[IndexRow]:
        """The hash columns of the given entries (those that still exist)."""
        if not entry_ids:
            return []
        with self.sessions() as session:
            query = select(*_INDEX_COLUMNS).where(EntryRow.id.in_(list(entry_ids)))
            return [IndexRow(*r) for r in session.execute(query).all()]

    def banks(self) -> list[BankInfo]:
        """Every bank with its entry count, by name."""
        with self.sessions() as session:
            counts = dict(
                session.execute(
                    select(EntryRow.bank, func.count(EntryRow.id)).group_by(EntryRow.bank)
                ).all()
            )
            rows = session.scalars(select(BankRow).order_by(BankRow.name))
            return [replace(_bank_info(r), entries=int(counts.get(r.name, 0))) for r in rows]

    def bank(self, name: str) -> BankInfo:
        """One bank; :class:`BankNotFound` when there is none."""
        for info in self.banks():
            if info.name == name:
                return info
        raise BankNotFound(f"no bank named {name!r}")

    def match_events(self, seller_ids: Sequence[str] | None = None) -> list[MatchEvent]:
        """Recorded match events (involving ``seller_ids`` when given), oldest first."""
        with self.sessions() as session:
            query = select(MatchEventRow)
            if seller_ids is not None:
                ids = list(seller_ids)
                query = query.where(
                    MatchEventRow.seller_id.in_(ids) | MatchEventRow.entry_seller_id.in_(ids)
                )
            rows = session.scalars(query.order_by(MatchEventRow.id))
            return [_event(r) for r in rows]


def _bump(session: Session) -> int:
    """Increment the version first thing in the transaction (see the module docstring)."""
    session.execute(
        update(StateRow).where(StateRow.id == STATE_ROW_ID).values(version=StateRow.version + 1)
    )
    return int(session.scalar(select(StateRow.version).where(StateRow.id == STATE_ROW_ID)) or 0)


def _ensure_bank(session: Session, name: str, version: int) -> BankRow:
    row = session.get(BankRow, name)
    if row is None:
        row = BankRow(
            name=name,
            enabled=True,
            pdq_threshold=DEFAULT_PDQ_THRESHOLD,
            phash_threshold=DEFAULT_PHASH_THRESHOLD,
        )
        session.add(row)
        session.add(ChangeRow(version=version, op="bank", bank=name, entry_id=None))
        session.flush()
    return row


def _find_existing(session: Session, item: NewEntry) -> EntryRow | None:
    """The stored twin of ``item``: same bank and sha256, or same hashes when it has no sha256."""
    query = select(EntryRow).where(EntryRow.bank == item.bank)
    if item.sha256 is not None:
        query = query.where(EntryRow.sha256 == item.sha256)
    else:
        query = query.where(
            EntryRow.sha256.is_(None),
            _is(EntryRow.pdq, item.pdq.hex() if item.pdq else None),
            _is(EntryRow.phash, item.phash.hex() if item.phash else None),
        )
    return session.scalars(query.limit(1)).first()


def _is(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def _new_row(item: NewEntry) -> EntryRow:
    row = EntryRow(
        bank=item.bank,
        sha256=item.sha256,
        pdq=item.pdq.hex() if item.pdq else None,
        pdq_quality=item.pdq_quality,
        phash=item.phash.hex() if item.phash else None,
        trim_pdq=item.trim_pdq.hex() if item.trim_pdq else None,
        trim_pdq_quality=item.trim_pdq_quality,
        trim_phash=item.trim_phash.hex() if item.trim_phash else None,
        crop_hashes=encode_crops(item.crops),
        hash_version=item.hash_version,
        listing_id=item.listing_id,
        seller_id=item.seller_id,
        source_url=item.source_url,
        added_by=item.added_by,
        note=item.note,
    )
    if item.added_at is not None:
        row.added_at = item.added_at
    return row


def _delete(session: Session, rows: Sequence[EntryRow], version: int) -> None:
    for row in rows:
        session.add(ChangeRow(version=version, op="remove", bank=row.bank, entry_id=row.id))
    if rows:
        session.execute(delete(EntryRow).where(EntryRow.id.in_([r.id for r in rows])))
    session.flush()


def _bank_info(row: BankRow) -> BankInfo:
    return BankInfo(
        name=row.name,
        enabled=bool(row.enabled),
        pdq_threshold=int(row.pdq_threshold),
        phash_threshold=int(row.phash_threshold),
        created_at=as_utc(row.created_at),
        description=row.description,
    )


def _event(row: MatchEventRow) -> MatchEvent:
    return MatchEvent(
        **{k: getattr(row, k) for k in _EVENT_FIELDS},
        id=int(row.id),
        created_at=as_utc(row.created_at),
    )


__all__ = [
    "AddResult",
    "BankInfo",
    "BankStore",
    "Change",
    "Entry",
    "IndexRow",
    "MatchEvent",
    "NewEntry",
]
