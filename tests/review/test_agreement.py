"""Cohen's kappa: textbook values, edge cases, and per-pair figures from real decisions."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.review.agreement import cohen_kappa, pair_agreements
from karung.serve.review.claims import claim_batch
from karung.serve.review.decisions import NoEffects, Policy, decide

AddItems = Callable[..., list[int]]


def test_textbook_example() -> None:
    # Wikipedia's example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> kappa 0.4.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_perfect_chance_and_undefined() -> None:
    assert cohen_kappa(["bale", "sack", "garment"], ["bale", "sack", "garment"]) == 1.0
    assert cohen_kappa(["bale", "sack"], ["sack", "bale"]) == pytest.approx(-1.0)
    assert cohen_kappa(["bale"] * 4, ["bale"] * 4) is None  # one label only: undefined
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa(["bale"], [])


def test_pairs_from_double_reviewed_items(
    sessions: sessionmaker[Session], add_items: AddItems
) -> None:
    policy = Policy(double_review_share=1.0)
    ids = add_items(sessions, 4)
    first = ["bale", "sack", "garment", "bale"]
    second = ["bale", "sack", "garment", "garment"]
    for who, labels in (("ana", first), ("budi", second)):
        with sessions.begin() as s:
            held = [i.id for i in claim_batch(s, who, limit=4, lease_seconds=60)]
        assert sorted(held) == sorted(ids)
        for item_id, label in zip(ids, labels, strict=True):
            with sessions.begin() as s:
                decide(s, item_id, who, label, "visual", policy=policy, effects=NoEffects())
    with sessions() as s:
        (pair,) = pair_agreements(s)
    assert (pair.a, pair.b, pair.items) == ("ana", "budi", 4)
    assert pair.observed == pytest.approx(0.75)
    assert pair.kappa == pytest.approx(cohen_kappa(first, second))
    assert 0.0 < pair.kappa < 1.0
