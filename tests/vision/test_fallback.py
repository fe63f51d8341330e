"""The int8 fallback band and the backend that re-runs close calls on the reference."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from karung.vision.errors import CheckpointError
from karung.vision.fallback import (
    FallbackBackend,
    FallbackBand,
    log_odds,
    sigmoid,
)
from karung.vision.labels import LABELS, Thresholds
from karung.vision.onnx_backend import fastest
from karung.vision.probs import RiskHead

HEAD = RiskHead(LABELS)  # bale, sack of (bale, sack, garment, other), T = 1


class TableBackend:
    """Logits looked up by the first pixel of each image: a real, tiny backend."""

    def __init__(self, name: str, table: dict[int, list[float]]) -> None:
        self.name = name
        self.table = table
        self.calls: list[list[int]] = []

    def logits(self, batch: np.ndarray) -> np.ndarray:
        keys = [int(img[0, 0, 0]) for img in batch]
        self.calls.append(keys)
        return np.array([self.table[k] for k in keys], dtype=np.float32)


def images(keys: list[int]) -> np.ndarray:
    batch = np.zeros((len(keys), 3, 2, 2), dtype=np.float32)
    batch[:, 0, 0, 0] = keys
    return batch


def risk_logits(risk: float) -> list[float]:
    """Logits whose softmax (T=1) puts ``risk`` on bale and the rest on garment."""
    return [log_odds(risk), -30.0, 0.0, -30.0]


def test_band_spans_the_thresholds_plus_the_margin_in_log_odds() -> None:
    cut = Thresholds(block=0.9, review=0.5)
    assert FallbackBand.around(cut, 0.0) == FallbackBand(0.5, 0.9)
    band = FallbackBand.around(cut, 1.0)
    assert band.low == pytest.approx(sigmoid(-1.0)) and band.low < 0.5
    assert band.high == pytest.approx(sigmoid(log_odds(0.9) + 1.0)) and band.high > 0.9
    inside = band.contains(np.array([band.low, 0.7, band.high, band.low - 1e-6, 0.99]))
    assert inside.tolist() == [True, True, True, False, False]
    with pytest.raises(CheckpointError, match="margin"):
        FallbackBand.around(cut, -0.1)
    with pytest.raises(CheckpointError, match="low <= high"):
        FallbackBand(0.8, 0.2)


def test_band_metadata_round_trip_and_errors() -> None:
    band = FallbackBand(0.123456789, 0.987654321)
    meta = band.to_metadata("model.fp32.onnx")
    assert meta["karung_fallback_model"] == "model.fp32.onnx"
    assert FallbackBand.from_metadata(meta) == band
    assert FallbackBand.from_metadata({"karung_model_version": "x"}) is None
    with pytest.raises(CheckpointError, match="malformed"):
        FallbackBand.from_metadata({"karung_fallback_low": "0.1"})
    with pytest.raises(CheckpointError, match="malformed"):
        FallbackBand.from_metadata({"karung_fallback_low": "x", "karung_fallback_high": "0.9"})


def reference_risk(row: list[float], temperature: float, risky: set[int]) -> float:
    """Risk of one logit row in plain Python (float64 arithmetic, no numpy, no shared code)."""
    exps = [math.exp(z / temperature) for z in row]
    return sum(e for i, e in enumerate(exps) if i in risky) / sum(exps)


def test_risk_head_on_hand_computed_rows() -> None:
    # softmax of log(2), log(1), log(1), log(4) is 2/8, 1/8, 1/8, 4/8: risk = 3/8. Doubled
    # logits: 4/22, 1/22, 1/22, 16/22 (risk 5/22), or 3/8 again at T = 2; at T = 2 the plain
    # row is sqrt(2), 1, 1, 2 over their sum.
    row = [math.log(2), 0.0, 0.0, math.log(4)]
    logits = np.array([row, [2 * z for z in row], [0.0] * 4], dtype=np.float32)
    assert HEAD.risk_of_logits(logits) == pytest.approx([3 / 8, 5 / 22, 0.5], abs=1e-6)
    warm = RiskHead(LABELS, temperature=2.0)
    root = math.sqrt(2)
    want = [(root + 1) / (root + 4), 3 / 8, 0.5]
    assert warm.risk_of_logits(logits) == pytest.approx(want, abs=1e-6)
    # The risk labels are found by name, wherever they stand.
    moved = RiskHead(("garment", "sack", "other", "bale"))
    assert moved.risk_indices == (1, 3)
    assert moved.risk_of_logits(logits[:1]) == pytest.approx([5 / 8], abs=1e-6)


def test_risk_head_matches_an_independent_reference() -> None:
    logits = np.random.default_rng(0).normal(0, 3, size=(16, 4)).astype(np.float32)
    head = RiskHead(LABELS, temperature=0.56)
    want = [reference_risk([float(z) for z in r], 0.56, {0, 1}) for r in logits]
    np.testing.assert_allclose(head.risk_of_logits(logits), want, atol=1e-6)
    probs = head.probs(logits)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_only_close_calls_are_rerun_on_the_reference() -> None:
    # int8 risks: far below, just under review, between, just over block, far above.
    fast_risk = {1: 0.001, 2: 0.45, 3: 0.7, 4: 0.93, 5: 0.9999}
    ref_risk = {1: 0.002, 2: 0.55, 3: 0.95, 4: 0.85, 5: 0.9998}
    fast = TableBackend("onnx-int8", {k: risk_logits(r) for k, r in fast_risk.items()})
    ref = TableBackend("onnx", {k: risk_logits(r) for k, r in ref_risk.items()})
    band = FallbackBand.around(Thresholds(block=0.9, review=0.5), margin=1.0)
    guarded = FallbackBackend(fast, ref, band, HEAD)
    out = guarded.logits(images([1, 2, 3, 4, 5]))
    assert ref.calls == [[2, 3, 4]]  # one reference pass over the in-band images only
    got = HEAD.risk_of_logits(out)
    want = [fast_risk[1], ref_risk[2], ref_risk[3], ref_risk[4], fast_risk[5]]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert guarded.name == "onnx-int8+fallback"
    guarded.logits(images([1, 5]))
    assert ref.calls == [[2, 3, 4]]  # nothing in band: no reference pass at all
    assert (guarded.seen, guarded.rechecked) == (7, 3)
    assert guarded.rechecked_share == pytest.approx(3 / 7)


class SleepyBackend(TableBackend):
    """A table backend that takes ``delay`` seconds per call."""

    def __init__(self, name: str, table: dict[int, list[float]], delay: float) -> None:
        super().__init__(name, table)
        self.delay = delay

    def logits(self, batch: np.ndarray) -> np.ndarray:
        time.sleep(self.delay)
        return super().logits(batch)


def test_fastest_charges_a_fallback_for_its_rechecks() -> None:
    table = {0: risk_logits(0.01)}
    batch = images([0, 0])
    quick, slow = SleepyBackend("a", table, 0.001), SleepyBackend("b", table, 0.02)
    assert fastest([slow, quick], batch) is quick
    band = FallbackBand(0.5, 0.9)
    # int8 at 5 ms plus 10% of a 100 ms reference (15 ms) loses to a plain 10 ms backend...
    guarded = FallbackBackend(
        SleepyBackend("i", table, 0.005),
        SleepyBackend("r", table, 0.1),
        band,
        HEAD,
    )
    plain = SleepyBackend("f", table, 0.01)
    assert fastest([guarded, plain], batch) is plain
    # ...and beats a plain 30 ms one.
    assert fastest([SleepyBackend("s", table, 0.03), guarded], batch) is guarded
    with pytest.raises(CheckpointError, match="no backends"):
        fastest([], batch)
