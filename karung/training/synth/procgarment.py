"""Procedural garments for ``--source none``: flat silhouettes filled with fabric patterns.

They stand in for the CC0 cut-outs when no photo is available (tests, users without the set),
so every renderer can run unchanged; realism comes from the photo mode.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth.draw import height_shading
from karung.training.synth.noise import fractal_noise, grain
from karung.training.synth.segment import Cutout, premultiplied_u8
from karung.training.synth.textures import FLAT

Rng = np.random.Generator

# Outlines in unit coordinates (x right, y down), traced clockwise from the top left.
SHAPES: Final[dict[str, list[tuple[float, float]]]] = {
    "T-Shirt": [
        (0.35, 0.05),
        (0.5, 0.12),
        (0.65, 0.05),
        (0.95, 0.18),
        (0.85, 0.38),
        (0.75, 0.33),
        (0.75, 0.95),
        (0.25, 0.95),
        (0.25, 0.33),
        (0.15, 0.38),
        (0.05, 0.18),
    ],
    "Longsleeve": [
        (0.36, 0.05),
        (0.5, 0.11),
        (0.64, 0.05),
        (0.86, 0.15),
        (0.98, 0.9),
        (0.88, 0.92),
        (0.76, 0.4),
        (0.76, 0.95),
        (0.24, 0.95),
        (0.24, 0.4),
        (0.12, 0.92),
        (0.02, 0.9),
        (0.14, 0.15),
    ],
    "Pants": [
        (0.25, 0.03),
        (0.75, 0.03),
        (0.8, 0.97),
        (0.57, 0.97),
        (0.5, 0.3),
        (0.43, 0.97),
        (0.2, 0.97),
    ],
    "Shorts": [
        (0.15, 0.1),
        (0.85, 0.1),
        (0.95, 0.85),
        (0.56, 0.9),
        (0.5, 0.45),
        (0.44, 0.9),
        (0.05, 0.85),
    ],
    "Dress": [
        (0.38, 0.03),
        (0.5, 0.1),
        (0.62, 0.03),
        (0.7, 0.08),
        (0.66, 0.35),
        (0.9, 0.97),
        (0.1, 0.97),
        (0.34, 0.35),
        (0.3, 0.08),
    ],
    "Skirt": [(0.3, 0.1), (0.7, 0.1), (0.95, 0.9), (0.05, 0.9)],
}
COLOURS: Final = [
    (30, 30, 35),
    (240, 240, 238),
    (180, 30, 40),
    (40, 70, 150),
    (90, 130, 80),
    (200, 170, 120),
    (120, 120, 125),
    (230, 120, 160),
    (250, 200, 60),
    (60, 90, 130),
    (140, 70, 40),
    (100, 60, 130),
]


def _colour(rng: Rng) -> np.ndarray:
    base = np.asarray(COLOURS[int(rng.integers(len(COLOURS)))], np.float32)
    return np.clip(base + rng.normal(0, 12, 3), 0, 255).astype(np.float32)


def fabric_pattern(rng: Rng, h: int, w: int) -> np.ndarray:
    """A fabric: plain, stripes, plaid, dots or denim, with weave speckle (float ``h x w x 3``)."""
    a, b = _colour(rng), _colour(rng)
    kind = int(rng.integers(5))
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    period = float(rng.uniform(5, 24))
    if kind == 1:
        sel = (ys // period) % 2 == 0
    elif kind == 2:
        sel = ((ys // period) % 2 == 0) ^ ((xs // (period * 1.3)) % 2 == 0)
    elif kind == 3:
        sel = ((ys % period) - period / 2) ** 2 + ((xs % period) - period / 2) ** 2 < (
            period / 4
        ) ** 2
    else:
        sel = np.zeros((h, w), bool)
    img = np.where(sel[..., None], b[None, None], a[None, None])
    if kind == 4:  # denim: blue with diagonal twill
        img = np.broadcast_to(np.array([55, 80, 130], np.float32), (h, w, 3)).copy()
        img *= (0.85 + 0.15 * ((xs + ys) % 3 == 0))[..., None]
    return img * (1.0 + grain(rng, h, w, 0.05))[..., None]


def procedural_cutout(rng: Rng, key: str, side: int = 200) -> Cutout:
    """One procedural garment (shape, fabric, soft folds) as a :class:`Cutout`."""
    name = list(SHAPES)[int(rng.integers(len(SHAPES)))]
    h, w = side, int(side * rng.uniform(0.7, 0.95))
    pts = (np.asarray(SHAPES[name], np.float32) * [w, h]).astype(np.int32)
    mask8 = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask8, [pts], 255, cv2.LINE_AA)
    mask = mask8.astype(np.float32) / 255.0
    folds = fractal_noise(rng, h, w, side / 3, 3) * 0.25
    shade = height_shading(mask, (float(rng.uniform(-0.5, 0.5)), -0.6), folds, 0.35)
    rgb = fabric_pattern(rng, h, w) * shade[..., None]
    if name in ("T-Shirt", "Longsleeve", "Dress"):
        cv2.ellipse(rgb, (w // 2, int(h * 0.07)), (w // 10, h // 25), 0, 0, 360, (40, 40, 40), -1)
    rgba = premultiplied_u8(np.clip(rgb, 0, 255), mask)
    backdrop = FLAT[list(FLAT)[int(rng.integers(len(FLAT)))]](rng, 96, 128)
    return Cutout(
        rgba=rgba,
        fabric=np.clip(fabric_pattern(rng, 96, 96), 0, 255).astype(np.uint8),
        backdrop=np.clip(backdrop, 0, 255).astype(np.uint8),
        source_id=f"proc:{key}",
        sender_id="proc",
        category=name,
    )
