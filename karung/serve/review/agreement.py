"""Inter-moderator agreement on double-reviewed items: Cohen's kappa per moderator pair."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from karung.serve.review.models import ReviewDecision


@dataclass(frozen=True)
class PairAgreement:
    """How two moderators agreed on the items both labelled independently."""

    a: str
    b: str
    items: int
    observed: float  # share of items with the same label
    kappa: float | None  # None when chance agreement is 1 (a single label used by both)


def cohen_kappa(labels_a: Sequence[str], labels_b: Sequence[str]) -> float | None:
    """Cohen's kappa, ``(p_o - p_e) / (1 - p_e)``; None when undefined (``p_e == 1``)."""
    if len(labels_a) != len(labels_b):
        raise ValueError("both raters need a label for every item")
    n = len(labels_a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(labels_a, labels_b, strict=True)) / n
    count_a, count_b = Counter(labels_a), Counter(labels_b)
    expected = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pair_agreements(session: Session) -> list[PairAgreement]:
    """Kappa for every pair of moderators who share double-reviewed items (rounds 1 and 2)."""
    rows = session.execute(
        select(
            ReviewDecision.item_id,
            ReviewDecision.round,
            ReviewDecision.moderator,
            ReviewDecision.label,
        )
        .where(ReviewDecision.undone_at.is_(None), ReviewDecision.round.in_((1, 2)))
        .order_by(ReviewDecision.item_id, ReviewDecision.round)
    )
    by_item: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
    for item_id, round_, moderator, label in rows:
        by_item[int(item_id)][int(round_)] = (str(moderator), str(label))
    pairs: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for rounds in by_item.values():
        if 1 not in rounds or 2 not in rounds:
            continue
        (m1, l1), (m2, l2) = sorted((rounds[1], rounds[2]))
        pairs[(m1, m2)][0].append(l1)
        pairs[(m1, m2)][1].append(l2)
    return [
        PairAgreement(
            a=a,
            b=b,
            items=len(la),
            observed=sum(x == y for x, y in zip(la, lb, strict=True)) / len(la),
            kappa=cohen_kappa(la, lb),
        )
        for (a, b), (la, lb) in sorted(pairs.items())
    ]
