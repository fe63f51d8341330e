"""Small printed things: paper labels and packing lists, tape, and text masks."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from karung.training.synth import text
from karung.training.synth.draw import over, premultiply

Rng = np.random.Generator


def text_mask(s: str, size_px: int, rng: Rng) -> np.ndarray:
    """A float ``[0, 1]`` coverage mask of ``s`` rendered in a random face at ``size_px``."""
    font = text.random_font(rng, size_px)
    left, top, right, bottom = font.getbbox(s)
    w, h = max(1, int(right - left) + 2), max(1, int(bottom - top) + 2)
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).text((1 - left, 1 - top), s, fill=255, font=font)
    return np.asarray(im, np.float32) / 255.0


def stamp(
    img: np.ndarray, mask: np.ndarray, x: int, y: int, rgb: tuple[float, ...], a: float
) -> None:
    """Paint ``rgb`` through ``mask`` at ``(x, y)`` with opacity ``a`` (in place, clipped)."""
    alpha = mask * np.float32(a)
    over(
        img, premultiply(np.broadcast_to(np.array(rgb, np.float32), (*mask.shape, 3)), alpha), x, y
    )


def paper_label(rng: Rng, w: int, h: int) -> np.ndarray:
    """A paper label or packing list (sprite): tiny text lines, maybe a barcode and tape."""
    paper = (
        np.array([245, 243, 235], np.float32)
        if rng.random() < 0.7
        else np.array([205, 170, 120], np.float32)
    )
    sprite = np.empty((h, w, 4), np.float32)
    sprite[..., :3] = paper * rng.uniform(0.9, 1.02)
    sprite[..., 3] = 1.0
    y = max(1, h // 10)
    line_h = max(2, h // 9)
    while y + line_h < h * 0.9:
        n = int(rng.integers(1, 4))
        msg = text.words(rng, n).upper() if rng.random() < 0.5 else text.price(rng)
        mask = text_mask(msg, line_h, rng)
        stamp(
            sprite,
            mask[:, : max(1, w - 4)],
            2 + int(rng.integers(0, max(1, w // 8))),
            y,
            (25, 25, 30),
            0.9,
        )
        y += int(line_h * rng.uniform(1.2, 1.8))
    if rng.random() < 0.4 and w > 12:
        bars = rng.random(max(4, w // 2)) < 0.5
        code = np.repeat(bars, 2)[: w - 4].astype(np.float32)
        sprite[h - max(3, h // 5) : h - 2, 2 : 2 + len(code), :3] *= (1 - 0.85 * code)[
            None, :, None
        ]
    if rng.random() < 0.7:
        _tape(rng, sprite)
    return sprite


def _tape(rng: Rng, sprite: np.ndarray) -> None:
    """A strip of clear tape across the top edge: a faint glossy band."""
    h = sprite.shape[0]
    band = max(2, h // 6)
    y = int(rng.integers(0, max(1, h // 5)))
    sprite[y : y + band, :, :3] = sprite[y : y + band, :, :3] * 0.8 + 255 * 0.2
