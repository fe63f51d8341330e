"""Sacks ("karung"): woven polypropylene sacks, clear bags of clothes and jute sacks.

A sack is a 2-D silhouette (a bulging pillow with a tied neck, a sewn top with corner ears,
or an open top with clothes showing), coloured with a woven-tape pattern, lit as a lumpy
height field and creased where the neck is gathered. Clear bags are filled with real garment
cut-outs and wrapped in film.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from karung.training.synth.context import Ctx
from karung.training.synth.decor import grade_sticker, paper_label, stamp, text_mask
from karung.training.synth.draw import (
    chan,
    crop_to_content,
    fit_long_side,
    height_shading,
    new_sprite,
    over,
    premultiply,
    rotate_sprite,
    smooth,
    view_warp,
)
from karung.training.synth.film import FilmLook, apply_film, specular
from karung.training.synth.noise import fractal_noise, grain, noise_1d
from karung.training.synth.patches import quick_sprite

Rng = np.random.Generator

WOVEN: Final = (
    (236, 236, 230),
    (228, 226, 212),
    (35, 110, 190),
    (70, 150, 90),
    (120, 175, 220),
    (225, 215, 180),
    (60, 60, 140),
)
WOVEN_P: Final = (0.32, 0.14, 0.18, 0.14, 0.1, 0.06, 0.06)
INKS: Final = ((30, 60, 160), (190, 30, 35), (30, 120, 60), (20, 20, 25))
PRINT_WORDS: Final = (
    "BERAS",
    "PREMIUM",
    "50 KG",
    "25 KG",
    "SUPER",
    "QUALITY",
    "TEPUNG",
    "GULA",
    "PAKAN",
    "EXPORT",
    "NO.1",
    "GRADE A",
    "NET",
    "PUTIH",
    "USED CLOTHING",
    "CREAM",
)


@dataclass(frozen=True)
class SackStyle:
    """Material (woven, clear, jute), top (tied, sewn, open) and decoration of a sack."""

    kind: str
    top: str
    colour: tuple[float, float, float]
    printed: bool
    stripes: bool
    label: bool

    @classmethod
    def sample(cls, rng: Rng) -> SackStyle:
        """A random style: mostly woven PP, a third clear or white plastic bags, some jute."""
        kind = str(rng.choice(["woven", "clear", "milky", "jute"], p=[0.52, 0.2, 0.16, 0.12]))
        tops = {
            "woven": ([0.4, 0.25, 0.35]),
            "clear": ([1.0, 0.0, 0.0]),
            "milky": ([1.0, 0.0, 0.0]),
            "jute": ([0.4, 0.4, 0.2]),
        }
        top = str(rng.choice(["tied", "sewn", "open"], p=tops[kind]))
        base = WOVEN[int(rng.choice(len(WOVEN), p=WOVEN_P))] if kind == "woven" else (150, 122, 88)
        r, g, b = (float(c) for c in np.clip(np.asarray(base) + rng.normal(0, 8, 3), 0, 255))
        return cls(
            kind,
            top,
            (r, g, b),
            kind == "woven" and rng.random() < 0.4,
            kind == "woven" and rng.random() < 0.35,
            rng.random() < (0.5 if kind in ("clear", "milky") else 0.25),
        )

    @property
    def variant(self) -> str:
        """The manifest variant: ``sack-woven-<top>``, ``sack-clear``, ``sack-milky``, ..."""
        return f"sack-woven-{self.top}" if self.kind == "woven" else f"sack-{self.kind}"


def _half_width(rng: Rng, h: int, w: int, top: str) -> tuple[np.ndarray, int]:
    """Half-width per row (left and right differ a little) and the neck's row."""
    t = np.linspace(0, 1, h, dtype=np.float32)
    body = 0.5 * w * (0.86 + 0.14 * np.abs(np.sin(np.pi * t)) ** 0.7)
    round_bottom = np.sqrt(np.clip(1 - np.clip((t - 0.86) / 0.14, 0, 1) ** 2 * 0.6, 0, 1))
    body *= round_bottom
    neck = 0
    if top == "tied":
        neck = int(h * rng.uniform(0.1, 0.16))
        shoulder = int(h * rng.uniform(0.25, 0.38))
        neck_hw = w * rng.uniform(0.05, 0.09)
        s = np.clip((np.arange(h) - neck) / max(shoulder - neck, 1), 0, 1)
        s = s * s * (3 - 2 * s)
        tail = neck_hw * (1 + 1.6 * np.clip(1 - np.arange(h) / max(neck, 1), 0, 1))
        body = np.where(np.arange(h) < neck, tail, neck_hw + (body - neck_hw) * s)
    return body, neck


