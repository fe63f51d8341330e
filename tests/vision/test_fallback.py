"""The int8 fallback band and the backend that re-runs close calls on the reference."""

from __future__ import annotations

import time

import numpy as np
import pytest

from karung.vision.classifier import softmax
from karung.vision.errors import CheckpointError
from karung.vision.fallback import (
    FallbackBackend,
    FallbackBand,
    RiskOf,
    log_odds,
    sigmoid,
)
from karung.vision.labels import Thresholds
from karung.vision.onnx_backend import fastest

RISKY = (0, 1)  # bale, sack of (bale, sack, garment, other)


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


def test_risk_of_matches_the_classifier_softmax() -> None:
    logits = np.random.default_rng(0).normal(0, 3, size=(16, 4)).astype(np.float32)
    expected = softmax(logits, 0.56)[:, list(RISKY)].sum(axis=1)
    np.testing.assert_allclose(RiskOf(0.56, RISKY)(logits), expected, atol=1e-6)


def test_only_close_calls_are_rerun_on_the_reference() -> None:
    # int8 risks: far below, just under review, between, just over block, far above.
    fast_risk = {1: 0.001, 2: 0.45, 3: 0.7, 4: 0.93, 5: 0.9999}
    ref_risk = {1: 0.002, 2: 0.55, 3: 0.95, 4: 0.85, 5: 0.9998}
    fast = TableBackend("onnx-int8", {k: risk_logits(r) for k, r in fast_risk.items()})
    ref = TableBackend("onnx", {k: risk_logits(r) for k, r in ref_risk.items()})
    band = FallbackBand.around(Thresholds(block=0.9, review=0.5), margin=1.0)
    guarded = FallbackBackend(fast, ref, band, RiskOf(1.0, RISKY))
    out = guarded.logits(images([1, 2, 3, 4, 5]))
    assert ref.calls == [[2, 3, 4]]  # one reference pass over the in-band images only
    got = RiskOf(1.0, RISKY)(out)
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
        RiskOf(1.0, RISKY),
    )
    plain = SleepyBackend("f", table, 0.01)
    assert fastest([guarded, plain], batch) is plain
    # ...and beats a plain 30 ms one.
    assert fastest([SleepyBackend("s", table, 0.03), guarded], batch) is guarded
    with pytest.raises(CheckpointError, match="no backends"):
        fastest([], batch)
