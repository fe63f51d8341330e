"""What pressed clothes look like through film: irregular mixed-colour patches, dark gaps.

A real bale seen through its wrap is not a set of neat stripes: it is a jumble of garment
pieces, folded edges, collars and sleeves pressed together, mostly dark with bright bits.
:func:`pressed_clothes` builds that from real cut-outs (rotated, overlapped, squashed by the
press) on a dark base, plus irregular fold creases.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth.context import Ctx
from karung.training.synth.draw import chan, over, rotate_sprite
from karung.training.synth.noise import value_noise

Rng = np.random.Generator
WORK_SIDE: Final = 220


def pressed_clothes(ctx: Ctx, w: int, h: int, squash: float, n: int) -> np.ndarray:
    """A ``w x h`` float RGB face of pressed garments (``squash`` < 1 flattens vertically).

    The collage is built at most ``WORK_SIDE`` px long and enlarged: film, bands and the
    final resize hide the difference, and it halves the cost of a close-up bale.
    """
    rng = ctx.rng
    ch = max(4, int(h / max(squash, 0.2)))
    f = min(1.0, WORK_SIDE / max(w, ch))
    cw, ch = max(4, round(w * f)), max(4, round(ch * f))
    dark = np.float32(rng.uniform(25, 70))
    canvas = np.empty((ch, cw, 4), np.float32)
    canvas[..., :3] = dark
    canvas[..., 3] = 1.0
    side = max(cw, ch)
    for _ in range(n):
        cut = ctx.pick.cutout(fabric=True)
        piece = quick_sprite(cut.rgba, max(8, int(side * rng.uniform(0.22, 0.55))))
        piece = rotate_sprite(piece, float(rng.uniform(0, 360)))
        piece[..., :3] *= np.float32(rng.uniform(0.55, 1.05))
        ph, pw = piece.shape[:2]
        x = int(rng.integers(-pw // 2, max(1, cw - pw // 2)))
        y = int(rng.integers(-ph // 2, max(1, ch - ph // 2)))
        over(canvas, piece, x, y)
    img = cv2.resize(np.ascontiguousarray(canvas[..., :3]), (w, h), interpolation=cv2.INTER_LINEAR)
    return img * chan(_folds(rng, h, w))


def quick_sprite(rgba: np.ndarray, long_side: int) -> np.ndarray:
    """A float sprite of a cut-out, shrunk bilinearly (area averaging costs several times more
    and its smoothness is lost anyway under the press creases and the film)."""
    h, w = rgba.shape[:2]
    s = long_side / max(h, w)
    small = cv2.resize(
        rgba, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR
    )
    sprite = small.astype(np.float32)
    sprite[..., 3] *= np.float32(1.0 / 255.0)
    return sprite


def _folds(rng: Rng, h: int, w: int) -> np.ndarray:
    """Dark, wavy, mostly horizontal creases where folded edges meet (a multiplier map)."""
    crease: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(4, 12))):
        y = rng.uniform(0, h)
        xs = np.linspace(rng.uniform(-0.2, 0.5) * w, rng.uniform(0.5, 1.2) * w, 6)
        ys = y + np.cumsum(rng.normal(0, h * 0.03, 6))
        pts = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(crease, [pts], False, float(rng.uniform(0.4, 1.0)), max(1, h // 60))
    crease = cv2.GaussianBlur(crease, (0, 0), max(0.8, h / 120))
    lumps = value_noise(rng, h, w, max(4.0, max(h, w) / 5))
    return (1.0 - 0.5 * np.clip(crease, 0, 1)) * (0.75 + 0.4 * lumps)
