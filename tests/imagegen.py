"""Image factories shared by the tests (``pythonpath = tests``): every image is generated."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    """Encode ``img`` in memory."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def textured(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    """A deterministic RGB image with gradients and noise (not a flat colour)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], -1
    )
    noise = rng.integers(0, 40, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
