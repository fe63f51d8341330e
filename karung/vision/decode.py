"""Safe image intake: bytes from an untrusted source in, a bounded RGB :class:`PIL.Image` out.

The format is judged by magic bytes, the declared pixel count is checked before any pixel is
decoded (decompression bombs), only the first frame of animations is read, and every Pillow
failure is mapped to a typed :mod:`karung.vision.errors` exception.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Final

import numpy as np
from PIL import Image, ImageOps

from karung.vision.errors import CorruptImage, EmptyInput, ImageTooLarge, UnsupportedFormat

DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS: Final = 50_000_000
SUPPORTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
DECODER_MIN_BLOCK: Final = 65536  # Pillow's own block size

# Pillow raises a zoo of exception types on damaged input; all of them mean "corrupt".
_PILLOW_FAILURES = (
    OSError,
    SyntaxError,
    ValueError,
    struct.error,
    zlib.error,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    MemoryError,
)


def is_jpeg(data: bytes) -> bool:
    """Whether ``data`` starts with JPEG's magic bytes (no other check)."""
    return data[:3] == b"\xff\xd8\xff"


def sniff_format(data: bytes) -> str:
    """Return the Pillow format name for ``data`` judged by its magic bytes.

    Raises:
        EmptyInput: ``data`` is empty.
        UnsupportedFormat: the bytes are not one of :data:`SUPPORTED_FORMATS`.
    """
    if not data:
        raise EmptyInput("no bytes to decode")
    if is_jpeg(data):
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[:2] == b"BM":
        return "BMP"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        raise UnsupportedFormat("got an HTML document, not an image")
    if head.startswith(b"<?xml") or b"<svg" in head:
        raise UnsupportedFormat("SVG/XML images are not accepted")
    raise UnsupportedFormat(f"unrecognised image format (first bytes {data[:8].hex()})")


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    target_size: int | tuple[int, int] | None = None,
) -> Image.Image:
    """Decode untrusted ``data`` into an RGB image.

    Args:
        data: the encoded image (JPEG, PNG, WebP, GIF first frame, BMP).
        max_bytes: reject inputs larger than this many bytes.
        max_pixels: reject images whose declared width x height exceeds this.
        target_size: the size the caller will resize to (``int`` for a square). When given,
            JPEGs are decoded in draft mode and large images are box-reduced so that the
            result is still at least ``target_size`` on each side: a 12 MP photo then costs
            a few milliseconds instead of a full decode.

    Returns:
        An ``RGB`` image with EXIF orientation applied and transparency composited on white.

    Raises:
        EmptyInput, UnsupportedFormat, CorruptImage, ImageTooLarge.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes exceeds the limit of {max_bytes}")
    fmt = sniff_format(data)
    img = _open(data, fmt, max_pixels)
    target = _as_pair(target_size)
    try:
        if target is not None and fmt == "JPEG":
            img.draft("RGB", target)
        img.load()
        img = _reduce_towards(img, target)
        img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except _PILLOW_FAILURES as exc:
        raise CorruptImage(f"cannot decode {fmt}: {exc}") from exc
    except Image.DecompressionBombError as exc:  # pragma: no cover - checked in _open first
        raise ImageTooLarge(str(exc)) from exc


def _open(data: bytes, fmt: str, max_pixels: int) -> Image.Image:
    """Parse the header only and enforce the pixel budget before any pixel is decoded."""
    try:
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"decompression bomb: {exc}") from exc
    except _PILLOW_FAILURES as exc:
        raise CorruptImage(f"cannot parse {fmt} header: {exc}") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise CorruptImage(f"{fmt} declares an empty canvas {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(f"{width}x{height} pixels exceeds the limit of {max_pixels}")
    # Pillow feeds its decoder 64 KB at a time and takes the GIL back between blocks; when another
    # thread runs Python, each hand-back can wait a whole switch interval (5 ms). The bytes are
    # all in memory (and already under max_bytes), so one block decodes the image in one call.
    img.decodermaxblock = max(len(data), DECODER_MIN_BLOCK)
    return img


def _as_pair(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def _reduce_towards(img: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    """Box-reduce by an integer factor while both sides stay >= the target."""
    if target is None:
        return img
    factor = min(img.width // target[0], img.height // target[1])
    if factor < 2 or img.mode not in ("RGB", "L", "RGBA", "LA", "CMYK"):
        return img
    return img.reduce(factor)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; alpha is composited on white, 16-bit is rescaled."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        img = _high_depth_to_l(img)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """Map 16/32-bit single-channel images to 8-bit grey without clipping to white."""
    arr = np.asarray(img, dtype=np.float64)
    top = 65535.0 if img.mode.startswith("I;16") else float(max(arr.max(), 1.0))
    scaled = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled)
