"""Typed errors raised by :mod:`karung.vision`.

Every error carries a stable ``code`` string (see :class:`karung.errors.KarungError`) so that
the CLI and the HTTP edge can report it without parsing messages. Input errors answer 422 at
the service edge (the client sent something unusable).
"""

from __future__ import annotations

from karung.errors import KarungError


class KarungVisionError(KarungError, code="vision_error", status=422):
    """Base class of every error raised by the vision library."""


class ImageDecodeError(KarungVisionError, ValueError, code="image_error"):
    """The bytes could not be turned into an RGB image."""


class EmptyInput(ImageDecodeError, code="empty_input"):
    """Zero bytes were given."""


class UnsupportedFormat(ImageDecodeError, code="unsupported_format"):
    """The bytes are not JPEG, PNG, WebP, GIF or BMP (judged by magic bytes)."""


class CorruptImage(ImageDecodeError, code="corrupt_image"):
    """The bytes claim a supported format but do not decode (truncated, damaged)."""


class ImageTooLarge(ImageDecodeError, code="image_too_large"):
    """The input exceeds the byte or pixel budget (decompression bombs land here)."""


class ImageTooComplex(ImageDecodeError, code="image_too_complex"):
    """Decoding would cost more memory than the per-image budget (its pixels times the
    bytes each one takes on the way to RGB), whatever the file size."""


class InvalidBatch(KarungVisionError, ValueError, code="invalid_batch"):
    """A backend was given a batch that is not ``(N, 3, S, S)`` numbers of the model's size."""


class CheckpointError(KarungVisionError, code="checkpoint_error", status=500):
    """A model checkpoint is missing, unreadable or of an unknown format."""


class PretrainedWeightsMissing(KarungVisionError, code="pretrained_weights_missing", status=500):
    """The ImageNet MobileNetV2 weights package is not installed or the file is wrong."""
