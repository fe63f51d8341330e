"""The backfill's database writes (review queue, bank) on SQLite and PostgreSQL: once per photo,
however often a shard is redone."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit.pg import fresh_database
from serve.servekit import jpeg
from sqlalchemy import func, select

from karung.batch.schema import empty_row, to_table
from karung.batch.sinks import DatabaseSink
from karung.batch.snapshot import BankSnapshot
from karung.serve.bank.models import EntryRow, MatchEventRow
from karung.serve.bank.store import NewEntry
from karung.serve.db import make_engine, migrate
from karung.serve.review.models import ReviewItem
from karung.serve.review.queue import make_thumbnail
from karung.vision.decode import decode_image
from karung.vision.hashing import compute_hashes, decode_for_hashing


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'k.db'}"
        return
    with fresh_database("karung_t") as url:
        yield url


def worker_row(i: int, seed: int, seller: str, review: bool) -> dict[str, object]:
    data = jpeg(seed)
    image = decode_image(data, max_bytes=1 << 24, max_pixels=1 << 24, target_size=64)
    hashes = compute_hashes(decode_for_hashing(data, max_bytes=1 << 24, max_pixels=1 << 24))
    sha = f"{seed:064x}"
    row = empty_row({"input_index": i, "seller_id": seller, "url": f"http://x/{seed}"}, "m1")
    row.update(sha256=sha, scores={"bale": 0.5, "sack": 0.1}, risk=0.6, decision="review")
    if review:
        row["_thumbnail"] = make_thumbnail(image)
    entry = NewEntry.from_hashes("backfill", sha, hashes, seller_id=seller)
    row["_bank_entry"] = pickle.dumps(entry)
    return row


def test_queue_and_bank_writes_are_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    try:
        sink = DatabaseSink(engine, block_threshold=0.9, record_matches=True)
        rows = [worker_row(0, 1, "S1", True), worker_row(1, 2, "S2", False)]
        rows[1]["matches"] = [{
            "entry_id": 7, "bank": "stolen", "kind": "pdq", "distance": 4,
            "listing_id": "L-OLD", "seller_id": "S-OLD", "source_url": None,
        }]  # fmt: skip
        rows.append(worker_row(2, 1, "S3", True))  # the same photo again, another seller
        table = to_table(rows)
        sink.write(table)
        sink.write(table)  # the shard redone after a kill
        with engine.connect() as conn:
            queued = conn.execute(select(func.count(ReviewItem.id))).scalar_one()
            banked = conn.execute(select(func.count(EntryRow.id))).scalar_one()
            events = conn.execute(select(MatchEventRow.seller_id, MatchEventRow.entry_seller_id))
            links = [tuple(e) for e in events]
        assert (queued, banked) == (1, 2)
        assert links == [("S2", "S-OLD")]
        assert sink.counts.banked == 2
        assert BankSnapshot.read(engine).entries == 2  # the next run's snapshot sees them
    finally:
        engine.dispose()
