"""Food and building sacks (negative class): rice, flour, sugar, feed and cement sacks.

They are the hard negative of ``sack``: woven polypropylene or multi-wall paper, sewn shut,
evenly filled (smooth and squarish, no clothes at the mouth, no knot), with a big printed
brand panel, often lying in piles on pallets or in a shop's row.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth.context import Ctx
from karung.training.synth.decor import stamp, text_mask
from karung.training.synth.draw import (
    chan,
    crop_to_content,
    height_shading,
    new_sprite,
    over,
    premultiply,
    rotate_sprite,
    view_warp,
)
from karung.training.synth.noise import fractal_noise
from karung.training.synth.sack import sack_mask, weave

Rng = np.random.Generator
PRODUCTS: Final = (
    ("BERAS", "PREMIUM"),
    ("RICE", "JASMINE"),
    ("BERAS", "PANDAN WANGI"),
    ("TEPUNG TERIGU", "SEGITIGA"),
    ("FLOUR", "BAKERS"),
    ("GULA PASIR", "KRISTAL"),
    ("SUGAR", "REFINED"),
    ("SEMEN", "PORTLAND"),
    ("CEMENT", "TYPE I"),
    ("PAKAN TERNAK", "AYAM"),
    ("ANIMAL FEED", "LAYER"),
    ("MAIZE", "YELLOW"),
)
NET: Final = ("5 KG", "10 KG", "25 KG", "40 KG", "50 KG", "NET 25 KG", "NETTO 50 KG")
BODY: Final = ((240, 240, 236), (235, 232, 220), (200, 170, 120), (160, 160, 160), (250, 250, 250))
INK: Final = ((200, 30, 35), (20, 90, 170), (30, 130, 60), (230, 150, 20), (25, 25, 30))


def _print(rng: Rng, img: np.ndarray, cement: bool) -> None:
    """A brand panel: a coloured band or badge, the product in big letters, the weight."""
    h, w = img.shape[:2]
    ink = np.array(INK[int(rng.integers(len(INK)))], np.float32)
    name, sub = PRODUCTS[int(rng.integers(len(PRODUCTS)))]
    if cement:
        name, sub = ("SEMEN", "PORTLAND") if rng.random() < 0.5 else ("CEMENT", "TYPE I")
    y = int(h * rng.uniform(0.15, 0.3))
    if rng.random() < 0.6:  # a colour band across the sack
        band = int(h * rng.uniform(0.2, 0.35))
        img[y : y + band] = img[y : y + band] * 0.2 + ink * 0.8
        ink = np.array((250, 250, 245), np.float32)
    elif rng.random() < 0.6:  # a round badge
        cv2.ellipse(img, (w // 2, int(h * 0.62)), (w // 5, h // 9), 0, 0, 360, ink.tolist(), -1)
    for k, msg in enumerate((name, sub, str(rng.choice(NET)))):
        size = max(6, int(h * (0.09 if k == 0 else 0.06)))
        mask = text_mask(msg, size, rng)
        if mask.shape[1] > w * 0.85:
            s = w * 0.85 / mask.shape[1]
            mask = cv2.resize(mask, (int(w * 0.85), max(1, int(mask.shape[0] * s))))
        colour = tuple(float(c) for c in (ink if k < 2 else (25, 25, 30)))
        stamp(img, mask, (w - mask.shape[1]) // 2, y + int(h * 0.02), colour, 0.95)
        y += int(mask.shape[0] * 1.3) + (int(h * 0.25) if k == 1 else 0)


def food_sack(rng: Rng, h: int, w: int, light: tuple[float, float], cement: bool) -> np.ndarray:
    """One evenly filled, sewn, printed sack (sprite)."""
    mask, _ = sack_mask(rng, h, w, "sewn")
    img = np.empty((h, w, 3), np.float32)
    img[:] = BODY[int(rng.integers(len(BODY)))] if not cement else (190, 165, 125)
    if not cement:
        img *= chan(weave(rng, h, w, max(2.0, w / 60), 0.08))
    _print(rng, img, cement)
    bumps = fractal_noise(rng, h, w, w / 2, 2) * 0.04
    img *= chan(height_shading(mask, light, bumps, 0.45, rim=0.35))
    return premultiply(img, mask)


def food_sacks(ctx: Ctx, long_side: int) -> np.ndarray:
    """One sack, a standing row, or a pile lying flat in courses (pallet stacks)."""
    rng, sc = ctx.rng, ctx.scene
    light = (sc.light_x, sc.light_y)
    cement = rng.random() < 0.25
    if sc.layout == "single":
        h = long_side
        return view_warp(food_sack(rng, h, int(h * rng.uniform(0.6, 0.75)), light, cement),
                         sc.yaw * 0.4, sc.pitch * 0.5, 0.6)  # fmt: skip
    lying = sc.layout == "wall" or rng.random() < 0.4
    cols = int(rng.integers(2, 6))
    rows = int(rng.integers(2, 7)) if lying else 1
    unit = int(long_side / (cols * 0.85 + 0.3))
    sw, sh = (unit, int(unit * 0.62)) if lying else (int(unit * 0.7), unit)
    canvas = new_sprite(int(sh * (rows * 0.8 + 0.4)) + 4, int(sw * (cols * 0.9 + 0.4)) + 4)
    templates = [food_sack(rng, sw, sh, light, cement) if lying else
                 food_sack(rng, sh, sw, light, cement) for _ in range(2)]  # fmt: skip
    if lying:
        templates = [np.ascontiguousarray(np.rot90(t)) for t in templates]
    for r in range(rows):
        for c in range(cols):
            s = templates[int(rng.integers(2))]
            s = rotate_sprite(s, float(rng.normal(0, 2)))
            x = int(c * sw * 0.9 + (sw * 0.3 if r % 2 else 0) * lying + rng.normal(0, sw * 0.02))
            y = canvas.shape[0] - s.shape[0] - int(r * sh * 0.8)
            over(canvas, s, x, y)
    return view_warp(crop_to_content(canvas), sc.yaw * 0.3, sc.pitch * 0.4, 0.5)
