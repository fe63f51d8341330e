"""Decisions: label, skip, undo, double review with adjudication, outbox events."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review.claims import claim_batch
from karung.serve.review.decisions import (
    NoEffects,
    Policy,
    decide,
    sampled_for_double_review,
    skip,
    undo_last,
)
from karung.serve.review.effects import ReviewEffects
from karung.serve.review.errors import (
    InvalidLabel,
    ItemNotFound,
    NotClaimed,
    NothingToUndo,
    UndoNotAllowed,
)
from karung.serve.review.models import AuditEntry, OutboxMessage, ReviewDecision, ReviewItem, utcnow

AddItems = Callable[..., list[int]]
SINGLE = Policy(double_review_share=0.0)
DOUBLE = Policy(double_review_share=1.0)
WEBHOOK = ReviewEffects(bank=None, webhook=True)


def _claim(sessions: sessionmaker[Session], who: str, n: int = 1) -> list[int]:
    with sessions.begin() as s:
        return [i.id for i in claim_batch(s, who, limit=n, lease_seconds=60)]


def _decide(sessions: sessionmaker[Session], item_id: int, who: str, label: str, **kw: object):
    policy = kw.pop("policy", SINGLE)
    effects = kw.pop("effects", WEBHOOK)
    with sessions.begin() as s:
        return decide(s, item_id, who, label, "visual", policy=policy, effects=effects, **kw)


def test_decide_finalises_and_queues_a_signed_event(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(sessions, 1)
    _claim(sessions, "ana")
    item = _decide(sessions, item_id, "ana", "bale")
    assert (item.status, item.final_label, item.claimed_by) == ("decided", "bale", None)
    with sessions() as s:
        (msg,) = s.scalars(select(OutboxMessage)).all()
        body = json.loads(msg.body)
        assert body["event"] == "review.decided"
        assert body["data"]["label"] == "bale" and body["data"]["item_id"] == item_id
        assert "ana" not in msg.body  # moderator names stay inside
        (line,) = s.scalars(select(AuditEntry).where(AuditEntry.action == "decide")).all()
        assert line.actor == "ana" and line.before["status"] == "claimed"
        assert line.after["status"] == "decided" and line.after["label"] == "bale"


def test_only_the_lease_holder_may_decide(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(sessions, 1)
    with pytest.raises(NotClaimed):  # nobody holds it yet
        _decide(sessions, item_id, "ana", "bale")
    _claim(sessions, "ana")
    with pytest.raises(NotClaimed):
        _decide(sessions, item_id, "budi", "bale")
    with pytest.raises(ItemNotFound):
        _decide(sessions, 999, "ana", "bale")
    with pytest.raises(InvalidLabel):
        _decide(sessions, item_id, "ana", "shoe")
    with pytest.raises(InvalidLabel), sessions.begin() as s:
        decide(s, item_id, "ana", "bale", "because", policy=SINGLE, effects=NoEffects())
    assert _decide(sessions, item_id, "ana", "garment").final_label == "garment"
    with pytest.raises(NotClaimed):  # decided items cannot be decided again
        _decide(sessions, item_id, "ana", "bale")


def test_expired_lease_taken_by_another_blocks_the_first(
    any_sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(any_sessions, 1)
    t0 = utcnow()
    with any_sessions.begin() as s:
        claim_batch(s, "ana", limit=1, lease_seconds=10, now=t0)
    with any_sessions.begin() as s:
        claim_batch(s, "budi", limit=1, lease_seconds=10, now=t0 + timedelta(seconds=11))
    with pytest.raises(NotClaimed):
        _decide(any_sessions, item_id, "ana", "bale")
    assert _decide(any_sessions, item_id, "budi", "sack").final_label == "sack"


def test_skip_hands_the_item_to_someone_else(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(sessions, 1)
    _claim(sessions, "ana")
    with sessions.begin() as s:
        assert skip(s, item_id, "ana").status == "pending"
    assert _claim(sessions, "ana") == []  # ana passed on it
    assert _claim(sessions, "budi") == [item_id]


def test_undo_reverts_decision_effects_and_returns_the_item(
    any_sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(any_sessions, 1)
    _claim(any_sessions, "ana")
    _decide(any_sessions, item_id, "ana", "bale")
    with any_sessions.begin() as s:
        item = undo_last(s, "ana", policy=SINGLE, effects=WEBHOOK)
    assert (item.status, item.claimed_by, item.final_label) == ("claimed", "ana", None)
    assert _decide(any_sessions, item_id, "ana", "garment").final_label == "garment"
    with any_sessions() as s:
        events = [
            json.loads(m.body) for m in s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]
        assert [e["event"] for e in events] == ["review.decided", "review.undone", "review.decided"]
        assert [e["data"]["label"] for e in events] == ["bale", "bale", "garment"]
        decisions = s.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        assert [(d.label, d.undone_at is not None) for d in decisions] == [
            ("bale", True),
            ("garment", False),
        ]
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
        assert actions == ["decide", "undo", "decide"]


def test_undo_of_a_skip_and_the_limits_of_undo(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    a, b = add_items(sessions, 2)
    with pytest.raises(NothingToUndo), sessions.begin() as s:
        undo_last(s, "ana", policy=SINGLE, effects=NoEffects())
    _claim(sessions, "ana", 2)
    with sessions.begin() as s:
        skip(s, a, "ana")
    with sessions.begin() as s:
        assert undo_last(s, "ana", policy=SINGLE, effects=NoEffects()).id == a
    _decide(sessions, b, "ana", "other")
    late = utcnow() + timedelta(seconds=SINGLE.undo_window_seconds + 1)
    with pytest.raises(UndoNotAllowed), sessions.begin() as s:
        undo_last(s, "ana", policy=SINGLE, effects=NoEffects(), now=late)


def test_undo_refused_while_another_moderator_holds_the_item(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    (item_id,) = add_items(sessions, 1)
    _claim(sessions, "ana")
    with sessions.begin() as s:
        skip(s, item_id, "ana")
    assert _claim(sessions, "budi") == [item_id]
    with pytest.raises(UndoNotAllowed), sessions.begin() as s:
        undo_last(s, "ana", policy=SINGLE, effects=NoEffects())
    with sessions() as s:
        assert s.get_one(ReviewItem, item_id).claimed_by == "budi"


def test_double_review_agreement_and_adjudication(
    any_sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    agree, disagree = add_items(any_sessions, 2)
    _claim(any_sessions, "ana", 2)
    for item_id in (agree, disagree):
        item = _decide(any_sessions, item_id, "ana", "bale", policy=DOUBLE)
        assert (item.status, item.reviews_required, item.final_label) == ("pending", 2, None)
    assert _claim(any_sessions, "ana", 2) == []  # the second review must be independent
    assert sorted(_claim(any_sessions, "budi", 2)) == [agree, disagree]
    assert _decide(any_sessions, agree, "budi", "bale", policy=DOUBLE).final_label == "bale"
    item = _decide(any_sessions, disagree, "budi", "garment", policy=DOUBLE)
    assert (item.status, item.reviews_required) == ("pending", 3)
    assert _claim(any_sessions, "budi") == []
    assert _claim(any_sessions, "citra") == [disagree]
    assert (
        _decide(any_sessions, disagree, "citra", "garment", policy=DOUBLE).final_label == "garment"
    )
    with any_sessions() as s:  # the platform hears once per item, with the final label
        events = [json.loads(m.body)["data"] for m in s.scalars(select(OutboxMessage))]
        assert sorted((e["item_id"], e["label"], e["reviews"]) for e in events) == [
            (agree, "bale", 2),
            (disagree, "garment", 3),
        ]


def test_double_review_share_is_stable_and_about_right() -> None:
    shas = [f"{i:064x}" for i in range(4000)]
    picked = [sampled_for_double_review(s, 0.05) for s in shas]
    assert 0.035 < sum(picked) / len(picked) < 0.065
    assert picked == [sampled_for_double_review(s, 0.05) for s in shas]
    assert not any(sampled_for_double_review(s, 0.0) for s in shas[:50])
    assert all(sampled_for_double_review(s, 1.0) for s in shas[:50])
