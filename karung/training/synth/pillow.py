"""Pillowy bales: rounded blocks of pressed clothes that bulge between straps that bite in.

A real export bale is not a sharp cuboid: the press releases, the faces swell between the
bands, the corners round off and the bands cut grooves. A block here is drawn as three faces
(front, top, one side) of pressed clothes (:mod:`patches`) or woven polypropylene, each shaded
as a row of cushions between its straps; the whole silhouette is then rounded and bulged by a
remap that is strongest half-way between straps and nil under them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from karung.training.synth.bale import STRAP_COLOURS, Strap, draw_strap, sample_strap_colour
from karung.training.synth.context import Ctx
from karung.training.synth.decor import grade_sticker, marker_writing, paper_label
from karung.training.synth.draw import chan, new_sprite, over, warp_quad
from karung.training.synth.noise import value_noise
from karung.training.synth.patches import pressed_clothes
from karung.training.synth.sack import weave

Rng = np.random.Generator
WOVEN_WRAP: Final = ((238, 238, 232), (225, 222, 210), (40, 100, 185), (90, 150, 215))


@dataclass(frozen=True)
class PillowStyle:
    """One bale's (or one wall's) wrap, bands and decoration."""

    wrap: str  # "film", "woven" or "bare"
    strap: tuple[tuple[int, int, int], bool]  # colour, steel
    long: tuple[float, ...]  # bands lengthwise: vertical on the front, over the top
    girth: tuple[float, ...]  # bands round the girth: horizontal on front and side
    cross: tuple[float, ...]  # bands crosswise: vertical on the side, across the top
    woven: tuple[float, float, float]
    sticker: float  # 0 none; else the sticker's width as a share of the front
    marker: bool
    goods: str = "clothes"  # "foam": a mattress or foam block (the negative look-alike)

    @classmethod
    def sample(cls, rng: Rng, wrap: str, open_top: bool = False) -> PillowStyle:
        """3-6 bands in a grid (lengthwise bands cut on an opened bale)."""
        n = int(rng.integers(3, 7))
        n_long = 0 if open_top else int(rng.integers(1, min(n, 4)))
        n_girth = int(rng.integers(0, n - n_long + 1))

        def spots(k: int) -> tuple[float, ...]:
            if k == 0:
                return ()
            base = (np.arange(k) + 0.5) / k
            return tuple(float(v) for v in np.clip(base + rng.normal(0, 0.05, k), 0.08, 0.92))

        colour = WOVEN_WRAP[int(rng.integers(len(WOVEN_WRAP)))]
        return cls(
            wrap=wrap,
            strap=sample_strap_colour(rng),
            long=spots(n_long),
            girth=spots(n_girth),
            cross=spots(max(0, n - n_long - n_girth)),
            woven=tuple(float(c) for c in np.asarray(colour) + rng.normal(0, 6, 3)),  # type: ignore[arg-type]
            sticker=float(rng.uniform(0.18, 0.32)) if rng.random() < 0.45 else 0.0,
            marker=wrap != "woven" and rng.random() < 0.25,
        )


def cushions(n: int, straps: Sequence[float]) -> np.ndarray:
    """Height along one axis in ``[0, 1]``: a swell between bands, nil at bands and ends."""
    t = (np.arange(n, dtype=np.float32) + 0.5) / max(n, 1)
    cuts = [0.0, *sorted(straps), 1.0]
    prof = np.zeros(n, np.float32)
    for a, b in itertools.pairwise(cuts):
        seg = (t >= a) & (t < b)
        prof[seg] = np.sin(np.pi * (t[seg] - a) / max(b - a, 1e-3)) ** 0.6
    barrel = np.sin(np.pi * t) ** 0.4
    return (0.5 * prof + 0.5 * barrel).astype(np.float32)


def _base(ctx: Ctx, style: PillowStyle, w: int, h: int, squash: float) -> np.ndarray:
    rng = ctx.rng
    if style.wrap == "woven":
        tex = np.empty((h, w, 3), np.float32)
        tex[:] = style.woven
        tex *= chan(weave(rng, h, w, max(3.0, max(w, h) / 70), 0.08))
        return tex * chan(0.85 + 0.25 * value_noise(rng, h, w, max(4.0, max(w, h) / 5)))
    if style.goods == "foam":
        return quilted(rng, w, h, style.woven)
    n = int(np.clip(max(w, h) / 22, 4, 10))
    return pressed_clothes(ctx, w, h, squash, n)


def quilted(rng: Rng, w: int, h: int, colour: tuple[float, float, float]) -> np.ndarray:
    """Mattress ticking or foam: one colour, a diamond quilting pattern, soft lumps."""
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = colour
    period = max(4.0, max(w, h) / float(rng.uniform(6, 14)))
    ys, xs = np.mgrid[:h, :w].astype(np.float32)
    d = np.minimum(np.abs(((xs + ys) / period) % 1 - 0.5), np.abs(((xs - ys) / period) % 1 - 0.5))
    seams = np.clip(1.0 - d * 8.0, 0, 1) if rng.random() < 0.7 else np.zeros_like(d)
    return tex * chan((1.0 - 0.25 * seams) * (0.9 + 0.15 * value_noise(rng, h, w, period)))


def face(
    ctx: Ctx,
    style: PillowStyle,
    tex: np.ndarray,
    across: Sequence[float],
    down: Sequence[float],
    light: tuple[float, float],
) -> np.ndarray:
    """Shade ``tex`` as cushions between vertical bands ``across`` and horizontal ``down``;
    then paint the bands (with their grooves) over it."""
    h, w = tex.shape[:2]
    px, py = cushions(w, across), cushions(h, down)
    dx, dy = np.gradient(px) * w * 0.08, np.gradient(py) * h * 0.08
    shade = np.outer(0.68 + 0.32 * py, 0.68 + 0.32 * px)
    shade *= 1.0 + np.clip(np.add.outer(dy * -light[1], dx * light[0]), -0.35, 0.35)
    out = tex * chan(shade.astype(np.float32))
    colour, steel = style.strap
    width = max(1.5, min(w, h) * float(ctx.rng.uniform(0.02, 0.035)))
    for pos in across:
        draw_strap(out, True, pos, width, Strap("x", pos, colour, 0.02, steel), ctx.rng)
    for pos in down:
        draw_strap(out, False, pos, width, Strap("y", pos, colour, 0.02, steel), ctx.rng)
    return out


def _decorate_front(ctx: Ctx, style: PillowStyle, tex: np.ndarray) -> None:
    rng = ctx.rng
    h, w = tex.shape[:2]
    if style.sticker and w > 20:
        lw = max(8, int(w * style.sticker))
        lh = max(6, int(lw * rng.uniform(0.45, 0.8)))
        maker = grade_sticker if rng.random() < 0.75 else paper_label
        sticker = maker(rng, lw, lh)
        over(
            tex, sticker, int(rng.uniform(0.05, 0.95) * w - lw / 2), int(rng.uniform(0.1, 0.6) * h)
        )
    if style.marker and w > 30:
        note = marker_writing(rng, max(6, int(h * rng.uniform(0.08, 0.16))))
        over(tex, note, int(rng.uniform(0.0, 0.5) * w), int(rng.uniform(0.1, 0.7) * h))


@dataclass(frozen=True)
class BlockShape:
    """Pixel size of a block's front (``w x h``), its top's depth ``d`` and side's width ``s``
    (negative: the left side shows)."""

    w: int
    h: int
    d: int
    s: int


def block(
    ctx: Ctx, style: PillowStyle, shape: BlockShape, bases: list[np.ndarray] | None = None
) -> np.ndarray:
    """One pillowy bale (sprite) with its front, top (if ``d``) and side (if ``s``)."""
    light = (ctx.scene.light_x, ctx.scene.light_y)
    w, h, d, s = shape.w, shape.h, shape.d, shape.s
    pad = max(3, int(max(w, h) * 0.1))
    x0 = pad + max(0, -s)
    canvas = new_sprite(h + d + 2 * pad, w + abs(s) + 2 * pad)
    y0 = pad + d
    front = face(ctx, style, _pick(ctx, bases, w, h, 0.5, style), style.long, style.girth, light)
    _decorate_front(ctx, style, front)
    quads = [(front, [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)], 1.0)]
    if d >= 3:
        top = face(ctx, style, _pick(ctx, bases, w, max(d, w // 3), 1.0, style), style.long,
                   [1 - c for c in style.cross], light)  # fmt: skip
        tq = [(x0 + s, pad), (x0 + w + s, pad), (x0 + w, y0), (x0, y0)]
        quads.append((top, tq, 1.1))
    if abs(s) >= 3:
        sw = max(abs(s), w // 3)
        side = face(
            ctx, style, _pick(ctx, bases, sw, h, 0.5, style), style.cross, style.girth, light
        )
        xs = x0 + w if s > 0 else x0
        sq = [(xs, y0), (xs + s, pad), (xs + s, pad + h), (xs, y0 + h)]
        if s < 0:
            sq = [(xs + s, pad), (xs, y0), (xs, y0 + h), (xs + s, pad + h)]
            side = side[:, ::-1].copy()
        quads.append((side, sq, 0.7))
    for tex, quad, gain in quads:
        warp_quad(tex * np.float32(gain), np.asarray(quad, np.float32), canvas, 0.3)
    return bulge(ctx.rng, canvas, (x0, y0, w, h), style)


def _pick(
    ctx: Ctx, bases: list[np.ndarray] | None, w: int, h: int, squash: float, style: PillowStyle
) -> np.ndarray:
    """A face texture: new, or a resized and flipped one of a wall's shared ``bases``."""
    if not bases:
        return _base(ctx, style, max(4, w), max(4, h), squash)
    src = bases[int(ctx.rng.integers(len(bases)))]
    src = src[:, ::-1] if ctx.rng.random() < 0.5 else src
    out = cv2.resize(
        np.ascontiguousarray(src), (max(4, w), max(4, h)), interpolation=cv2.INTER_AREA
    )
    return out * np.float32(ctx.rng.uniform(0.85, 1.1))


