"""Typed errors of the training stack (fine-tuning, evaluation, export), each with a stable code
(see :class:`karung.errors.KarungError`)."""

from __future__ import annotations

from karung.errors import KarungError


class KarungTrainingError(KarungError, code="training_error"):
    """Base class of every error raised by :mod:`karung.training` (outside synthesis)."""


class DatasetError(KarungTrainingError, ValueError, code="dataset_error"):
    """A data directory or manifest is missing, malformed or names unknown labels."""


class MetricError(KarungTrainingError, ValueError, code="metric_error"):
    """A metric was asked of inputs it is undefined for (empty, one class only, NaN)."""


class CalibrationError(KarungTrainingError, ValueError, code="calibration_error"):
    """Temperature or thresholds cannot be fitted on the given validation data."""


class ConfigError(KarungTrainingError, ValueError, code="config_error"):
    """A training option is out of range or inconsistent with the others."""


class ResumeError(KarungTrainingError, code="resume_error"):
    """``--resume`` found no usable state, or a state from a different configuration."""


class ExportError(KarungTrainingError, code="export_error"):
    """ONNX export or quantisation failed."""


class ParityError(ExportError, code="parity_error", exit_code=3):
    """The exported model disagrees with the torch reference beyond the allowed tolerance."""


class QatError(KarungTrainingError, code="qat_error"):
    """Quantisation-aware fine-tuning cannot run on this checkpoint, data or options."""