def sack_mask(rng: Rng, h: int, w: int, top: str) -> tuple[np.ndarray, int]:
    """Anti-aliased float mask of a filled sack and the neck row (0 if not tied)."""
    hw, neck = _half_width(rng, h, w, top)
    wob_l = noise_1d(rng, h, h / 5) * w * 0.025
    wob_r = noise_1d(rng, h, h / 5) * w * 0.025
    ys = np.arange(h, dtype=np.float32)
    y0 = 0.0 if top == "tied" else h * 0.04
    keep = ys >= y0
    left = np.stack([w / 2 - hw - wob_l, ys], 1)[keep]
    right = np.stack([w / 2 + hw + wob_r, ys], 1)[keep][::-1]
    pts = [left, right]
    if top in ("sewn", "open"):  # corner ears poke out above the seam
        ear = w * 0.04
        pts = [
            np.array([[left[0, 0] - ear, 0]], np.float32),
            left,
            right,
            np.array([[right[-1, 0] + ear, 0]], np.float32),
        ]
    if top == "tied":  # ragged gathered top
        xs = np.linspace(right[-1, 0], left[0, 0], 7)
        zig = np.stack([xs, np.where(np.arange(7) % 2 == 0, 0, h * 0.03)], 1)
        pts = [left, right, zig.astype(np.float32)]
    poly = (np.concatenate(pts) * 16).astype(np.int32)
    m8 = np.zeros((h, w), np.uint8)
    cv2.fillPoly(m8, [poly], 255, cv2.LINE_AA, shift=4)
    return m8.astype(np.float32) / 255.0, neck


