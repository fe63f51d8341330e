"""Procedural surfaces: concrete, tiles, wood, bed fabric, painted walls, corrugated steel, kraft.

Each function returns a float32 ``h x w x 3`` image in ``[0, 255]``. They are flat (top-down)
textures; :func:`room` and :func:`warehouse` put them in perspective behind a horizon.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from karung.training.synth.draw import chan
from karung.training.synth.noise import fractal_noise, grain, value_noise

Rng = np.random.Generator
Texture = Callable[[Rng, int, int], np.ndarray]


def _jitter(rng: Rng, rgb: tuple[int, int, int], amount: float) -> np.ndarray:
    """Vary brightness by about ``amount`` levels and hue only a little."""
    base = np.asarray(rgb, np.float32) * (1.0 + rng.normal(0, amount / 255.0))
    return np.clip(base + rng.normal(0, amount / 4.0, 3), 0, 255).astype(np.float32)


def _tint(base: np.ndarray, shade: np.ndarray) -> np.ndarray:
    return chan(shade) * base


def concrete(rng: Rng, h: int, w: int) -> np.ndarray:
    """Grey floor concrete with stains, speckle and the odd crack."""
    base = _jitter(rng, (150, 148, 142), 22)
    shade = 0.82 + 0.3 * fractal_noise(rng, h, w, max(h, w) / 3, 4) + grain(rng, h, w, 0.04)
    img = _tint(base, shade)
    for _ in range(int(rng.integers(0, 3))):
        pts = np.cumsum(rng.normal(0, max(h, w) / 12, (6, 2)), axis=0) + rng.random(2) * [w, h]
        cv2.polylines(img, [pts.astype(np.int32)], False, (base * 0.55).tolist(), 1, cv2.LINE_AA)
    return img


def tiles(rng: Rng, h: int, w: int) -> np.ndarray:
    """Ceramic floor tiles with grout lines and slight per-tile colour differences."""
    palette = [(225, 222, 214), (200, 190, 175), (170, 95, 70), (150, 152, 155), (235, 235, 235)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))], 10)
    size = int(rng.integers(max(12, min(h, w) // 10), max(14, min(h, w) // 3)))
    ny, nx = h // size + 2, w // size + 2
    per_tile = 1.0 + rng.normal(0, 0.04, (ny, nx)).astype(np.float32)
    shade = cv2.resize(per_tile, (nx * size, ny * size), interpolation=cv2.INTER_NEAREST)[:h, :w]
    shade = shade + 0.12 * (value_noise(rng, h, w, max(h, w) / 2) - 0.5)
    img = _tint(base, shade)
    grout = (base * float(rng.uniform(0.55, 0.85))).tolist()
    gw = max(1, size // 20)
    for k in range(nx + 1):
        cv2.line(img, (k * size, 0), (k * size, h), grout, gw)
    for k in range(ny + 1):
        cv2.line(img, (0, k * size), (w, k * size), grout, gw)
    return img


def wood(rng: Rng, h: int, w: int) -> np.ndarray:
    """Plank floor or table top: per-plank tint, wavy grain and dark joints."""
    palette = [(150, 100, 60), (190, 140, 90), (110, 70, 45), (205, 170, 120), (90, 60, 40)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))], 12)
    vertical = bool(rng.random() < 0.5)
    hh, ww = (w, h) if vertical else (h, w)
    plank = int(rng.integers(max(8, hh // 10), max(10, hh // 3)))
    rows = np.arange(hh)[:, None] // plank
    tint = 1.0 + rng.normal(0, 0.08, hh // plank + 2).astype(np.float32)
    warp = value_noise(rng, hh, ww, ww / 4) * 14.0
    grain_f = float(rng.uniform(0.25, 0.6))
    ys = np.arange(hh, dtype=np.float32)[:, None]
    rings = 0.5 + 0.5 * np.sin((ys + warp) * grain_f + rows * 1.7)
    shade = tint[rows] * (0.85 + 0.15 * rings) + grain(rng, hh, ww, 0.02)
    shade[(np.arange(hh) % plank) == 0, :] *= 0.55
    if vertical:
        shade = shade.T
    return _tint(base, np.ascontiguousarray(shade))


def bed_fabric(rng: Rng, h: int, w: int) -> np.ndarray:
    """A bed sheet or blanket: one colour or stripes, soft folds."""
    palette = [(235, 235, 235), (200, 60, 60), (60, 90, 160), (230, 200, 150), (120, 160, 120)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))], 15)
    folds = fractal_noise(rng, h, w, max(h, w) / 2.5, 3)
    shade = 0.78 + 0.35 * folds + grain(rng, h, w, 0.015)
    img = _tint(base, shade)
    if rng.random() < 0.35:
        period = int(rng.integers(8, 40))
        other = _jitter(rng, (245, 245, 240), 20)
        stripe = ((np.arange(w) // period) % 2 == 0)[None, :, None]
        img = np.where(stripe, img, _tint(other, shade))
    return img


def painted_wall(rng: Rng, h: int, w: int) -> np.ndarray:
    """A painted wall or studio backdrop: a soft gradient with faint blotches."""
    palette = [(238, 236, 230), (220, 215, 200), (200, 205, 210), (235, 220, 200), (190, 210, 190)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))], 8)
    ramp = np.linspace(1.0, float(rng.uniform(0.75, 1.0)), h, dtype=np.float32)[:, None]
    shade = ramp * (0.95 + 0.08 * value_noise(rng, h, w, max(h, w) / 2))
    return _tint(base, shade + grain(rng, h, w, 0.01))


def corrugated(rng: Rng, h: int, w: int) -> np.ndarray:
    """Corrugated steel sheet (warehouse walls and roofs)."""
    palette = [(170, 175, 180), (120, 140, 165), (200, 200, 195), (150, 160, 150)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))], 10)
    period = float(rng.uniform(5, 14))
    xs = np.arange(w, dtype=np.float32)[None, :]
    ridges = 0.5 + 0.5 * np.sin(xs * 2 * np.pi / period)
    stains = value_noise(rng, h, w, max(h, w) / 3)
    shade = 0.75 + 0.25 * ridges + 0.12 * (stains - 0.5) + grain(rng, h, w, 0.015)
    return _tint(base, np.broadcast_to(shade, (h, w)).astype(np.float32))


def kraft(rng: Rng, h: int, w: int) -> np.ndarray:
    """Brown corrugated cardboard surface."""
    base = _jitter(rng, (185, 145, 100), 12)
    shade = 0.9 + 0.15 * value_noise(rng, h, w, max(h, w) / 2) + grain(rng, h, w, 0.02)
    return _tint(base, shade)


FLAT: dict[str, Texture] = {
    "concrete": concrete,
    "tiles": tiles,
    "wood": wood,
    "fabric": bed_fabric,
    "wall": painted_wall,
}


def floor_perspective(rng: Rng, tex: Texture, h: int, w: int) -> np.ndarray:
    """A floor texture seen at a grazing angle: the far edge shrinks towards the horizon."""
    big = tex(rng, h, w)
    squeeze = float(rng.uniform(0.25, 0.7))
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    left = w * (1 - squeeze) / 2
    dst = np.array([[left, 0], [w - left, 0], [w * 1.15, h], [-w * 0.15, h]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(
        big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def room(rng: Rng, h: int, w: int) -> np.ndarray:
    """A wall above a floor in perspective, with a skirting board at the horizon."""
    horizon = int(h * rng.uniform(0.15, 0.6))
    wall = painted_wall(rng, max(horizon, 1), w)
    floor_tex = [wood, tiles, concrete][int(rng.integers(3))]
    floor = floor_perspective(rng, floor_tex, h - horizon, w)
    img = np.concatenate([wall, floor], axis=0)[:h]
    skirting = max(1, h // 60)
    img[max(horizon - skirting, 0) : horizon] *= 0.8
    return img


def warehouse(rng: Rng, h: int, w: int) -> np.ndarray:
    """Concrete floor, corrugated wall and sometimes dark roof beams."""
    horizon = int(h * rng.uniform(0.2, 0.55))
    wall = corrugated(rng, max(horizon, 1), w)
    if rng.random() < 0.5:
        for k in range(int(rng.integers(1, 4))):
            y = int(horizon * (k + 1) / 5)
            cv2.line(wall, (0, y), (w, y + int(rng.integers(-5, 6))), (60, 60, 65), max(1, h // 80))
    floor = floor_perspective(rng, concrete, h - horizon, w)
    return np.concatenate([wall * 0.85, floor], axis=0)[:h]


def tarp(rng: Rng, h: int, w: int) -> np.ndarray:
    """A market stall's tarpaulin (blue, orange, green or striped) with sagging folds."""
    palette = [(40, 90, 170), (220, 110, 40), (60, 130, 80), (200, 200, 205)]
    base = _jitter(rng, palette[int(rng.integers(len(palette)))], 12)
    sag = fractal_noise(rng, h, w, max(h, w) / 2, 2)
    shade = 0.75 + 0.4 * sag + grain(rng, h, w, 0.01)
    img = _tint(base, shade)
    if rng.random() < 0.4:
        period = int(rng.integers(max(6, w // 12), max(8, w // 5)))
        other = _jitter(rng, (240, 240, 235), 10)
        stripe = ((np.arange(w) // period) % 2 == 0)[None, :, None]
        img = np.where(stripe, img, _tint(other, shade))
    return img


def shelves(rng: Rng, h: int, w: int) -> np.ndarray:
    """Shop shelving: boards with rows of coloured packets and boxes, dim at the back."""
    img = _tint(_jitter(rng, (90, 85, 80), 20), 0.9 + 0.1 * value_noise(rng, h, w, w / 3))
    board = max(2, h // 40)
    y = 0
    while y < h:
        row = int(h * rng.uniform(0.15, 0.3))
        x = int(rng.integers(0, max(1, w // 20)))
        while x < w:
            bw = int(w * rng.uniform(0.03, 0.12))
            bh = int(row * rng.uniform(0.5, 0.9))
            colour = rng.uniform(30, 230, 3).astype(np.float32)
            box = img[max(0, y + row - bh) : y + row, x : x + bw]
            # A packet or box is lit from above and rounds off at its sides.
            ramp = np.linspace(1.05, 0.7, box.shape[0], dtype=np.float32)[:, None, None]
            side = 0.8 + 0.2 * np.sin(np.linspace(0, np.pi, box.shape[1], dtype=np.float32))
            box[:] = colour * np.float32(rng.uniform(0.7, 1.0)) * ramp * side[None, :, None]
            x += bw + int(rng.integers(0, max(1, w // 60)))
        img[y + row : y + row + board] = 60.0
        y += row + board
    return cv2.GaussianBlur(img, (0, 0), max(0.8, w / 300))


def stall(rng: Rng, h: int, w: int) -> np.ndarray:
    """A market stall: a tarpaulin behind, a concrete or tiled floor in front."""
    horizon = int(h * rng.uniform(0.3, 0.65))
    back = tarp(rng, max(horizon, 1), w)
    floor = floor_perspective(rng, [concrete, tiles][int(rng.integers(2))], h - horizon, w)
    return np.concatenate([back, floor], axis=0)[:h]


def shop(rng: Rng, h: int, w: int) -> np.ndarray:
    """A shop: shelving full of goods behind, a tiled or wooden floor in front."""
    horizon = int(h * rng.uniform(0.3, 0.65))
    back = shelves(rng, max(horizon, 1), w)
    floor = floor_perspective(rng, [tiles, wood][int(rng.integers(2))], h - horizon, w)
    return np.concatenate([back, floor], axis=0)[:h]
