"""Fit the fp32 fallback band of an int8 export (see :mod:`karung.vision.fallback`).

On tuning images (disjoint from the calibration and the parity images) each int8 decision
that differs from torch fp32 tells how far, in log-odds, its int8 risk lay outside the
thresholds: the band must reach at least that far to catch it. The fitted margin is the
largest such distance times ``safety`` and never below ``floor``; the parity check on the
held-out parity set then judges the guarded model like any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from karung.training.errors import ExportError
from karung.vision.fallback import FallbackBand, log_odds
from karung.vision.labels import Thresholds


@dataclass(frozen=True)
class FallbackOptions:
    """How wide to make the band beyond what the tuning images needed."""

    safety: float = 1.5
    floor: float = 1.0

    def __post_init__(self) -> None:
        if self.safety < 1.0 or self.floor < 0.0:
            raise ExportError("fallback safety must be >= 1 and floor >= 0")


@dataclass(frozen=True)
class BandFit:
    """The fitted band and what it did on the tuning images."""

    band: FallbackBand
    margin: float
    needed_margin: float
    n_tuning: int
    int8_agreement: float
    guarded_agreement: float
    rechecked_share: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (recorded in ``parity.json`` under the int8 entry)."""
        return {
            "low": self.band.low,
            "high": self.band.high,
            "margin_log_odds": round(self.margin, 4),
            "needed_margin_log_odds": round(self.needed_margin, 4),
            "n_tuning": self.n_tuning,
            "tuning_int8_agreement": self.int8_agreement,
            "tuning_guarded_agreement": self.guarded_agreement,
            "tuning_rechecked_share": self.rechecked_share,
        }


def outside_distance(risk: float, thresholds: Thresholds) -> float:
    """How far (log-odds) ``risk`` lies below the review or above the block threshold."""
    z = log_odds(risk)
    return max(log_odds(thresholds.review) - z, z - log_odds(thresholds.block), 0.0)


def decisions_agree(
    ref_risk: np.ndarray, fast_risk: np.ndarray, thresholds: Thresholds
) -> np.ndarray:
    """Per image: do the two risks lead to the same decision?"""
    return np.array(
        [
            thresholds.decide(float(a)) == thresholds.decide(float(b))
            for a, b in zip(ref_risk, fast_risk, strict=True)
        ],
        dtype=bool,
    )


def needed_margin(ref_risk: np.ndarray, fast_risk: np.ndarray, thresholds: Thresholds) -> float:
    """The smallest margin whose band catches every decision ``fast_risk`` gets wrong."""
    flipped = fast_risk[~decisions_agree(ref_risk, fast_risk, thresholds)]
    return max((outside_distance(float(q), thresholds) for q in flipped), default=0.0)


def guarded_decisions_agree(
    ref_risk: np.ndarray, fast_risk: np.ndarray, thresholds: Thresholds, band: FallbackBand
) -> np.ndarray:
    """Per image: does the guarded model (fp32 inside the band) decide as fp32 does?"""
    guarded = np.where(band.contains(fast_risk), ref_risk, fast_risk)
    return decisions_agree(ref_risk, guarded, thresholds)


def fit_band(
    ref_risk: np.ndarray,
    fast_risk: np.ndarray,
    thresholds: Thresholds,
    opts: FallbackOptions | None = None,
) -> BandFit:
    """Fit the band on tuning risks of the fp32 reference and the int8 model."""
    opts = opts or FallbackOptions()
    if ref_risk.size == 0 or ref_risk.shape != fast_risk.shape:
        raise ExportError("fallback fit needs matching, non-empty reference and int8 risks")
    needed = needed_margin(ref_risk, fast_risk, thresholds)
    margin = max(opts.floor, opts.safety * needed)
    band = FallbackBand.around(thresholds, margin)
    return BandFit(
        band=band,
        margin=margin,
        needed_margin=needed,
        n_tuning=int(ref_risk.size),
        int8_agreement=float(decisions_agree(ref_risk, fast_risk, thresholds).mean()),
        guarded_agreement=float(
            guarded_decisions_agree(ref_risk, fast_risk, thresholds, band).mean()
        ),
        rechecked_share=float(band.contains(fast_risk).mean()),
    )
