"""Small printed things: paper labels and packing lists, tape, and text masks."""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
from PIL import Image, ImageDraw

from karung.training.synth import text
from karung.training.synth.draw import over, premultiply, rotate_sprite

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


GRADES: Final = (
    "CREAM",
    "GRADE A",
    "GRADE B",
    "A GRADE",
    "MIXED",
    "LADIES BLOUSE",
    "BABY MEDIUM",
    "MENS SHIRT",
    "T-SHIRT",
    "JEANS",
    "SUPER CREAM",
    "KIDS MIX",
    "WINTER MIX",
    "No.1",
)
WEIGHTS: Final = ("45 KG", "50 KG", "55 KG", "100 KG", "100 LBS", "80 KG", "25 KG", "500 PCS")
STICKER_PAPER: Final = ((246, 244, 238), (250, 190, 205), (245, 235, 120), (250, 250, 252))
MARKERS: Final = ((20, 20, 25), (30, 40, 150), (170, 25, 30))


def grade_text(rng: Rng) -> list[str]:
    """One to three lines a bale or sack sticker carries: grade, weight, sometimes a code."""
    lines = [str(rng.choice(GRADES))]
    if rng.random() < 0.8:
        lines.append(str(rng.choice(WEIGHTS)))
    if rng.random() < 0.3:
        lines.append(f"No. {int(rng.integers(1, 999)):03d}")
    return lines


def grade_sticker(rng: Rng, w: int, h: int) -> np.ndarray:
    """A white, pink or yellow sticker with big grade and weight lines (sprite)."""
    paper = np.array(STICKER_PAPER[int(rng.integers(len(STICKER_PAPER)))], np.float32)
    sprite = np.empty((h, w, 4), np.float32)
    sprite[..., :3] = paper * np.float32(rng.uniform(0.88, 1.0))
    sprite[..., 3] = 1.0
    lines = grade_text(rng)
    line_h = max(3, int(h / (len(lines) + 0.6)))
    y = max(1, h // 12)
    for k, msg in enumerate(lines):
        mask = text_mask(msg, int(line_h * (0.85 if k == 0 else 0.7)), rng)
        if mask.shape[1] > w - 2:
            mask = cv2.resize(mask, (w - 2, max(1, int(mask.shape[0] * (w - 2) / mask.shape[1]))))
        stamp(sprite, mask, max(1, (w - mask.shape[1]) // 2), y, (20, 20, 25), 0.95)
        y += int(mask.shape[0] * 1.15) + 1
    return sprite


def marker_writing(rng: Rng, size_px: int) -> np.ndarray:
    """Hand-written-looking grade or weight in thick marker (sprite, slightly turned)."""
    msg = " ".join(grade_text(rng)[: int(rng.integers(1, 3))])
    mask = text_mask(msg, size_px, rng)
    mask = cv2.dilate(mask, np.ones((2, 2), np.uint8)) if size_px > 12 else mask
    ink = np.array(MARKERS[int(rng.integers(len(MARKERS)))], np.float32)
    sprite = premultiply(np.broadcast_to(ink, (*mask.shape, 3)), mask * 0.9)
    return rotate_sprite(sprite, float(rng.normal(0, 8)))
