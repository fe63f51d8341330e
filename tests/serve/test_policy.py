"""The decision policy: bank matches block, then risk against (overridable) thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from karung.serve.policy import (
    InvalidThresholds,
    decide,
    match_reason,
    queue_reason,
    resolve_thresholds,
)
from karung.vision.labels import Decision, Thresholds


@dataclass(frozen=True)
class FakeMatch:
    kind: str
    distance: int


CUT = Thresholds(block=0.9, review=0.5)


@pytest.mark.parametrize(
    ("risk", "decision", "reason"),
    [
        (0.95, Decision.BLOCK, "risk>=block_threshold"),
        (0.9, Decision.BLOCK, "risk>=block_threshold"),
        (0.6, Decision.REVIEW, "risk>=review_threshold"),
        (0.5, Decision.REVIEW, "risk>=review_threshold"),
        (0.1, Decision.ALLOW, "risk<review_threshold"),
    ],
)
def test_model_decisions(risk: float, decision: Decision, reason: str) -> None:
    verdict = decide(risk, [], CUT)
    assert verdict.decision is decision and verdict.model_decision is decision
    assert verdict.reasons == (reason,)


def test_bank_match_blocks_whatever_the_model_says() -> None:
    matches = [FakeMatch("pdq", 12), FakeMatch("sha256", 0)]
    verdict = decide(0.01, matches, CUT)
    assert verdict.decision is Decision.BLOCK
    assert verdict.model_decision is Decision.ALLOW
    assert verdict.reasons == (
        "bank_match:pdq:distance=12",
        "bank_match:sha256:distance=0",
        "risk<review_threshold",
    )
    assert match_reason(FakeMatch("phash", 3)) == "bank_match:phash:distance=3"


def test_threshold_overrides_apply_in_order() -> None:
    assert resolve_thresholds(CUT) == CUT
    assert resolve_thresholds(CUT, (None, None), (0.8, None)) == Thresholds(0.8, 0.5)
    assert resolve_thresholds(CUT, (0.8, 0.4), (None, 0.3), (0.7, None)) == Thresholds(0.7, 0.3)
    with pytest.raises(InvalidThresholds):
        resolve_thresholds(CUT, (0.3, None))  # review 0.5 > block 0.3


def test_queue_reasons() -> None:
    assert queue_reason(Decision.REVIEW, 0.99, 0.0, 0.0) == "review_band"
    assert queue_reason(Decision.ALLOW, 0.005, 0.01, 0.0) == "qc_allow"
    assert queue_reason(Decision.ALLOW, 0.5, 0.01, 1.0) is None
    assert queue_reason(Decision.BLOCK, 0.005, 0.0, 0.01) == "qc_block"
    assert queue_reason(Decision.BLOCK, 0.5, 1.0, 0.01) is None
