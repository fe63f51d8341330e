"""Leases: priority order, expiry, release, and concurrent claims on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.db import session_factory
from karung.serve.review.claims import claim_batch, held_items, pending_count, release, renew
from karung.serve.review.models import ReviewItem, utcnow
from karung.serve.review.queue import priority_bucket

AddItems = Callable[..., list[int]]


def test_priority_closest_to_threshold_then_larger_cluster(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    far = add_items(sessions, 1, risk=0.55, seller_id="s1")[0]  # 0.35 from the block threshold
    near_small = add_items(sessions, 1, risk=0.88, seller_id="s2")[0]  # band 0
    near_big = add_items(sessions, 1, risk=0.86, cluster_size=9, seller_id="s3")[0]  # band 0
    mid = add_items(sessions, 1, risk=0.75, seller_id="s4")[0]  # 0.15 away
    with sessions.begin() as s:
        got = [i.id for i in claim_batch(s, "ana", limit=10, lease_seconds=60)]
    assert got == [near_big, near_small, mid, far]


def test_seller_cluster_grows_and_moves_up_together(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    lone = add_items(sessions, 1, risk=0.88, seller_id="lone")[0]
    first = add_items(sessions, 1, risk=0.89, seller_id="trader")[0]
    more = add_items(sessions, 2, risk=0.87, seller_id="trader")
    with sessions() as s:
        sizes = {i: s.get_one(ReviewItem, i).cluster_size for i in [lone, first, *more]}
    assert sizes == {lone: 1, first: 3, more[0]: 3, more[1]: 3}
    with sessions.begin() as s:
        got = [i.id for i in claim_batch(s, "ana", limit=4, lease_seconds=60)]
    assert got[-1] == lone and got[0] == first  # the trader's cluster first, closest first


def test_priority_bucket_edges() -> None:
    assert priority_bucket(0.0) == 0
    assert priority_bucket(0.049) == 0
    assert priority_bucket(0.05) == 1
    assert priority_bucket(0.2) == 4


def test_claim_limit_and_no_double_holding(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    add_items(sessions, 5)
    with sessions.begin() as s:
        a = {i.id for i in claim_batch(s, "ana", limit=3, lease_seconds=60)}
    with sessions.begin() as s:
        b = {i.id for i in claim_batch(s, "budi", limit=3, lease_seconds=60)}
    assert len(a) == 3 and len(b) == 2 and not a & b
    with sessions.begin() as s:  # a reload keeps the same items, no more
        again = {i.id for i in claim_batch(s, "ana", limit=3, lease_seconds=60)}
    assert again == a


def test_lease_expiry_lets_another_moderator_take_the_item(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(sessions, 1)
    t0 = utcnow()
    with sessions.begin() as s:
        assert [i.id for i in claim_batch(s, "ana", limit=1, lease_seconds=30, now=t0)] == [item_id]
    with sessions.begin() as s:  # still leased: budi gets nothing
        assert (
            claim_batch(s, "budi", limit=1, lease_seconds=30, now=t0 + timedelta(seconds=29)) == []
        )
        assert pending_count(s, t0 + timedelta(seconds=29)) == 0
    later = t0 + timedelta(seconds=31)
    with sessions.begin() as s:
        assert pending_count(s, later) == 1
        got = claim_batch(s, "budi", limit=1, lease_seconds=30, now=later)
        assert [i.id for i in got] == [item_id]
        assert got[0].claimed_by == "budi"
        assert got[0].lease_expires_at == later + timedelta(seconds=30)
    with sessions.begin() as s:  # ana's stale lease is not renewed behind budi's back
        assert renew(s, "ana", lease_seconds=30, now=later) == []
        assert held_items(s, "ana") == []


def test_renew_extends_only_live_leases(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    add_items(sessions, 2)
    t0 = utcnow()
    with sessions.begin() as s:
        ids = [i.id for i in claim_batch(s, "ana", limit=2, lease_seconds=30, now=t0)]
    with sessions.begin() as s:
        assert sorted(renew(s, "ana", lease_seconds=30, now=t0 + timedelta(seconds=20))) == sorted(
            ids
        )
    with sessions.begin() as s:  # renewed at +20 s, so still held at +45 s
        assert (
            claim_batch(s, "budi", limit=2, lease_seconds=30, now=t0 + timedelta(seconds=45)) == []
        )


def test_release_returns_items_to_the_queue(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    add_items(sessions, 3)
    with sessions.begin() as s:
        ids = [i.id for i in claim_batch(s, "ana", limit=3, lease_seconds=60)]
    with sessions.begin() as s:
        assert release(s, "budi") == 0  # budi holds nothing
        assert release(s, "ana", ids[:1]) == 1
    with sessions.begin() as s:
        assert [i.id for i in claim_batch(s, "budi", limit=3, lease_seconds=60)] == ids[:1]


def _claim_in_threads(
    factory: sessionmaker[Session], moderators: list[str], rounds: int
) -> dict[str, list[int]]:
    got: dict[str, list[int]] = {m: [] for m in moderators}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(moderators))

    def worker(name: str) -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                with factory.begin() as s:
                    items = claim_batch(s, name, limit=2, lease_seconds=600)
                    got[name].extend(i.id for i in items)
                with factory.begin() as s:  # hand them on as 'decided' so the next claim is new
                    for item in s.scalars(select(ReviewItem).where(ReviewItem.claimed_by == name)):
                        item.status, item.claimed_by = "decided", None
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(m,)) for m in moderators]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return got


def test_concurrent_claims_never_share_an_item(any_engine: Engine, add_items: AddItems) -> None:
    factory = session_factory(any_engine)
    ids = add_items(factory, 24)
    got = _claim_in_threads(factory, ["ana", "budi", "citra"], rounds=4)
    claimed = [i for items in got.values() for i in items]
    counts = Counter(claimed)
    assert all(n == 1 for n in counts.values()), counts.most_common(3)
    assert set(claimed) == set(ids)  # 3 moderators x 4 rounds x 2 = 24 items, each once
