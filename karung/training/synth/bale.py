"""Bales ("balpres"): pressed blocks of mixed garments, strapped and wrapped in film.

A bale is a box in perspective (:mod:`geometry`) whose sides are garment strata
(:mod:`strata`), whose top is a pressed garment, crossed by 2 to 6 polypropylene straps or
steel bands, sometimes with a paper label, then wrapped in film (:mod:`film`). Groups stack 2
to 4 bales; walls stack a dozen in a warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from karung.training.synth.context import Ctx
from karung.training.synth.decor import paper_label
from karung.training.synth.draw import over, wobble
from karung.training.synth.film import FilmLook, apply_film
from karung.training.synth.geometry import Box, Camera, render_boxes
from karung.training.synth.segment import Cutout
from karung.training.synth.strata import layer_bounds, make_atlas, strata_texture, top_texture

Rng = np.random.Generator

STRAP_COLOURS: Final = (
    (40, 150, 80),
    (235, 200, 30),
    (40, 90, 200),
    (235, 235, 228),
    (200, 45, 40),
    (25, 25, 28),
    (240, 120, 30),
    (60, 170, 200),
)
STEEL: Final = (165, 168, 172)


@dataclass(frozen=True)
class Strap:
    """``axis`` x: over the top front-to-back; z: side-to-side; y: round the girth."""

    axis: str
    pos: float
    colour: tuple[int, int, int]
    width: float  # metres
    steel: bool


@dataclass(frozen=True)
class BaleLook:
    """Per-bale appearance drawn once so that all its faces agree (strata meet at corners)."""

    size: tuple[float, float, float]
    bounds: np.ndarray
    straps: tuple[Strap, ...]
    label: tuple[float, float] | None  # label centre on the front face, fractions


def sample_strap_colour(rng: Rng) -> tuple[tuple[int, int, int], bool]:
    """A strap colour (or steel): one per bale, or one per wall from the same supplier."""
    steel = bool(rng.random() < 0.15)
    return (STEEL if steel else STRAP_COLOURS[int(rng.integers(len(STRAP_COLOURS)))]), steel


def sample_look(
    rng: Rng, size: tuple[float, float, float], strap: tuple[tuple[int, int, int], bool]
) -> BaleLook:
    """Random strata, straps (2-6, often crossing) and an optional label for one bale."""
    n_layers = int(rng.integers(12, 40) * size[1] / 0.8) + 4
    colour, steel = strap
    n = int(rng.integers(2, 7))
    axes = rng.choice(["x", "x", "z", "y"], size=n)
    straps = []
    for axis in axes:
        pos = float(np.clip(rng.normal(0.5, 0.25), 0.12, 0.88))
        c = colour if rng.random() < 0.8 else STRAP_COLOURS[int(rng.integers(len(STRAP_COLOURS)))]
        straps.append(Strap(str(axis), pos, c, float(rng.uniform(0.015, 0.03)), steel))
    label = (
        (float(rng.uniform(0.25, 0.75)), float(rng.uniform(0.2, 0.6)))
        if rng.random() < 0.3
        else None
    )
    return BaleLook(size, layer_bounds(rng, n_layers), tuple(straps), label)


def _strap_spots(face: str, s: Strap) -> list[tuple[bool, float]]:
    """Where strap ``s`` shows on ``face``: (vertical band?, position along the face)."""
    if s.axis == "x":
        return {"front": [(True, s.pos)], "back": [(True, 1 - s.pos)], "top": [(True, s.pos)]}.get(
            face, []
        )
    if s.axis == "z":
        return {
            "right": [(True, s.pos)],
            "left": [(True, 1 - s.pos)],
            "top": [(False, 1 - s.pos)],
        }.get(face, [])
    return [] if face == "top" else [(False, s.pos)]


def draw_strap(
    tex: np.ndarray, vertical: bool, pos: float, width_px: float, s: Strap, rng: Rng
) -> None:
    """Paint one strap band (with its shadow groove) onto a face texture, in place."""
    h, w = tex.shape[:2]
    length, across = (h, w) if vertical else (w, h)
    c = int(pos * across)
    half = max(1, int(width_px / 2))
    groove = slice(
        max(c - half - max(1, half // 2), 0), min(c + half + max(1, half // 2) + 1, across)
    )
    band = slice(max(c - half, 0), min(c + half + 1, across))
    k = band.stop - band.start
    if k <= 0:
        return
    t = np.linspace(-1, 1, k, dtype=np.float32)
    prof = 1.05 - 0.3 * t**2 if not s.steel else 0.8 + 0.5 * np.exp(-((t - 0.3) ** 2) * 8)
    emboss = 1.0 + 0.03 * np.sin(np.arange(length, dtype=np.float32) * 0.9 + rng.uniform(0, 6))
    strip = np.array(s.colour, np.float32) * (prof[None, :] * emboss[:, None])[..., None]
    if vertical:
        tex[:, groove] *= 0.62
        tex[:, band, :3] = strip
    else:
        tex[groove, :] *= 0.62
        tex[band, :, :3] = strip.transpose(1, 0, 2)


class _BaleTextures:
    """Texture callback for :func:`render_boxes`; reuses textures beyond the fourth bale."""

    def __init__(self, rng: Rng, palette: list[Cutout], looks: list[BaleLook]) -> None:
        self.rng, self.palette, self.looks = rng, palette, looks
        self.atlas = make_atlas(rng, palette)
        self.cache: dict[str, list[np.ndarray]] = {}

    def __call__(self, box: int, face: str, w: int, h: int) -> np.ndarray:
        look = self.looks[box]
        tex = self._base(box, face, w, h, look)
        metres = look.size[0] if face in ("front", "back", "top") else look.size[2]
        for s in look.straps:
            for vertical, pos in _strap_spots(face, s):
                draw_strap(tex, vertical, pos, s.width / metres * w, s, self.rng)
        if face == "front" and look.label is not None and w > 12:
            lw, lh = max(6, int(w * 0.28)), max(5, int(h * 0.12))
            over(
                tex,
                paper_label(self.rng, lw, lh),
                int(look.label[0] * w) - lw // 2,
                int(look.label[1] * h),
            )
        return tex

    def _base(self, box: int, face: str, w: int, h: int, look: BaleLook) -> np.ndarray:
        kind = "top" if face == "top" else "side"
        cached = self.cache.setdefault(kind, [])
        if box >= 4 and cached:
            src = cached[int(self.rng.integers(len(cached)))]
            tex = np.ascontiguousarray(src[:, ::-1] if self.rng.random() < 0.5 else src)
            return _fit(tex, w, h) * np.float32(self.rng.uniform(0.85, 1.1))
        if kind == "top":
            tex = top_texture(self.rng, self.atlas, self.palette, w, h)
        else:
            tex = strata_texture(self.rng, self.atlas, w, h, look.bounds)
        cached.append(tex)
        return tex.copy()


def _fit(tex: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)


def _arrangement(rng: Rng, layout: str, size: tuple[float, float, float]) -> list[Box]:
    """Single bale, a stack/row of 2-4, or a wall of up to 5 x 4 (front row only)."""
    sx, sy, _ = size
    gap = float(rng.uniform(0.0, 0.04))
    if layout == "single":
        cols, rows = 1, 1
    elif layout == "group":
        cols, rows = [(2, 1), (1, 2), (2, 2), (3, 1)][int(rng.integers(4))]
    else:
        cols, rows = int(rng.integers(3, 6)), int(rng.integers(2, 5))
    boxes = []
    for r in range(rows):
        for c in range(cols):
            if r == rows - 1 and rows > 1 and rng.random() < 0.25:
                continue  # an incomplete top row
            jitter = rng.normal(0, 0.02, 3) * [1, 0, 1]
            x = (c - (cols - 1) / 2) * (sx + gap) + jitter[0]
            y = r * (sy + gap) + sy / 2
            boxes.append(Box((float(x), float(y), float(jitter[2])), size))
    return boxes


def render_bales(ctx: Ctx, long_side: int) -> tuple[np.ndarray, dict[str, object]]:
    """A bale sprite (single, stack or wall) plus what was drawn, for the manifest."""
    rng, scene = ctx.rng, ctx.scene
    standing = rng.random() < 0.5
    base = (0.5, 0.8, 0.5) if standing else (0.8, 0.5, 0.5)
    size = tuple(float(v) for v in np.asarray(base) * rng.uniform(0.85, 1.15, 3))
    boxes = _arrangement(rng, scene.layout, size)  # type: ignore[arg-type]
    palette = ctx.pick.palette(int(rng.integers(5, 13)))
    wall_strap = sample_strap_colour(rng)
    looks = [
        sample_look(rng, box.size, wall_strap if rng.random() < 0.8 else sample_strap_colour(rng))
        for box in boxes
    ]
    cam = Camera(scene.yaw, scene.pitch, scene.distance)
    sprite = render_boxes(boxes, cam, long_side, _BaleTextures(rng, palette, looks), 0.35)
    sprite = wobble(sprite, rng, amp=long_side * 0.006, cell=long_side / 6)
    film = rng.random() < 0.85
    if film:
        sprite = apply_film(rng, sprite, FilmLook.sample(rng))
    info = {
        "variant": f"bale-{scene.layout}",
        "n_objects": len(boxes),
        "film": film,
        "n_straps": sum(len(lk.straps) for lk in looks),
    }
    return sprite, info
