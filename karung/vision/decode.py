"""Safe image intake: bytes from an untrusted source in, a bounded RGB :class:`PIL.Image` out.

The format is judged by magic bytes, the declared pixel count is checked before any pixel is
decoded (decompression bombs), and so is the memory the decode will take (:func:`decode_cost`:
a 93 KB 16-bit PNG can declare 49 MP and cost a gigabyte on the way to RGB), only the first
frame of animations is read, every mode is reduced towards the target size before it is
converted, and every Pillow failure is mapped to a typed :mod:`karung.vision.errors` exception.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageOps

from karung.vision.errors import (
    CorruptImage,
    EmptyInput,
    ImageTooComplex,
    ImageTooLarge,
    UnsupportedFormat,
)

DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS: Final = 50_000_000
SUPPORTED_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
DECODER_MIN_BLOCK: Final = 65536  # Pillow's own block size
# Peak memory one decode may take (see decode_cost): a 6000x4000 RGB PNG fits (~100 MB), a
# 7000x7000 16-bit or palette-with-transparency PNG (~300 MB before reduction) does not.
DEFAULT_MAX_DECODE_BYTES: Final = 128 * 1024 * 1024
# Bytes Pillow keeps per pixel of a loaded frame, by mode (RGB is stored 4 bytes a pixel).
_LOAD_BPP: Final = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Modes Image.reduce takes as they are (RGBA and LA get a premultiplied copy, counted below).
_REDUCIBLE: Final = ("RGB", "L", "CMYK", "I", "F", "RGBA", "LA")
_HIGH_DEPTH: Final = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA: Final = ("RGBA", "LA", "PA", "RGBa", "La")


@dataclass(frozen=True)
class DecodeCost:
    """What decoding one image will take, known from its header alone."""

    width: int  # the decoded size (after JPEG DCT scaling)
    height: int
    peak_bytes: int  # an upper estimate of the memory held at once on the way to RGB

    @property
    def pixels(self) -> int:
        """Pixels the decoder produces."""
        return self.width * self.height


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


def decode_cost(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    target_size: int | tuple[int, int] | None = None,
) -> DecodeCost:
    """The pixels and peak memory :func:`decode_image` would spend on ``data``, from its header
    only (no pixel is decoded): for admission control before the work is queued.

    Raises:
        EmptyInput, UnsupportedFormat, CorruptImage, ImageTooLarge.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes exceeds the limit of {max_bytes}")
    fmt = sniff_format(data)
    _, cost = _open_drafted(data, fmt, max_pixels, _as_pair(target_size))
    return cost


def decode_image(
    data: bytes,
    *,
    max_bytes: int,
    max_pixels: int,
    target_size: int | tuple[int, int] | None = None,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
) -> Image.Image:
    """Decode untrusted ``data`` into an RGB image.

    Args:
        data: the encoded image (JPEG, PNG, WebP, GIF first frame, BMP).
        max_bytes: reject inputs larger than this many bytes.
        max_pixels: reject images whose declared width x height exceeds this.
        target_size: the size the caller will resize to (``int`` for a square). When given,
            JPEGs are decoded in draft mode and large images (every mode) are box-reduced so
            that the result is still at least ``target_size`` on each side: a 12 MP photo then
            costs a few milliseconds instead of a full decode.
        max_decode_bytes: refuse images whose decode would hold more memory than this at once
            (:func:`decode_cost`), before any pixel is decoded.

    Returns:
        An ``RGB`` image with EXIF orientation applied and transparency composited on white.

    Raises:
        EmptyInput, UnsupportedFormat, CorruptImage, ImageTooLarge, ImageTooComplex.
    """
    if len(data) > max_bytes:
        raise ImageTooLarge(f"{len(data)} bytes exceeds the limit of {max_bytes}")
    fmt = sniff_format(data)
    target = _as_pair(target_size)
    img, cost = _open_drafted(data, fmt, max_pixels, target)
    if cost.peak_bytes > max_decode_bytes:
        raise ImageTooComplex(
            f"decoding this {img.mode} {fmt} of {cost.width}x{cost.height} would take about "
            f"{cost.peak_bytes // 2**20} MiB; the limit is {max_decode_bytes // 2**20} MiB"
        )
    try:
        img.load()
        img = _reduce_towards(img, target)
        img = ImageOps.exif_transpose(img)
        return to_rgb(img)
    except _PILLOW_FAILURES as exc:
        raise CorruptImage(f"cannot decode {fmt}: {exc}") from exc
    except Image.DecompressionBombError as exc:  # pragma: no cover - checked in _open first
        raise ImageTooLarge(str(exc)) from exc


