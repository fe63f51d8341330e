"""Generated test images with real structure (gradients and shapes), shared by the hash and bank
tests as ``hashing.hashkit`` (``tests`` is on ``pythonpath``). No text: font rendering differs
between FreeType versions, which would make golden hashes flaky."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def scene(seed: int, width: int = 320, height: int = 240) -> Image.Image:
    """A deterministic RGB picture: a colour gradient and a dozen random shapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    start, slope = rng.uniform(0, 255, 3), rng.uniform(-1, 1, (2, 3))
    base = start + x[..., None] * slope[0] * 255 / width + y[..., None] * slope[1] * 255 / height
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = (x0, y0, max(x1, x0 + 8), max(y1, y0 + 8))
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.rectangle(box, fill=colour)
        elif shape == 1:
            draw.ellipse(box, fill=colour)
        else:
            points = [tuple(int(v) for v in rng.integers(0, (width, height))) for _ in range(3)]
            draw.polygon(points, fill=colour)
    return img


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    """``img`` as JPEG bytes."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(img: Image.Image) -> bytes:
    """``img`` as PNG bytes (lossless, so decoding gives back the same pixels)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