def bulge(
    rng: Rng, sprite: np.ndarray, front: tuple[int, int, int, int], style: PillowStyle
) -> np.ndarray:
    """Round the corners and swell the outline between the bands (pinched under them)."""
    hh, ww = sprite.shape[:2]
    x0, y0, w, h = front
    r = max(1.5, min(w, h) * 0.06)
    alpha = cv2.GaussianBlur(sprite[..., 3], (0, 0), r)
    alpha = np.clip((alpha - 0.5) * 4 + 0.5, 0, 1)
    sprite = sprite * chan(np.minimum(alpha, 1.0), 4)
    hy: np.ndarray = np.zeros(hh, np.float32)
    hy[y0 : y0 + h] = cushions(h, style.girth)[: max(0, min(h, hh - y0))]
    hx: np.ndarray = np.zeros(ww, np.float32)
    hx[x0 : x0 + w] = cushions(w, style.long)[: max(0, min(w, ww - x0))]
    a, b = float(rng.uniform(0.04, 0.1)), float(rng.uniform(0.03, 0.08))
    cx, cy = x0 + w / 2, y0 + h / 2
    xs = np.arange(ww, dtype=np.float32)
    ys = np.arange(hh, dtype=np.float32)
    map_x = cx + (xs[None, :] - cx) / (1 + a * hy[:, None])
    map_y = cy + (ys[:, None] - cy) / (1 + b * hx[None, :])
    # Uneven stuffing: slow lumps along the outline and the faces, never a straight edge.
    amp, cell = max(1.0, min(w, h) * 0.025), max(8.0, min(w, h) / 3)
    map_x = map_x + (value_noise(rng, hh, ww, cell) - 0.5) * 2 * amp
    map_y = map_y + (value_noise(rng, hh, ww, cell) - 0.5) * 2 * amp
    return cv2.remap(sprite, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR)


def strap_or_other(rng: Rng, style: PillowStyle) -> PillowStyle:
    """The same style with, one time in five, another band colour (a bale from elsewhere)."""
    if rng.random() >= 0.2:
        return style
    colour = STRAP_COLOURS[int(rng.integers(len(STRAP_COLOURS)))]
    return PillowStyle(**{**style.__dict__, "strap": (colour, False)})
