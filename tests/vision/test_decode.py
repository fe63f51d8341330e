"""decode_image: every accepted mode and format, every rejected input class."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from imagegen import encode, textured
from PIL import Image

from karung.vision.decode import decode_image, sniff_format
from karung.vision.errors import (
    CorruptImage,
    EmptyInput,
    ImageDecodeError,
    ImageTooLarge,
    UnsupportedFormat,
)

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 20_000_000}


def decode(data: bytes, **kwargs: object) -> Image.Image:
    return decode_image(data, **{**LIMITS, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_accepts_supported_formats(fmt: str) -> None:
    img = decode(encode(textured(64, 48), fmt))
    assert img.mode == "RGB"
    assert img.size == (64, 48)


def test_jpeg_colours_survive() -> None:
    src = Image.new("RGB", (32, 32), (200, 30, 40))
    px = decode(encode(src, "JPEG", quality=95)).getpixel((16, 16))
    assert isinstance(px, tuple)
    assert abs(px[0] - 200) < 8 and abs(px[1] - 30) < 8 and abs(px[2] - 40) < 8


def test_rgba_composited_on_white() -> None:
    src = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    src.putpixel((0, 0), (0, 0, 255, 255))
    img = decode(encode(src, "PNG"))
    assert img.getpixel((4, 4)) == (255, 255, 255)
    assert img.getpixel((0, 0)) == (0, 0, 255)


def test_half_transparent_blends_with_white() -> None:
    img = decode(encode(Image.new("RGBA", (4, 4), (0, 0, 0, 128)), "PNG"))
    px = img.getpixel((1, 1))
    assert isinstance(px, tuple)
    assert 120 <= px[0] <= 135


def test_la_transparent_is_white() -> None:
    img = decode(encode(Image.new("LA", (4, 4), (0, 0)), "PNG"))
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_palette_with_transparency() -> None:
    src = Image.new("P", (4, 4), 1)
    src.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    src.putpixel((0, 0), 0)
    img = decode(encode(src, "PNG", transparency=0))
    assert img.getpixel((0, 0)) == (255, 255, 255)
    assert img.getpixel((2, 2)) == (10, 200, 30)


def test_cmyk_jpeg_to_rgb() -> None:
    src = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    px = decode(encode(src, "JPEG", quality=95)).getpixel((8, 8))
    assert isinstance(px, tuple)
    assert px[0] > 200 and px[1] < 50 and px[2] < 50


@pytest.mark.parametrize(("value", "expected"), [(65535, 255), (32768, 128), (0, 0)])
def test_16_bit_greyscale_rescaled(value: int, expected: int) -> None:
    src = Image.fromarray(np.full((6, 6), value, dtype=np.uint16))
    assert src.mode.startswith("I;16")
    px = decode(encode(src, "PNG")).getpixel((3, 3))
    assert isinstance(px, tuple)
    assert abs(px[0] - expected) <= 1 and px[0] == px[1] == px[2]


def test_greyscale_to_rgb() -> None:
    img = decode(encode(Image.new("L", (5, 5), 77), "PNG"))
    assert img.mode == "RGB" and img.getpixel((2, 2)) == (77, 77, 77)


def test_exif_orientation_applied() -> None:
    src = Image.new("RGB", (40, 20), (0, 0, 255))
    src.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img = decode(encode(src, "JPEG", quality=95, exif=exif.tobytes()))
    assert img.size == (20, 40)
    top = img.getpixel((10, 5))
    bottom = img.getpixel((10, 35))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and bottom[2] > 200


def test_animated_gif_first_frame_only() -> None:
    frames = [Image.new("P", (8, 8), i % 200) for i in range(3000)]
    for i, frame in enumerate(frames):
        frame.putpalette([(i * 7 + k) % 256 for k in range(768)])
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=10)
    img = decode(buf.getvalue())
    assert img.size == (8, 8) and img.mode == "RGB"


def test_jpeg_draft_mode_shrinks_large_photo() -> None:
    data = encode(textured(2400, 1600), "JPEG", quality=85)
    img = decode(data, target_size=224)
    assert 224 <= min(img.size) < 800
    assert img.width / img.height == pytest.approx(1.5, rel=0.02)


def test_png_box_reduced_towards_target() -> None:
    img = decode(encode(textured(1000, 800), "PNG"), target_size=(100, 100))
    assert min(img.size) >= 100 and img.width < 500


# --- rejections -------------------------------------------------------------------------------


def _png_chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def png_claiming(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header claims ``width`` x ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"", EmptyInput, "empty_input"),
        (b"<!DOCTYPE html><html><body>404</body></html>", UnsupportedFormat, "unsupported_format"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
            UnsupportedFormat,
            "unsupported_format",
        ),
        (b"<svg width='10' height='10'></svg>", UnsupportedFormat, "unsupported_format"),
        (b"%PDF-1.7 not an image", UnsupportedFormat, "unsupported_format"),
        (png_claiming(100_000, 100_000), ImageTooLarge, "image_too_large"),
        (png_claiming(6000, 6000), ImageTooLarge, "image_too_large"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, CorruptImage, "corrupt_image"),
    ],
    ids=["empty", "html", "svg-xml", "svg", "pdf", "bomb-100k", "over-budget", "png-garbage"],
)
def test_rejections_are_typed(data: bytes, error: type[ImageDecodeError], code: str) -> None:
    with pytest.raises(error) as info:
        decode(data)
    assert info.value.code == code


def test_truncated_jpeg_is_corrupt(jpeg_bytes: bytes) -> None:
    with pytest.raises(CorruptImage):
        decode(jpeg_bytes[: len(jpeg_bytes) // 2])


def test_byte_limit() -> None:
    data = encode(textured(), "PNG")
    with pytest.raises(ImageTooLarge):
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**6)


def test_sniff_ignores_extension_and_content_type() -> None:
    assert sniff_format(encode(textured(), "WEBP")) == "WEBP"
    assert sniff_format(encode(textured(), "BMP")) == "BMP"


def test_whole_file_goes_to_the_decoder_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow hands its decoder 64 KB at a time and retakes the GIL in between (slow when other
    threads run Python); decode_image passes the whole in-memory file at once, same pixels."""
    noisy = np.random.default_rng(3).integers(0, 256, (900, 1200, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noisy), "JPEG", quality=95)
    assert len(data) > 4 * 65536
    reference = Image.open(io.BytesIO(data))
    reference.draft("RGB", (256, 256))
    want = np.asarray(reference.convert("RGB"))
    calls: list[int] = []
    real_getdecoder = Image._getdecoder

    class Counting:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        def decode(self, buffer: bytes) -> object:
            calls.append(len(buffer))
            return self._inner.decode(buffer)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self._inner, name)

    monkeypatch.setattr(Image, "_getdecoder", lambda *a, **k: Counting(real_getdecoder(*a, **k)))
    got = decode_image(data, max_bytes=len(data), max_pixels=10**7, target_size=256)
    assert len(calls) == 1 and calls[0] > 0.9 * len(data)  # the scan, minus the headers
    assert np.array_equal(np.asarray(got), want)
