"""The bank store on SQLite and PostgreSQL: round trips, idempotency, removal, versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hashing.hashkit import scene
from sqlalchemy import Engine

from karung.serve.bank.errors import BankNotFound, EntryNotFound, InvalidBankSetting, InvalidEntry
from karung.serve.bank.store import BankStore, NewEntry
from karung.vision.hashing import HashValue, compute_hashes

SHA_A, SHA_B = "a" * 64, "b" * 64


def entry(bank: str = "stolen", sha: str | None = SHA_A, seed: int = 0, **meta: object) -> NewEntry:
    return NewEntry.from_hashes(bank, sha, compute_hashes(scene(seed)), **meta)  # type: ignore[arg-type]


def test_round_trip_keeps_hashes_and_metadata(engine: Engine) -> None:
    store = BankStore(engine)
    new = entry(
        listing_id="L1",
        seller_id="S1",
        source_url="https://x.test/1",
        added_by="mod",
        note="bale photo",
    )
    [result] = store.add([new])
    assert result.created
    got = store.get(result.entry.id)
    assert got == result.entry
    assert (got.bank, got.sha256, got.listing_id, got.seller_id) == ("stolen", SHA_A, "L1", "S1")
    assert (got.source_url, got.added_by, got.note) == ("https://x.test/1", "mod", "bale photo")
    assert got.pdq == new.pdq and got.phash == new.phash and got.pdq_quality == new.pdq_quality
    assert got.added_at.tzinfo is not None
    assert abs((datetime.now(UTC) - got.added_at).total_seconds()) < 300
    data = got.to_dict()
    assert data["pdq"] == new.pdq.hex() and data["id"] == got.id  # type: ignore[union-attr]
    assert store.entries() == [got]


def test_adding_the_same_image_twice_is_idempotent(engine: Engine) -> None:
    store = BankStore(engine)
    first = store.add([entry(seller_id="S1")])[0]
    version = store.version()
    again = store.add([entry(seller_id="other")])[0]
    assert not again.created and again.entry.id == first.entry.id
    assert again.entry.seller_id == "S1"  # the first entry stands
    assert store.version() == version  # a no-op does not wake the replicas
    other_bank = store.add([entry(bank="partner")])[0]
    assert other_bank.created and other_bank.entry.id != first.entry.id
    batch = store.add([entry(sha=SHA_B, seed=1), entry(sha=SHA_B, seed=1)])
    assert [r.created for r in batch] == [True, False]
    assert batch[0].entry.id == batch[1].entry.id
    assert len(store.entries()) == 3


def test_entries_without_sha256_are_idempotent_by_hashes(engine: Engine) -> None:
    store = BankStore(engine)
    hashes = compute_hashes(scene(2))
    only_hashes = NewEntry("shared", None, pdq=hashes.pdq, pdq_quality=90, phash=hashes.phash)
    assert store.add([only_hashes])[0].created
    assert not store.add([only_hashes])[0].created


def test_remove_and_missing_entries(engine: Engine) -> None:
    store = BankStore(engine)
    kept, gone = store.add([entry(), entry(sha=SHA_B, seed=1)])
    removed = store.remove(gone.entry.id)
    assert removed.id == gone.entry.id
    assert [e.id for e in store.entries()] == [kept.entry.id]
    with pytest.raises(EntryNotFound) as info:
        store.remove(gone.entry.id)
    assert info.value.code == "entry_not_found"
    with pytest.raises(EntryNotFound):
        store.get(gone.entry.id)
    # A removed image can be banked again (as a new entry).
    assert store.add([entry(sha=SHA_B, seed=1)])[0].created


def test_ids_of_removed_entries_are_never_reused(engine: Engine) -> None:
    store = BankStore(engine)
    last = store.add([entry()])[0].entry.id
    store.remove(last)
    assert store.add([entry(sha=SHA_B)])[0].entry.id > last


def test_banks_settings_and_validation(engine: Engine) -> None:
    store = BankStore(engine)
    store.add([entry(), entry(sha=SHA_B, seed=1)])
    [info] = store.banks()
    assert (info.name, info.enabled, info.pdq_threshold, info.phash_threshold, info.entries) == (
        "stolen",
        True,
        31,
        10,
        2,
    )
    changed = store.configure_bank("stolen", enabled=False, pdq_threshold=20, phash_threshold=6)
    assert (changed.enabled, changed.pdq_threshold, changed.phash_threshold) == (False, 20, 6)
    with pytest.raises(BankNotFound):
        store.configure_bank("nope", enabled=True)
    assert store.configure_bank("new", create=True, description="from partner").entries == 0
    with pytest.raises(InvalidBankSetting, match=r"0\.\.128"):
        store.configure_bank("stolen", pdq_threshold=200)
    with pytest.raises(InvalidBankSetting, match=r"0\.\.32"):
        store.configure_bank("stolen", phash_threshold=-1)
    with pytest.raises(InvalidBankSetting, match="bank name"):
        store.configure_bank("bad name!", create=True)


def test_version_and_change_log(engine: Engine) -> None:
    store = BankStore(engine)
    assert store.version() == 0
    first = store.add([entry()])[0].entry.id
    v1 = store.version()
    store.remove(first)
    store.configure_bank("stolen", enabled=False)
    assert store.version() == v1 + 2
    ops = [(c.op, c.entry_id) for c in store.changes_since(0)]
    assert ops == [("bank", None), ("add", first), ("remove", first), ("bank", None)]
    assert [c.op for c in store.changes_since(v1)] == ["remove", "bank"]


def test_writes_inside_a_caller_transaction(engine: Engine) -> None:
    store = BankStore(engine)
    with store.sessions() as session:
        ids = [r.entry.id for r in store.add_in(session, [entry()])]
        session.rollback()  # the caller's decision failed: nothing may remain
    assert store.entries() == [] and store.version() == 0
    with store.sessions() as session:
        ids = [r.entry.id for r in store.add_in(session, [entry()])]
        session.commit()
    assert [e.id for e in store.entries()] == ids
    with store.sessions() as session:
        assert store.remove_in(session, ids, bank="other") == 0  # wrong bank: untouched
        assert store.remove_in(session, ids, bank="stolen") == 1
        session.commit()
    assert store.entries() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sha256": "ABC"}, "sha256 must be 64"),
        ({"sha256": None}, "at least one of"),
        ({"pdq_quality": 101}, r"quality must be an integer in 0\.\.100"),
        ({"pdq_quality": None}, "quality must be an integer"),
        ({"phash": HashValue("pdq", bytes(32))}, "phash must be a phash"),
        ({"listing_id": "x" * 300}, "at most 256"),
    ],
)
def test_new_entries_are_validated(kwargs: dict[str, object], message: str) -> None:
    hashes = compute_hashes(scene(0))
    base: dict[str, object] = {
        "bank": "stolen",
        "sha256": SHA_A,
        "pdq": hashes.pdq,
        "pdq_quality": 80,
        "phash": hashes.phash,
    }
    if kwargs.get("sha256", SHA_A) is None:
        base.update(pdq=None, pdq_quality=None, phash=None)
    with pytest.raises(InvalidEntry, match=message) as info:
        NewEntry(**{**base, **kwargs})  # type: ignore[arg-type]
    assert info.value.code == "invalid_entry"


def test_new_entry_rejects_a_bad_bank_name_with_its_own_code() -> None:
    with pytest.raises(InvalidBankSetting) as info:
        entry(bank="")
    assert info.value.code == "invalid_bank_setting"
