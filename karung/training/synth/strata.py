"""Compressed garment strata: the side of a bale, built from real fabric swatches.

A baling press flattens garments into horizontal layers; on the bale's side each layer shows
as a band of one to three garments' folded edges, darker in the creases between layers.

Fast path: the swatches of one bale are squashed into thin strips stacked in an *atlas*; a
face is then one ``cv2.remap`` from that atlas, with per-pixel coordinates computed in numpy
from the layer and piece layout (bent by smooth noise). :func:`strata_reference` draws the
same layout with plain loops and is kept for the parity test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from karung.training.synth.context import swatch
from karung.training.synth.draw import chan
from karung.training.synth.noise import value_noise
from karung.training.synth.segment import Cutout

Rng = np.random.Generator
STRIP_W: Final = 160
STRIP_H: Final = 12
MAX_PIECES: Final = 6


def layer_bounds(rng: Rng, n: int) -> np.ndarray:
    """``n + 1`` increasing fractions from 0 to 1: uneven layer thicknesses."""
    thick = rng.gamma(4.0, 1.0, n)
    return np.concatenate([[0.0], np.cumsum(thick) / thick.sum()])


def _strip(rng: Rng, cut: Cutout) -> np.ndarray:
    """One ``STRIP_W x STRIP_H`` strip: crops of one fabric at native width, squashed in height.

    Keeping the native width (instead of stretching one crop) keeps the weave and prints sharp.
    """
    fab = cut.fabric
    fh, fw = fab.shape[:2]
    parts, width = [], 0
    while width < STRIP_W:
        cw = min(max(int(fw * rng.uniform(0.4, 1.0)), 2), fw)
        ch = min(max(int(STRIP_H * rng.uniform(1.5, 5.0)), 2), fh)
        x0, y0 = int(rng.integers(0, fw - cw + 1)), int(rng.integers(0, fh - ch + 1))
        crop = fab[y0 : y0 + ch, x0 : x0 + cw]
        parts.append(cv2.resize(crop[:, ::-1] if rng.random() < 0.5 else crop, (cw, STRIP_H)))
        width += cw
    return np.concatenate(parts, axis=1)[:, :STRIP_W].astype(np.float32)


def make_atlas(rng: Rng, palette: Sequence[Cutout], per_cut: int = 2) -> np.ndarray:
    """Squashed fabric strips (``STRIP_H`` px each) stacked vertically, float32 RGB."""
    strips = [_strip(rng, cut) for cut in palette for _ in range(per_cut)]
    return np.ascontiguousarray(np.concatenate(strips, axis=0))


@dataclass(frozen=True)
class Layout:
    """Where each layer and piece is, and which strip (and part of it) fills it."""

    edges: np.ndarray  # (L + 1,) layer edges in px
    cuts: np.ndarray  # (L, P + 1) piece edges in px along x
    strip: np.ndarray  # (L, P) strip index into the atlas
    offset: np.ndarray  # (L, P) start within the strip, px
    zoom: np.ndarray  # (L, P) strip px per face px
    gain: np.ndarray  # (L, P) brightness
    crease: float

    @classmethod
    def sample(cls, rng: Rng, w: int, h: int, bounds: np.ndarray, n_strips: int) -> Layout:
        """Random pieces (20-90% of the width each) for every layer of ``bounds``."""
        n = len(bounds) - 1
        widths = rng.uniform(0.2, 0.9, (n, MAX_PIECES)) * w
        cuts = np.concatenate([np.zeros((n, 1)), np.cumsum(widths, axis=1)], axis=1)
        return cls(
            edges=bounds * h,
            cuts=cuts,
            strip=rng.integers(0, n_strips, (n, MAX_PIECES)),
            offset=rng.uniform(0, STRIP_W, (n, MAX_PIECES)),
            zoom=rng.uniform(0.7, 1.3, (n, MAX_PIECES)),
            gain=rng.uniform(0.82, 1.12, (n, MAX_PIECES)),
            crease=float(rng.uniform(0.3, 0.6)),
        )


def _maps(lay: Layout, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Atlas coordinates and shading for every face pixel, one layer (row block) at a time."""
    map_x = np.empty((h, w), np.float32)
    map_y = np.empty((h, w), np.float32)
    shade = np.empty((h, w), np.float32)
    xs = np.arange(w, dtype=np.float32) + 0.5
    edges = np.round(lay.edges).astype(int)
    for k in range(len(edges) - 1):
        y0, y1 = edges[k], edges[k + 1]
        if y1 <= y0:
            continue
        cuts = lay.cuts[k]
        piece = np.minimum(np.searchsorted(cuts, xs, side="right") - 1, MAX_PIECES - 1)
        start, stop = cuts[piece], cuts[piece + 1]
        t = (np.arange(y1 - y0, dtype=np.float32) + 0.5) / (y1 - y0)
        map_x[y0:y1] = np.mod(lay.offset[k, piece] + (xs - start) * lay.zoom[k, piece], STRIP_W - 1)
        map_y[y0:y1] = lay.strip[k, piece] * STRIP_H + 0.5 + t[:, None] * (STRIP_H - 2)
        ends = np.where(np.minimum(xs - start, stop - xs) < 2.5, 0.72, 1.0) * lay.gain[k, piece]
        profile = 1 - lay.crease + lay.crease * np.sin(np.pi * t) ** 0.6
        shade[y0:y1] = profile[:, None] * ends[None, :]
    return map_x, map_y, shade


