"""Persistence of the hash bank: banks, entries, the version counter and the change log (the
value types live in :mod:`karung.serve.bank.entries` and are re-exported here).

Every writing transaction starts by bumping ``bank_state.version`` (one row). That first write
takes SQLite's write lock (or PostgreSQL's row lock) before anything is read, so concurrent
writers are serialised and the idempotency checks that follow see every committed entry; a
transaction that turns out to change nothing is rolled back and leaves the version alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Final

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from karung.serve.bank.entries import (
    EVENT_FIELDS,
    HASH_COLUMNS,
    AddResult,
    BankInfo,
    Change,
    Entry,
    IndexRow,
    MatchEvent,
    NewEntry,
    bank_info,
    entry_row,
    match_event,
    validate_bank_name,
    validate_threshold,
)
from karung.serve.bank.errors import BankNotFound, EntryNotFound
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

ADD_BATCH: Final = 1000


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


_HASH_COLUMNS: Final = (*HASH_COLUMNS, "crop_hashes", "hash_version")


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
            row = entry_row(item)
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
                    fresh = entry_row(item)
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
                    session.add(MatchEventRow(**{k: getattr(event, k) for k in EVENT_FIELDS}))
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
            return [replace(bank_info(r), entries=int(counts.get(r.name, 0))) for r in rows]

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
            return [match_event(r) for r in rows]


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


def _delete(session: Session, rows: Sequence[EntryRow], version: int) -> None:
    for row in rows:
        session.add(ChangeRow(version=version, op="remove", bank=row.bank, entry_id=row.id))
    if rows:
        session.execute(delete(EntryRow).where(EntryRow.id.in_([r.id for r in rows])))
    session.flush()


__all__ = [
    "HASH_COLUMNS",
    "AddResult",
    "BankInfo",
    "BankStore",
    "Change",
    "Entry",
    "IndexRow",
    "MatchEvent",
    "NewEntry",
    "validate_bank_name",
    "validate_threshold",
]
