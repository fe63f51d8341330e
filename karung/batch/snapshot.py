"""A read-only snapshot of the hash bank, read from the database once by the driver.

The service's :class:`karung.serve.bank.matcher.Matcher` reads a :class:`BankStore`; here the
store is replaced by :class:`SnapshotStore`, which answers the matcher's few questions (version,
banks, index rows, metadata of matched entries) from memory. The snapshot is plain data, so it
pickles into Ray's object store once and every worker builds the same in-memory indexes from
it: matching in a backfill is the service's matching, against the bank as it stood at the start.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, select

from karung.serve.bank.matcher import Matcher
from karung.serve.bank.models import EntryRow
from karung.serve.bank.store import BankInfo, BankStore, Change, Entry, IndexRow

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# (id, bank, sha256, listing_id, seller_id, source_url): what a Match reports of an entry.
EntryMeta = tuple[int, str, str | None, str | None, str | None, str | None]


@dataclass(frozen=True)
class BankSnapshot:
    """The bank at one version: settings, indexed hash columns and match metadata."""

    version: int
    banks: tuple[BankInfo, ...]
    rows: tuple[IndexRow, ...]
    meta: dict[int, EntryMeta]

    @classmethod
    def read(cls, engine: Engine) -> BankSnapshot:
        """Read the bank from a migrated database (version first, like the matcher's load)."""
        store = BankStore(engine)
        version = store.version()
        banks = tuple(store.banks())
        rows = tuple(store.index_rows())
        columns = (
            EntryRow.id,
            EntryRow.bank,
            EntryRow.sha256,
            EntryRow.listing_id,
            EntryRow.seller_id,
            EntryRow.source_url,
        )
        with store.sessions() as session:
            meta = {int(r[0]): tuple(r) for r in session.execute(select(*columns)).all()}
        return cls(version, banks, rows, meta)

    @classmethod
    def empty(cls) -> BankSnapshot:
        """A bank without entries (no ``--db``: nothing matches)."""
        return cls(0, (), (), {})

    @property
    def entries(self) -> int:
        """Indexed entries (of enabled banks)."""
        return len(self.rows)

    def matcher(self) -> Matcher:
        """A loaded matcher over this snapshot (build it once per worker)."""
        matcher = Matcher(SnapshotStore(self))
        matcher.load()
        return matcher


class SnapshotStore(BankStore):
    """The parts of :class:`BankStore` the matcher reads, answered from a snapshot."""

    def __init__(self, snapshot: BankSnapshot) -> None:  # no engine: nothing is written
        self.snapshot = snapshot

    def version(self) -> int:
        """The snapshot's bank version."""
        return self.snapshot.version

    def changes_since(self, version: int) -> list[Change]:
        """A snapshot never changes."""
        return []

    def banks(self) -> list[BankInfo]:
        """Banks and their thresholds at snapshot time."""
        return list(self.snapshot.banks)

    def index_rows(self, enabled_only: bool = True, batch: int = 20000) -> Iterator[IndexRow]:
        """The indexed rows (the snapshot holds those of enabled banks only)."""
        return iter(self.snapshot.rows)

    def index_rows_by_id(self, entry_ids: Sequence[int]) -> list[IndexRow]:
        """Rows by id (used only when following changes, which a snapshot has none of)."""
        wanted = set(entry_ids)
        return [r for r in self.snapshot.rows if r.id in wanted]

    def get_many(self, entry_ids: Sequence[int]) -> dict[int, Entry]:
        """Minimal entries for the matches' metadata (hashes are not needed there)."""
        out: dict[int, Entry] = {}
        for entry_id in entry_ids:
            meta = self.snapshot.meta.get(int(entry_id))
            if meta is not None:
                out[int(entry_id)] = _entry(meta)
        return out


def _entry(meta: EntryMeta) -> Entry:
    entry_id, bank, sha256, listing_id, seller_id, source_url = meta
    return Entry(
        id=entry_id,
        bank=bank,
        sha256=sha256,
        pdq=None,
        pdq_quality=None,
        phash=None,
        trim_pdq=None,
        trim_pdq_quality=None,
        trim_phash=None,
        listing_id=listing_id,
        seller_id=seller_id,
        source_url=source_url,
        added_at=_EPOCH,
        added_by=None,
        note=None,
    )
