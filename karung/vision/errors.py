"""Typed errors raised by :mod:`karung.vision`.

Every error carries a stable ``code`` string so that the CLI and the HTTP edge can report it
without parsing messages.
"""

from __future__ import annotations

from typing import ClassVar


class KarungVisionError(Exception):
    """Base class of every error raised by the vision library."""

    code: ClassVar[str] = "vision_error"


class ImageDecodeError(KarungVisionError, ValueError):
    """The bytes could not be turned into an RGB image."""

    code = "image_error"


class EmptyInput(ImageDecodeError):
    """Zero bytes were given."""

    code = "empty_input"


class UnsupportedFormat(ImageDecodeError):
    """The bytes are not JPEG, PNG, WebP, GIF or BMP (judged by magic bytes)."""

    code = "unsupported_format"


class CorruptImage(ImageDecodeError):
    """The bytes claim a supported format but do not decode (truncated, damaged)."""

    code = "corrupt_image"


class ImageTooLarge(ImageDecodeError):
    """The input exceeds the byte or pixel budget (decompression bombs land here)."""

    code = "image_too_large"


class ImageTooComplex(ImageDecodeError):
    """Decoding would cost more memory than the per-image budget (its pixels times the
    bytes each one takes on the way to RGB), whatever the file size."""

    code = "image_too_complex"


class CheckpointError(KarungVisionError):
    """A model checkpoint is missing, unreadable or of an unknown format."""

    code = "checkpoint_error"


class PretrainedWeightsMissing(KarungVisionError):
    """The ImageNet MobileNetV2 weights package is not installed or the file is wrong."""

    code = "pretrained_weights_missing"
