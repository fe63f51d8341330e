"""Bale images: pillowy bales alone, in stacks or in walls, opened bales, and the older strata
boxes, each recorded as its own ``variant`` so that whole variants can be held out.

Variants: ``bale-film`` (clear or milky film with strong highlights over pressed clothes),
``bale-woven`` (white or blue woven polypropylene wrap), ``bale-bare`` (banded, no wrap),
``bale-open`` (an opened bale with clothes spilling over the top) and ``bale-strata`` (the
first renderer: a box with compressed garment strata, :mod:`bale`).
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth.bale import render_bales
from karung.training.synth.context import Ctx
from karung.training.synth.draw import chan, crop_to_content, new_sprite, over, smooth
from karung.training.synth.film import FilmLook, apply_film, specular
from karung.training.synth.pillow import BlockShape, PillowStyle, _base, block, strap_or_other
from karung.training.synth.sack import clothes_heap

Rng = np.random.Generator
STYLES: Final = ("film", "woven", "bare", "open", "strata")
STYLE_P: Final = (0.42, 0.14, 0.1, 0.14, 0.2)
SINGLE_SIDE: Final = 280
PILE_UNIQUE: Final = 3


def _shape(ctx: Ctx, w: int, h: int, depth: int, top: bool, side: int) -> BlockShape:
    sc = ctx.scene
    d = int(depth * np.sin(np.radians(max(sc.pitch, 4.0))) * 1.1) if top else 0
    s = int(depth * np.sin(np.radians(sc.yaw)) * 0.9) * side
    return BlockShape(w, h, d, s)


def wrap(ctx: Ctx, sprite: np.ndarray, style: PillowStyle, haze: bool = True) -> np.ndarray:
    """Film over one bale: haze, streaks, crinkles (unless ``haze`` is off: a pile gets them
    once, see :func:`pile`), then hot highlights on the bulges and a bright rim."""
    rng = ctx.rng
    if style.wrap != "film":
        return sprite
    out = (
        apply_film(rng, sprite, FilmLook.sample(rng, clear=rng.random() < 0.5)) if haze else sprite
    )
    lum = cv2.cvtColor(np.ascontiguousarray(out[..., :3]), cv2.COLOR_RGB2GRAY)
    bumps = smooth(lum, max(2.0, max(out.shape[:2]) / 25)) / 255.0
    specular(rng, out, np.clip(bumps * 1.5, 0, 1), float(rng.uniform(0.6, 1.1)))
    return rim_light(rng, out)


def rim_light(rng: Rng, sprite: np.ndarray) -> np.ndarray:
    """Film stretched over a rounded edge shines along it: a bright band inside the outline,
    strongest on the upper edges that face the ceiling lights."""
    h, w = sprite.shape[:2]
    alpha = sprite[..., 3]
    k = max(3, int(max(h, w) * rng.uniform(0.015, 0.035))) | 1
    inner = cv2.erode(alpha, np.ones((k, k), np.uint8))
    band = smooth(np.clip(alpha - inner, 0, 1), max(1.0, k / 3))
    upper = np.linspace(1.0, 0.25, h, dtype=np.float32)[:, None]
    gain = band * upper * float(rng.uniform(0.35, 0.75)) * alpha
    sprite[..., :3] = sprite[..., :3] * chan(1.0 - gain) + chan(gain * 245.0)
    return sprite


def one_bale(ctx: Ctx, style: PillowStyle, long_side: int) -> np.ndarray:
    """A single pillowy bale, standing or lying, with top and side in view.

    Drawn at most ``SINGLE_SIDE`` px long (the compositor enlarges it): its film and bulge
    passes cost per pixel, and the soft film hides the small loss of sharpness.
    """
    rng = ctx.rng
    long_side = min(long_side, SINGLE_SIDE)
    standing = rng.random() < 0.45
    ratio = rng.uniform(1.3, 1.8)
    w, h = (int(long_side / ratio), long_side) if standing else (long_side, int(long_side / ratio))
    shape = _shape(ctx, w, h, int(min(w, h) * rng.uniform(0.6, 1.0)), True, 1)
    return wrap(ctx, block(ctx, style, shape), style)


def pile(ctx: Ctx, style: PillowStyle, cols: int, rows: int, long_side: int) -> np.ndarray:
    """Bales in a grid (``rows`` high), bottom row first; only the top row shows its top and
    only the end column its side. Face textures are shared across the pile (cheaper)."""
    rng = ctx.rng
    lying = rng.random() < 0.7
    ratio = rng.uniform(1.3, 1.8)
    span = max(cols * 0.92, rows * 0.9 / ratio if lying else rows * 0.9 * ratio)
    unit = max(24, int(long_side / (span + 0.4)))
    w, h = (unit, int(unit / ratio)) if lying else (int(unit / ratio), unit)
    bases = [_base(ctx, style, w, h, 0.5) for _ in range(3)]
    made: dict[tuple[bool, bool], list[np.ndarray]] = {}
    sprites = []
    for r in range(rows):
        for c in range(cols):
            if r == rows - 1 and rows > 1 and rng.random() < 0.2:
                continue  # an incomplete top row
            end = c == (cols - 1 if ctx.scene.yaw > 0 else 0)
            key = (r == rows - 1, end)
            sprites.append((r, c, _pile_block(ctx, style, (w, h), key, made, bases)))
    pad = int(unit * 0.4)
    canvas = new_sprite(int(rows * h * 0.9) + 2 * pad + h, int(cols * w * 0.92) + 2 * pad + w)
    bottom = canvas.shape[0] - pad
    for r, c, s in sprites:
        x = pad + int(c * w * 0.92 + rng.normal(0, w * 0.03))
        y = bottom - s.shape[0] - int(r * h * 0.88 + rng.normal(0, h * 0.02))
        over(canvas, s, x, y)
    canvas = crop_to_content(canvas)
    if style.wrap == "film":  # haze and crinkles once over the pile: one pass, not one per bale
        canvas = apply_film(rng, canvas, FilmLook.sample(rng, clear=rng.random() < 0.5))
    return canvas


def _pile_block(
    ctx: Ctx,
    style: PillowStyle,
    size: tuple[int, int],
    key: tuple[bool, bool],
    made: dict[tuple[bool, bool], list[np.ndarray]],
    bases: list[np.ndarray],
) -> np.ndarray:
    """A bale of a pile: up to ``PILE_UNIQUE`` drawn per kind of position (top row? end
    column?), then reused, mirrored where no side shows (bales of one lot look alike)."""
    rng, (w, h) = ctx.rng, size
    done = made.setdefault(key, [])
    if len(done) >= PILE_UNIQUE:
        s = done[int(rng.integers(len(done)))]
        return np.ascontiguousarray(s[:, ::-1]) if not key[1] and rng.random() < 0.5 else s
    shape = _shape(ctx, w, h, int(min(w, h) * 0.8), key[0], int(key[1]))
    st = strap_or_other(rng, style)
    done.append(wrap(ctx, block(ctx, st, shape, bases), st, haze=False))
    return done[-1]


def opened(ctx: Ctx, style: PillowStyle, long_side: int) -> np.ndarray:
    """An opened bale: bands cut on top, clothes spilling over it and down the front."""
    rng = ctx.rng
    long_side = min(long_side, SINGLE_SIDE)
    base = block(
        ctx, style, _shape(ctx, long_side, int(long_side * 0.6), int(long_side * 0.5), True, 1)
    )
    base = wrap(ctx, base, style)
    h, w = base.shape[:2]
    canvas = new_sprite(int(h * 1.45), int(w * 1.15))
    oy, ox = canvas.shape[0] - h, (canvas.shape[1] - w) // 2
    over(canvas, base, ox, oy)
    heap = clothes_heap(ctx, int(h * 0.75), int(w * 1.05), int(rng.integers(5, 10)))
    dome: np.ndarray = np.zeros(heap.shape[:2], np.float32)
    hh, hw = heap.shape[:2]
    cv2.ellipse(
        dome, (hw // 2, int(hh * 0.62)), (int(hw * 0.48), int(hh * 0.45)), 0, 0, 360, 1.0, -1
    )
    heap *= chan(cv2.GaussianBlur(dome, (0, 0), max(1.0, hw / 40)), 4)
    heap[..., :3] *= chan(
        0.7 + 0.4 * np.linspace(1, 0, hh, dtype=np.float32)[:, None] * np.ones((1, hw), np.float32)
    )
    over(canvas, heap, ox - int(w * 0.0), oy - int(hh * 0.5))
    for _ in range(int(rng.integers(1, 4))):  # garments hanging down the front or on the floor
        drape = clothes_heap(
            ctx, int(h * rng.uniform(0.3, 0.5)), int(w * rng.uniform(0.2, 0.35)), 1
        )
        over(canvas, drape, int(ox + rng.uniform(0, 0.8) * w), int(oy + rng.uniform(0.1, 0.7) * h))
    return crop_to_content(canvas)


def render_any_bale(
    ctx: Ctx, long_side: int, kind: str | None = None
) -> tuple[np.ndarray, dict[str, object]]:
    """A bale image of a random variant (or of ``kind``, one of :data:`STYLES`) and its info."""
    rng, sc = ctx.rng, ctx.scene
    drawn = str(rng.choice(STYLES, p=STYLE_P))
    kind = kind or drawn
    if kind == "strata":
        sprite, info = render_bales(ctx, long_side)
        return sprite, {**info, "variant": "bale-strata"}
    wrap_kind = (
        "film" if kind == "open" and rng.random() < 0.6 else ("bare" if kind == "open" else kind)
    )
    style = PillowStyle.sample(rng, wrap_kind, open_top=kind == "open")
    count = 1
    if kind == "open":
        sprite = opened(ctx, style, long_side)
    elif sc.layout == "single":
        sprite = one_bale(ctx, style, long_side)
    else:
        grid = [(2, 1), (1, 2), (2, 2), (3, 1), (3, 2)] if sc.layout == "group" else None
        cols, rows = (
            grid[int(rng.integers(len(grid)))]
            if grid
            else (int(rng.integers(2, 7)), int(rng.integers(2, 6)))
        )
        sprite, count = pile(ctx, style, cols, rows, long_side), cols * rows
    info = {
        "variant": f"bale-{kind}",
        "n_objects": count,
        "film": style.wrap == "film",
        "n_straps": len(style.long) + len(style.girth) + len(style.cross),
        "sticker": style.sticker > 0,
    }
    return sprite, info