def _open_drafted(
    data: bytes, fmt: str, max_pixels: int, target: tuple[int, int] | None
) -> tuple[Image.Image, DecodeCost]:
    """Open the header, pick the JPEG DCT scale, and estimate the decode's cost."""
    img = _open(data, fmt, max_pixels)
    declared = img.size
    try:
        if target is not None and fmt == "JPEG":
            img.draft("RGB", target)
        return img, _estimate(img, fmt, declared, target)
    except _PILLOW_FAILURES as exc:
        raise CorruptImage(f"cannot parse {fmt} header: {exc}") from exc


def _estimate(
    img: Image.Image, fmt: str, declared: tuple[int, int], target: tuple[int, int] | None
) -> DecodeCost:
    """Peak bytes: the loaded frame, the copy the reduction needs, then the conversions to RGB
    at the reduced size (alpha compositing and 16-bit rescaling take several copies)."""
    width, height = img.size
    pixels = width * height
    factor = _factor(img.size, target)
    load = _LOAD_BPP.get(img.mode, 4)
    convert = 0 if factor < 2 or img.mode in _REDUCIBLE[:5] else 4
    reduced = (width // factor) * (height // factor) if factor >= 2 else pixels
    tail = 4 + (16 if img.mode in _ALPHA + _HIGH_DEPTH or _has_alpha_palette(img) else 4)
    extra = 0
    if fmt == "WEBP":  # libwebp decodes into its own buffer, then Pillow copies it
        extra = pixels * 4
    elif fmt == "JPEG" and (img.info.get("progressive") or img.info.get("progression")):
        # A progressive JPEG keeps every DCT coefficient of the whole image (2 bytes each,
        # per component), whatever the output scale.
        extra = declared[0] * declared[1] * 2 * len(img.getbands())
    peak = pixels * (load + convert) + reduced * tail + extra
    return DecodeCost(width, height, peak)


def _has_alpha_palette(img: Image.Image) -> bool:
    return img.mode == "P" and "transparency" in img.info


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


def _factor(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """The integer box-reduction factor that keeps both sides >= the target (0 or 1: none)."""
    if target is None:
        return 1
    return max(1, min(size[0] // max(target[0], 1), size[1] // max(target[1], 1)))


def _reduce_towards(img: Image.Image, target: tuple[int, int] | None) -> Image.Image:
    """Box-reduce by an integer factor while both sides stay >= the target, in every mode:
    the ones Image.reduce does not take are converted first (a cost :func:`_estimate` counts),
    so no full-size RGBA or float copy is ever made of a large image."""
    factor = _factor(img.size, target)
    if factor < 2:
        return img
    if img.mode in _REDUCIBLE:
        return img.reduce(factor)
    if img.mode.startswith("I;16"):  # keep the 16-bit scale: rescale after reducing
        return _high_depth_to_l(img.convert("I").reduce(factor), top=65535.0)
    if img.mode == "P":
        return img.convert("RGBA" if _has_alpha_palette(img) else "RGB").reduce(factor)
    if img.mode == "1":
        return img.convert("L").reduce(factor)
    if img.mode in _ALPHA:
        return img.convert("RGBA").reduce(factor)
    return img.convert("RGB").reduce(factor)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB; alpha is composited on white, 16-bit is rescaled."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in _HIGH_DEPTH:
        img = _high_depth_to_l(img)
    if img.mode in _ALPHA:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_l(img: Image.Image, top: float | None = None) -> Image.Image:
    """Map 16/32-bit single-channel images to 8-bit grey without clipping to white."""
    arr = np.asarray(img, dtype=np.float32)  # float32: half the memory of float64, same bytes
    if top is None:
        top = 65535.0 if img.mode.startswith("I;16") else float(max(arr.max(), 1.0))
    scaled = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
    return Image.fromarray(scaled)