def weave(rng: Rng, h: int, w: int, period: float, contrast: float) -> np.ndarray:
    """Multiplier of a plain weave of flat tapes: alternate cells run across and along.

    The pattern repeats every two cells, so one tile is drawn and tiled.
    """
    p = max(2, round(period))
    ys, xs = np.mgrid[: 2 * p, : 2 * p].astype(np.float32)
    cell = ((xs // p + ys // p) % 2).astype(bool)
    across = np.cos(2 * np.pi * (ys % p) / p)
    along = np.cos(2 * np.pi * (xs % p) / p)
    tile = 1.0 + contrast * 0.5 * np.where(cell, across, along)
    reps = (h // (2 * p) + 1, w // (2 * p) + 1)
    pattern = np.tile(tile.astype(np.float32), reps)[:h, :w]
    return pattern + grain(rng, h, w, contrast * 0.3)


def _decorate(rng: Rng, img: np.ndarray, style: SackStyle, neck: int) -> None:
    h, w = img.shape[:2]
    ink = INKS[int(rng.integers(len(INKS)))]
    if style.stripes:
        for frac in (rng.uniform(0.12, 0.22), rng.uniform(0.78, 0.9)):
            y, th = int(h * frac), max(1, int(h * rng.uniform(0.008, 0.02)))
            img[y : y + th] = img[y : y + th] * 0.3 + np.array(ink, np.float32) * 0.7
    if style.printed:
        msg = " ".join(str(rng.choice(PRINT_WORDS)) for _ in range(int(rng.integers(1, 3))))
        mask = text_mask(msg, max(6, int(h * rng.uniform(0.06, 0.12))), rng)
        if mask.shape[1] > w * 0.8:
            scale = w * 0.8 / mask.shape[1]
            mask = cv2.resize(mask, (int(w * 0.8), max(1, int(mask.shape[0] * scale))))
        stamp(img, mask, (w - mask.shape[1]) // 2, int(h * rng.uniform(0.35, 0.55)), ink, 0.85)


def _creases(rng: Rng, h: int, w: int) -> np.ndarray:
    """Tension creases running in from the sides of a stuffed sack (a multiplier map)."""
    crease: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 9))):
        side = int(rng.integers(2))
        y = float(rng.uniform(0.2, 0.95)) * h
        x0 = 0 if side == 0 else w
        x1 = w * (rng.uniform(0.2, 0.55) if side == 0 else rng.uniform(0.45, 0.8))
        y1 = y + rng.normal(0, h * 0.06)
        pts = np.array([[x0, y], [(x0 + x1) / 2, (y + y1) / 2 + rng.normal(0, h * 0.02)], [x1, y1]])
        cv2.polylines(
            crease,
            [pts.astype(np.int32)],
            False,
            float(rng.uniform(0.4, 1.0)),
            max(1, w // 50),
            cv2.LINE_AA,
        )
    crease = smooth(crease, max(1.0, w / 70))
    return 1.0 - 0.4 * crease


def _neck_folds(rng: Rng, h: int, w: int, neck: int) -> np.ndarray:
    """Creases radiating down from the gathered neck (a multiplier map)."""
    fold: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(5, 11))):
        end = (int(rng.uniform(0.1, 0.9) * w), int(h * rng.uniform(0.3, 0.6)))
        cv2.line(
            fold, (w // 2, neck), end, float(rng.uniform(0.3, 0.8)), max(1, w // 60), cv2.LINE_AA
        )
    fold = cv2.GaussianBlur(fold, (0, 0), max(1.0, w / 80))
    return 1.0 - 0.35 * fold


def woven_sack(
    rng: Rng, h: int, w: int, style: SackStyle, light: tuple[float, float]
) -> np.ndarray:
    """A woven PP or jute sack sprite of ``h x w`` pixels."""
    mask, neck = sack_mask(rng, h, w, style.top)
    jute = style.kind == "jute"
    period = max(2.0, w / (28 if jute else 60))
    img = np.empty((h, w, 3), np.float32)
    img[:] = style.colour
    img *= chan(weave(rng, h, w, period, 0.22 if jute else 0.1))
    _decorate(rng, img, style, neck)
    lumps = fractal_noise(rng, h, w, w / 3, 2) * 0.18  # clothes inside: lumpier than grain
    shade = height_shading(mask, light, lumps, 0.6, rim=0.45) * _creases(rng, h, w)
    if style.top == "tied":
        shade *= _neck_folds(rng, h, w, neck)
    img *= chan(shade)
    return premultiply(img, mask)


def _open_top(ctx: Ctx, sprite: np.ndarray, w: int, h: int) -> np.ndarray:
    """A dark mouth at the top with clothes bulging well out of it (a taller sprite)."""
    rng = ctx.rng
    pad = int(h * rng.uniform(0.08, 0.22))
    out = new_sprite(h + pad, w)
    out[pad:] = sprite
    cx, cy, rx, ry = w // 2, pad + int(h * 0.12), int(w * 0.42), max(2, int(h * 0.05))
    mouth = np.zeros((h + pad, w), np.float32)
    cv2.ellipse(mouth, (cx, cy), (rx, ry), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    out[..., :3] *= chan(1.0 - 0.8 * mouth)
    heap = clothes_heap(ctx, pad + int(h * 0.2), w, int(rng.integers(5, 10)))
    dome: np.ndarray = np.zeros(heap.shape[:2], np.float32)
    cv2.ellipse(dome, (cx, cy), (int(rx * 1.02), max(2, cy - 2)), 0, 180, 360, 1.0, -1)
    cv2.ellipse(dome, (cx, cy), (int(rx * 0.95), int(ry * 0.9)), 0, 0, 180, 1.0, -1)
    dome = cv2.GaussianBlur(dome, (3, 3), 0)
    heap *= chan(dome, 4)
    ramp = np.linspace(0.75, 1.05, heap.shape[0], dtype=np.float32)  # the mouth is in shade
    heap[..., :3] *= chan(np.repeat(ramp[::-1, None], w, axis=1))
    over(out, heap, 0, 0)
    return out


def clothes_heap(ctx: Ctx, h: int, w: int, n: int) -> np.ndarray:
    """Real garment cut-outs crumpled together (sprite), for clear bags and open sacks."""
    rng = ctx.rng
    heap = new_sprite(h, w)
    for _ in range(n):
        cut = ctx.pick.cutout(fabric=True)
        piece = quick_sprite(cut.rgba, max(4, int(max(h, w) * rng.uniform(0.35, 0.7))))
        piece = rotate_sprite(piece, float(rng.uniform(0, 360)))
        piece[..., :3] *= np.float32(rng.uniform(0.7, 1.05))
        ph, pw = piece.shape[:2]
        over(
            heap,
            piece,
            int(rng.integers(-pw // 3, max(1, w - pw // 2))),
            int(rng.integers(-ph // 3, max(1, h - ph // 2))),
        )
    return heap


def clear_bag(
    ctx: Ctx, h: int, w: int, light: tuple[float, float], milky: bool = False
) -> np.ndarray:
    """A clear (or white, ``milky``) plastic bag stuffed with real clothes, tied at the top."""
    rng = ctx.rng
    mask, neck = sack_mask(rng, h, w, "tied")
    heap = clothes_heap(ctx, h, w, int(np.clip(w / 12, 4, 14)))
    dark = np.float32(rng.uniform(40, 90))
    rgb = heap[..., :3] + dark * (1.0 - heap[..., 3:4])  # gaps show dim clothes further in
    body = (np.arange(h) > neck + h * 0.04)[:, None].astype(np.float32)
    lumps = fractal_noise(rng, h, w, w / 3, 2) * 0.25
    rgb *= chan(height_shading(mask, light, lumps, 0.35))
    knot = np.array([200, 200, 195], np.float32)
    rgb = rgb * body[..., None] + knot * (1 - body[..., None])
    alpha = mask * (body + (1 - body) * 0.6)
    look = FilmLook.sample(rng, clear=not milky)
    if milky:  # white sacks: the clothes only show as shadows through the plastic
        look = FilmLook(float(rng.uniform(0.45, 0.75)), look.gloss, look.crinkles, look.halo)
    sprite = apply_film(rng, premultiply(rgb, alpha), look)
    specular(rng, sprite, None, float(rng.uniform(0.3, 0.8)))
    return sprite


def one_sack(ctx: Ctx, style: SackStyle, h: int, w: int) -> np.ndarray:
    """Render one sack of any style."""
    light = (ctx.scene.light_x, ctx.scene.light_y)
    if style.kind in ("clear", "milky"):
        sprite = clear_bag(ctx, h, w, light, milky=style.kind == "milky")
    else:
        sprite = woven_sack(ctx.rng, h, w, style, light)
        if style.top == "open":
            sprite = _open_top(ctx, sprite, w, h)
    if style.label:
        lw, lh = max(6, int(w * 0.3)), max(5, int(h * 0.14))
        maker = grade_sticker if ctx.rng.random() < 0.6 else paper_label
        x = int(w * ctx.rng.uniform(0.2, 0.5))
        over(sprite, maker(ctx.rng, lw, lh), x, int(h * ctx.rng.uniform(0.3, 0.6)))
    return sprite


def _sack_row(ctx: Ctx, style: SackStyle, n: int, unit: int, lying: bool) -> list[np.ndarray]:
    """``n`` sacks of mostly one style; ``unit`` is a standing sack's height."""
    rng, sprites = ctx.rng, []
    for _ in range(n):
        st = style  # one kind per row: a held-out variant stays whole
        h = int(unit * rng.uniform(0.85, 1.0))
        s = one_sack(ctx, st, h, int(h * rng.uniform(0.55, 0.8)))
        if lying or (ctx.scene.layout == "single" and rng.random() < 0.15):
            s = rotate_sprite(s, float(rng.choice([-90, 90]) + rng.normal(0, 6)))
        elif rng.random() < 0.5:
            s = rotate_sprite(s, float(rng.normal(0, 5)))
        sprites.append(crop_to_content(s))
    return sprites


def _pile(rng: Rng, rows: list[list[np.ndarray]]) -> np.ndarray:
    """Rows of sacks, back row first and higher up, each sack overlapping its neighbour."""
    widths = [int(sum(s.shape[1] * 0.85 for s in row)) + 2 for row in rows]
    heights = [max(s.shape[0] for s in row) for row in rows]
    lift = [int(hh * 0.55) for hh in heights]
    h = heights[-1] + sum(lift[:-1]) + 4
    canvas = new_sprite(h, max(widths) + max(s.shape[1] for s in rows[0]))
    base = h - 2 - sum(lift[:-1])
    for r, row in enumerate(rows):
        x = (canvas.shape[1] - widths[r]) // 2
        for s in row:
            over(canvas, s, x, base - s.shape[0] + int(rng.integers(0, max(1, s.shape[0] // 20))))
            x += int(s.shape[1] * rng.uniform(0.72, 0.95))
        base += lift[r]
    return crop_to_content(canvas)


def render_sacks(
    ctx: Ctx, long_side: int, style: SackStyle | None = None
) -> tuple[np.ndarray, dict[str, object]]:
    """One sack, a row of 2-5, or a pile of rows, as a sprite about ``long_side`` px."""
    rng, scene = ctx.rng, ctx.scene
    drawn = SackStyle.sample(rng)
    style = style or drawn
    rows, per_row = {
        "single": (1, 1),
        "group": (1, int(rng.integers(2, 6))),
        "wall": (int(rng.integers(2, 4)), int(rng.integers(3, 6))),
    }[scene.layout]
    unit = int(long_side / max(per_row * 0.6, 1.0)) if per_row > 1 else long_side
    lying = scene.layout == "wall" and rng.random() < 0.5
    rows_of = [
        _sack_row(ctx, style, per_row, int(unit * (1 - 0.1 * (rows - 1 - r))), lying)
        for r in range(rows)
    ]
    canvas = _pile(rng, rows_of)
    sprite = canvas
    sprite = view_warp(sprite, scene.yaw * 0.4, scene.pitch * 0.5, depth=0.6)
    info = {"variant": style.variant, "n_objects": rows * per_row}
    return fit_long_side(sprite, long_side), info
