"""Final decisions on the real hash bank (same database): add, undo, keep others' entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.db import make_engine, migrate, session_factory
from karung.serve.review.bankbridge import StoreBankWriter, bank_writer, match_image
from karung.serve.review.claims import claim_batch
from karung.serve.review.decisions import Policy, decide, undo_last
from karung.serve.review.effects import ReviewEffects
from karung.serve.review.models import ReviewItem
from karung.serve.verdict import Match

store_mod = pytest.importorskip("karung.serve.bank.store")
AddItems = Callable[..., list[int]]
POLICY = Policy(double_review_share=0.0)


@pytest.fixture
def bank_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'all.db'}")
    migrate(engine)  # every branch: bank and review share the database
    yield engine
    engine.dispose()


def _entries(engine: Engine, bank: str) -> list[object]:
    store = store_mod.BankStore(engine)
    from sqlalchemy import select

    from karung.serve.bank.models import EntryRow

    with store.sessions() as s:
        ids = s.scalars(select(EntryRow.id).where(EntryRow.bank == bank)).all()
    return list(store.get_many(list(ids)).values())


def _decide(
    factory: sessionmaker[Session], effects: ReviewEffects, item_id: int, label: str
) -> None:
    with factory.begin() as s:
        claim_batch(s, "ana", limit=5, lease_seconds=60)
    with factory.begin() as s:
        decide(s, item_id, "ana", label, "visual", policy=POLICY, effects=effects)


def test_confirmed_bale_enters_the_bank_and_undo_takes_it_out(
    bank_engine: Engine, add_items: AddItems
) -> None:
    factory = session_factory(bank_engine)
    writer = bank_writer(None, bank_engine)
    assert isinstance(writer, StoreBankWriter)
    effects = ReviewEffects(bank=writer, bank_name="confirmed")
    bale, garment = add_items(factory, 2)
    _decide(factory, effects, bale, "bale")
    _decide(factory, effects, garment, "garment")
    (entry,) = _entries(bank_engine, "confirmed")
    with factory() as s:
        item = s.get_one(ReviewItem, bale)
        assert item.bank_refs == [{"bank": "confirmed", "entry_ids": [entry.id]}]
        assert (entry.sha256, entry.listing_id, entry.seller_id) == (
            item.sha256,
            item.listing_id,
            item.seller_id,
        )
        assert entry.added_by == "review" and entry.pdq is not None and entry.phash is not None
        # the UI shows the confirmed photo beside a later match on this entry
        assert match_image(s, _match(entry.id), bank_engine) == item.thumbnail
        assert match_image(s, _match(999_999), bank_engine) is None
        assert match_image(s, _match(entry.id), None) is None  # no bank database: no picture
    with factory.begin() as s:  # undo the garment first, then the bale
        undo_last(s, "ana", policy=POLICY, effects=effects)
    with factory.begin() as s:
        claim_batch(s, "ana", limit=5, lease_seconds=60)
        decide(s, garment, "ana", "sack", "visual", policy=POLICY, effects=effects)
    assert len(_entries(bank_engine, "confirmed")) == 2
    with factory.begin() as s:
        assert undo_last(s, "ana", policy=POLICY, effects=effects).id == garment
    assert [e.id for e in _entries(bank_engine, "confirmed")] == [entry.id]


def test_undo_never_removes_an_entry_that_was_already_there(
    bank_engine: Engine, add_items: AddItems
) -> None:
    factory = session_factory(bank_engine)
    effects = ReviewEffects(bank=bank_writer(None, bank_engine), bank_name="confirmed")
    (item_id,) = add_items(factory, 1)
    with factory() as s:
        sha = s.get_one(ReviewItem, item_id).sha256
    store = store_mod.BankStore(bank_engine)
    store.add([store_mod.NewEntry(bank="confirmed", sha256=sha, note="imported earlier")])
    _decide(factory, effects, item_id, "bale")
    with factory() as s:
        assert s.get_one(ReviewItem, item_id).bank_refs == [{"bank": "confirmed", "entry_ids": []}]
    with factory.begin() as s:
        undo_last(s, "ana", policy=POLICY, effects=effects)
    (left,) = _entries(bank_engine, "confirmed")
    assert left.note == "imported earlier"


def _match(entry_id: int) -> Match:
    return Match(entry_id, "confirmed", "pdq", 12, "L1", "S1", None)


def test_a_match_reads_back_typed_from_its_stored_form() -> None:
    stored = {"entry_id": 7, "bank": "b1", "kind": "phash", "distance": 12, "listing_id": "L"}
    match = Match.from_dict(stored)
    assert match == Match(7, "b1", "phash", 12, "L", None, None)
    assert Match.from_dict(match.to_dict()) == match
    with pytest.raises(ValueError, match="unknown match kind"):
        Match.from_dict({**stored, "kind": "hash_kind"})
    with pytest.raises(KeyError):
        Match.from_dict({"entry": {"id": 9}, "distance": 3})  # one spelling only
