"""Guarded int8: the int8 model answers, the fp32 export re-checks the close calls.

Static int8 moves the risk of almost every image by a few thousandths, but that of a few
uncertain images by up to ~0.45 (measured on the shipped MobileNetV2 on an AVX2 CPU), and
those few are the ones whose decision flips: about 1 image in 60. A :class:`FallbackBand`
names the risk interval in which an int8 answer is not trusted. It spans the decision
thresholds plus a margin in log-odds fitted by ``karung export`` on images it neither
calibrates nor checks parity on; every image whose int8 risk lands inside is re-run on the
fp32 graph, so its decision is the fp32 decision. Images far from every threshold (most of
the traffic) keep the int8 answer, and moving them across a threshold would take an int8
error larger than any the export measured.

The band is contiguous from below the review threshold to above the block threshold, so a
client's own thresholds anywhere between the model's are guarded too.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from karung.vision.errors import CheckpointError
from karung.vision.labels import Thresholds
from karung.vision.probs import RiskHead

if TYPE_CHECKING:  # torch-free at run time
    from karung.vision.backends import InferenceBackend

# Keys stamped into the int8 ONNX file's metadata by `karung export`.
META_LOW: Final = "karung_fallback_low"
META_HIGH: Final = "karung_fallback_high"
META_MODEL: Final = "karung_fallback_model"

_EPS: Final = 1e-7


def log_odds(p: float) -> float:
    """``log(p / (1 - p))`` with ``p`` clipped away from 0 and 1."""
    q = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(q / (1.0 - q))


def sigmoid(z: float) -> float:
    """Inverse of :func:`log_odds`."""
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class FallbackBand:
    """The closed risk interval ``[low, high]`` in which int8 answers are re-checked."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.low <= self.high <= 1.0:
            raise CheckpointError(f"need 0 <= low <= high <= 1, got {self.low}, {self.high}")

    @classmethod
    def around(cls, thresholds: Thresholds, margin: float) -> FallbackBand:
        """From ``margin`` log-odds below the review threshold to as far above the block one."""
        if margin < 0:
            raise CheckpointError(f"margin must be >= 0, got {margin}")
        # min/max: the round trip through log-odds must never pull a threshold out of the band.
        return cls(
            low=min(thresholds.review, sigmoid(log_odds(thresholds.review) - margin)),
            high=max(thresholds.block, sigmoid(log_odds(thresholds.block) + margin)),
        )

    def contains(self, risk: np.ndarray) -> np.ndarray:
        """Boolean mask of the risks inside the band."""
        return (risk >= self.low) & (risk <= self.high)

    def to_metadata(self, reference_file: str) -> dict[str, str]:
        """ONNX metadata entries (``reference_file``: the fp32 graph beside the int8 one)."""
        return {META_LOW: repr(self.low), META_HIGH: repr(self.high), META_MODEL: reference_file}

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> FallbackBand | None:
        """The band stamped into a file's metadata; ``None`` when it has none."""
        if META_LOW not in meta and META_HIGH not in meta:
            return None
        try:
            return cls(low=float(meta[META_LOW]), high=float(meta[META_HIGH]))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"malformed fallback band in ONNX metadata: {exc}") from exc


class FallbackBackend:
    """``fast`` logits, except for the rows whose risk falls in ``band``: those come from
    ``reference`` (re-run on just those images).

    ``seen`` and ``rechecked`` count images since construction (for metrics and benchmarks).
    """

    def __init__(
        self,
        fast: InferenceBackend,
        reference: InferenceBackend,
        band: FallbackBand,
        head: RiskHead,
    ) -> None:
        self.fast = fast
        self.reference = reference
        self.band = band
        self.head = head
        self.name = f"{fast.name}+fallback"
        self.seen = 0
        self.rechecked = 0
        self._lock = threading.Lock()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Int8 logits with the in-band rows replaced by the reference's."""
        out = np.array(self.fast.logits(batch), dtype=np.float32)
        close = self.band.contains(self.head.risk_of_logits(out))
        n_close = int(close.sum())
        if n_close:
            out[close] = self.reference.logits(np.ascontiguousarray(batch[close]))
        with self._lock:
            self.seen += len(out)
            self.rechecked += n_close
        return out

    @property
    def rechecked_share(self) -> float:
        """Fraction of the images seen so far that the reference re-ran."""
        return self.rechecked / self.seen if self.seen else 0.0