def strata_texture(
    rng: Rng, atlas: np.ndarray, w: int, h: int, bounds: np.ndarray, bend: bool = True
) -> np.ndarray:
    """A ``w x h`` float RGB side of a bale with layers at ``bounds`` (fractions of ``h``)."""
    lay = Layout.sample(rng, w, h, bounds, atlas.shape[0] // STRIP_H)
    map_x, map_y, shade = _maps(lay, w, h)
    img = cv2.remap(atlas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img *= chan(shade)
    if not bend:
        return img
    amp = max(1.0, h / max(len(bounds), 2) * 0.45)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gy += (value_noise(rng, h, w, max(6.0, w / 5)) - 0.5) * 2 * amp
    gx += (value_noise(rng, h, w, max(6.0, w / 4)) - 0.5) * amp
    return cv2.remap(img, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def strata_reference(rng: Rng, atlas: np.ndarray, w: int, h: int, bounds: np.ndarray) -> np.ndarray:
    """Per-pixel loop version of :func:`strata_texture` with ``bend=False`` (parity test)."""
    lay = Layout.sample(rng, w, h, bounds, atlas.shape[0] // STRIP_H)
    edges = np.round(lay.edges).astype(int)
    out = np.zeros((h, w, 3), np.float32)
    for y in range(h):
        k = int(np.searchsorted(edges, y, side="right")) - 1
        k = min(max(k, 0), len(edges) - 2)
        t = (y - edges[k] + 0.5) / (edges[k + 1] - edges[k])
        for x in range(w):
            cx = x + 0.5
            p = min(int(np.searchsorted(lay.cuts[k], cx, side="right")) - 1, MAX_PIECES - 1)
            start, stop = lay.cuts[k, p], lay.cuts[k, p + 1]
            mx = (lay.offset[k, p] + (cx - start) * lay.zoom[k, p]) % (STRIP_W - 1)
            my = lay.strip[k, p] * STRIP_H + 0.5 + t * (STRIP_H - 2)
            end = 0.72 if min(cx - start, stop - cx) < 2.5 else 1.0
            prof = 1 - lay.crease + lay.crease * np.sin(np.pi * t) ** 0.6
            out[y, x] = _bilinear(atlas, mx, my) * prof * end * lay.gain[k, p]
    return out


def _bilinear(img: np.ndarray, x: float, y: float) -> np.ndarray:
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    x1, y1 = min(x0 + 1, img.shape[1] - 1), min(y0 + 1, img.shape[0] - 1)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def top_texture(
    rng: Rng, atlas: np.ndarray, palette: Sequence[Cutout], w: int, h: int
) -> np.ndarray:
    """The top of a bale: one or two big pressed garments over a layer of others."""
    img = strata_texture(rng, atlas, w, h, layer_bounds(rng, int(rng.integers(3, 7))))
    for _ in range(int(rng.integers(1, 3))):
        cut = palette[int(rng.integers(len(palette)))]
        pw, ph = int(w * rng.uniform(0.6, 1.1)) + 1, int(h * rng.uniform(0.6, 1.1)) + 1
        patch = swatch(rng, cut, pw, ph)
        x = int(rng.integers(-pw // 4, max(1, w - pw * 3 // 4)))
        y = int(rng.integers(-ph // 4, max(1, h - ph * 3 // 4)))
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, w), min(y + ph, h)
        if x1 > x0 and y1 > y0:
            img[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    wrinkles = value_noise(rng, h, w, max(4.0, min(w, h) / 6))
    return img * chan(0.8 + 0.35 * wrinkles)
