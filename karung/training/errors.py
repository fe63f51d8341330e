"""Typed errors of the training stack (fine-tuning, evaluation, export), each with a stable code."""

from __future__ import annotations

from typing import ClassVar


class KarungTrainingError(Exception):
    """Base class of every error raised by :mod:`karung.training` (outside synthesis)."""

    code: ClassVar[str] = "training_error"


class DatasetError(KarungTrainingError, ValueError):
    """A data directory or manifest is missing, malformed or names unknown labels."""

    code = "dataset_error"


class MetricError(KarungTrainingError, ValueError):
    """A metric was asked of inputs it is undefined for (empty, one class only, NaN)."""

    code = "metric_error"


class CalibrationError(KarungTrainingError, ValueError):
    """Temperature or thresholds cannot be fitted on the given validation data."""

    code = "calibration_error"


class ConfigError(KarungTrainingError, ValueError):
    """A training option is out of range or inconsistent with the others."""

    code = "config_error"


class ResumeError(KarungTrainingError):
    """``--resume`` found no usable state, or a state from a different configuration."""

    code = "resume_error"


class ExportError(KarungTrainingError):
    """ONNX export or quantisation failed."""

    code = "export_error"


class ParityError(ExportError):
    """The exported model disagrees with the torch reference beyond the allowed tolerance."""

    code = "parity_error"


class QatError(KarungTrainingError):
    """Quantisation-aware fine-tuning cannot run on this checkpoint, data or options."""

    code = "qat_error"
