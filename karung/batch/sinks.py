"""What a backfill writes to the service's database: review-band items, banked photos and
bank-match events (the seller links the service records for live traffic).

All run on the driver, once per shard, before the shard file is renamed into place. All are
idempotent (the queue keeps one pending item per sha256, a bank one entry per sha256, the event
log one event per photo, seller and entry), so a shard redone after a kill adds nothing twice.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine

from karung.serve.bank.store import BankStore, MatchEvent, NewEntry
from karung.serve.db import session_factory
from karung.serve.review.queue import QueueItemIn, enqueue
from karung.serve.verdict import Match


@dataclass
class SinkCounts:
    """Running totals of the database writes of one run."""

    enqueued: int = 0
    banked: int = 0  # entries created (an entry already in the bank is not counted)
    match_events: int = 0  # new seller-link evidence (karung bank sellers, /v1/sellers)


class DatabaseSink:
    """Enqueues review-band rows (with thumbnails) and banks rows that carry a bank entry."""

    def __init__(
        self, engine: Engine, block_threshold: float, record_matches: bool = False
    ) -> None:
        self.sessions = session_factory(engine)
        self.store = BankStore(engine)
        self.block_threshold = block_threshold
        self.record_matches = record_matches
        self.counts = SinkCounts()

    def write(self, table: pa.Table) -> None:
        """Handle the private columns of one shard's worker rows."""
        queued = [r for r in _rows_with(table, "_thumbnail")]
        if queued:
            with self.sessions() as session, session.begin():
                for row in queued:
                    enqueue(session, self._queue_item(row))
            self.counts.enqueued += len(queued)
        entries: list[NewEntry] = [
            pickle.loads(r["_bank_entry"]) for r in _rows_with(table, "_bank_entry")
        ]
        if entries:
            results = self.store.add(entries)
            self.counts.banked += sum(1 for r in results if r.created)
        if self.record_matches:
            events = [e for r in table.to_pylist() for e in _events(r)]
            self.counts.match_events += self.store.record_events(events) if events else 0

    def _queue_item(self, row: dict[str, Any]) -> QueueItemIn:
        return QueueItemIn(
            sha256=row["sha256"],
            thumbnail=row["_thumbnail"],
            scores=dict(row["scores"]),
            risk=float(row["risk"]),
            # The model's own decision (a bank match's block is the final decision, not its).
            model_decision=row["model_decision"] or row["decision"],
            model_version=row["model_version"],
            block_threshold=self.block_threshold,
            reason="review_band",
            url=row["url"],
            listing_id=row["listing_id"],
            seller_id=row["seller_id"],
            matches=tuple(Match.from_dict(m) for m in row["matches"] or []),
        )


def _events(row: dict[str, Any]) -> list[MatchEvent]:
    """The match events the service records for a scored photo that matched the bank."""
    return [
        MatchEvent(
            query_sha256=row["sha256"],
            seller_id=row["seller_id"],
            listing_id=row["listing_id"],
            entry_id=int(m["entry_id"]),
            bank=m["bank"],
            entry_seller_id=m["seller_id"],
            entry_listing_id=m["listing_id"],
            kind=m["kind"],
            distance=int(m["distance"]),
        )
        for m in row["matches"] or []
    ]


def _rows_with(table: pa.Table, column: str) -> list[dict[str, Any]]:
    """The rows of ``table`` whose ``column`` is set."""
    mask = table.column(column).is_valid()
    return list(table.filter(mask).to_pylist())
