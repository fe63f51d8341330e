"""Plastic film over an object: milky haze, glossy streaks, crinkles and loose film at the edges.

Used for bale wrapping, clear bags of clothes and (as a hard negative) film-wrapped cartons.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from karung.training.synth.draw import chan, smooth
from karung.training.synth.noise import value_noise

Rng = np.random.Generator


@dataclass(frozen=True)
class FilmLook:
    """How a film looks: ``milky`` haze (0 clear .. 0.5 milky), gloss and crinkle amounts."""

    milky: float
    gloss: float
    crinkles: float
    halo: float

    @classmethod
    def sample(cls, rng: Rng, clear: bool = False) -> FilmLook:
        """A random look; ``clear`` favours transparent bags over milky bale wrap."""
        milky = rng.uniform(0.0, 0.12) if clear else rng.uniform(0.03, 0.4)
        return cls(
            milky=float(milky),
            gloss=float(rng.uniform(0.4, 1.0)),
            crinkles=float(rng.uniform(0.3, 1.0)),
            halo=float(rng.uniform(0.0, 1.0)),
        )


def _curve(rng: Rng, w: int, h: int, length: float, vertical: bool) -> np.ndarray:
    start = rng.random(2) * [w, h]
    angle = rng.normal(np.pi / 2, 0.35) if vertical else rng.uniform(0, np.pi)
    steps = int(rng.integers(3, 7))
    turn = np.cumsum(rng.normal(0, 0.35, steps)) + angle
    seg = length / steps
    pts = start + np.cumsum(np.stack([np.cos(turn), np.sin(turn)], axis=1) * seg, axis=0)
    return np.vstack([start, pts]).astype(np.int32)


def _gloss_layer(rng: Rng, h: int, w: int, look: FilmLook) -> np.ndarray:
    """Soft wide streaks plus sharp crinkle lines, as a ``[0, 1]`` brightness layer."""
    size = max(h, w)
    soft: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(2, 7) * look.gloss) + 1):
        pts = _curve(rng, w, h, size * rng.uniform(0.2, 0.7), vertical=rng.random() < 0.7)
        thick = max(1, int(size * rng.uniform(0.01, 0.05)))
        cv2.polylines(soft, [pts], False, float(rng.uniform(0.3, 0.8)), thick, cv2.LINE_AA)
    soft = smooth(soft, max(1.0, size / 90))
    sharp: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 14) * look.crinkles)):
        pts = _curve(rng, w, h, size * rng.uniform(0.1, 0.35), vertical=rng.random() < 0.5)
        cv2.polylines(sharp, [pts], False, float(rng.uniform(0.3, 0.8)), 1, cv2.LINE_AA)
    sharp = cv2.GaussianBlur(sharp, (3, 3), 0.8)
    return np.clip(soft * look.gloss + sharp, 0, 1)


def apply_film(rng: Rng, sprite: np.ndarray, look: FilmLook) -> np.ndarray:
    """Return ``sprite`` wrapped in film (haze, gloss, crinkles, translucent margin)."""
    h, w = sprite.shape[:2]
    out = sprite.copy()
    mask = out[..., 3]
    haze = look.milky * (0.4 + 1.2 * value_noise(rng, h, w, max(h, w) / 4)) * mask
    gloss = _gloss_layer(rng, h, w, look) * mask
    shadow = np.roll(gloss, (1, 1), axis=(0, 1)) * 0.25
    # Haze, the crinkles' dark side and gloss as one multiply-add (colour is premultiplied,
    # so "white" is 255 * alpha): rgb' = rgb * keep + white_amount.
    keep = (1.0 - haze) * (1.0 - shadow) * (1.0 - gloss)
    white = (238.0 * haze * (1.0 - shadow) * (1.0 - gloss) + 252.0 * gloss) * mask
    out[..., :3] = out[..., :3] * chan(keep) + chan(white)
    if look.halo > 0.3:
        out = _halo(rng, out, look)
    return out


def _halo(rng: Rng, sprite: np.ndarray, look: FilmLook) -> np.ndarray:
    """Loose film sticking out past the object: faint, whitish, ragged."""
    h, w = sprite.shape[:2]
    pad = max(2, int(max(h, w) * 0.025 * look.halo))
    big = cv2.copyMakeBorder(sprite, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    mask = (big[..., 3] > 0.5).astype(np.uint8)
    grown = cv2.dilate(mask, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8))
    # Loose film comes in a few long flaps, not a dotted ring.
    ragged = value_noise(rng, h + 2 * pad, w + 2 * pad, max(h, w) / 5) > 0.55
    ring = ((grown > 0) & (mask == 0) & ragged).astype(np.float32)
    ring_f = cv2.GaussianBlur(ring, (5, 5), 0)
    alpha = ring_f * float(rng.uniform(0.1, 0.25))
    alpha = alpha * (1.0 - big[..., 3])  # film behind the object where they overlap
    film = chan(alpha, 4) * np.array([235, 237, 240, 1], np.float32)
    big += film
    return big


def specular(rng: Rng, sprite: np.ndarray, bumps: np.ndarray | None, strength: float) -> None:
    """Strong highlights of a glossy wrap, in place: hot spots on the bulges, a reflected window
    or ceiling lamp, and sparkles along wrinkles.

    ``bumps`` (``H x W`` in ``[0, 1]``, optional) says where the surface bulges towards the
    light; highlights gather there, as they do on a real stretched film.
    """
    h, w = sprite.shape[:2]
    mask = sprite[..., 3]
    size = max(h, w)
    hot: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(2, 7))):
        c = (int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.05, 0.9) * h))
        axes = (
            max(1, int(size * rng.uniform(0.02, 0.12))),
            max(1, int(size * rng.uniform(0.01, 0.05))),
        )
        cv2.ellipse(
            hot, c, axes, float(rng.uniform(-60, 60)), 0, 360, float(rng.uniform(0.5, 1)), -1
        )
    if rng.random() < 0.5:  # a window or a fluorescent tube reflected in the film
        x0, y0 = int(rng.uniform(0.05, 0.7) * w), int(rng.uniform(0.05, 0.6) * h)
        ww, wh = int(size * rng.uniform(0.08, 0.25)), int(size * rng.uniform(0.04, 0.2))
        cv2.rectangle(hot, (x0, y0), (x0 + ww, y0 + wh), 0.9, -1)
        cv2.line(hot, (x0 + ww // 2, y0), (x0 + ww // 2, y0 + wh), 0.2, max(1, ww // 12))
    hot = smooth(hot, max(1.0, size / 70))
    if bumps is not None:
        hot = hot * (0.3 + 0.9 * bumps)
    spots = (value_noise(rng, h, w, max(2.0, size / 60)) > 0.86).astype(np.float32)
    sparkle = cv2.GaussianBlur(spots * rng.random((h, w), dtype=np.float32), (3, 3), 0.7)
    light = np.clip(hot * strength + sparkle * 0.45 * strength, 0, 0.95) * mask
    sprite[..., :3] = sprite[..., :3] * chan(1.0 - light) + chan(light * 250.0)
