"""Garments (negative class): real CC0 listing photos, plus composed folded stacks and racks.

Most garment images are the real photos of the image's split run through the same nuisance
pipeline as every other class; the rest are composites (a cut-out laid flat, a neat folded
stack of 2-5, a few items on a rack, a shop shelf) so that compositing itself, object scale
and stacking are not cues for "bale".
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth import textures
from karung.training.synth.content import Content
from karung.training.synth.context import Ctx, swatch
from karung.training.synth.decor import stamp, text_mask
from karung.training.synth.draw import (
    chan,
    crop_to_content,
    cutout_sprite,
    edge_falloff,
    fit_long_side,
    new_sprite,
    over,
    premultiply,
    rotate_sprite,
    view_warp,
)
from karung.training.synth.film import FilmLook, apply_film, specular
from karung.training.synth.geometry import Box, Camera, render_boxes
from karung.training.synth.noise import value_noise
from karung.training.synth.segment import Cutout
from karung.training.synth.sources import load_photo

Rng = np.random.Generator
PHOTO_SHARE: Final = 0.85  # of single-object garment images, when real photos exist


def real_photo(ctx: Ctx) -> Content | None:
    """A real CC0 photo of this split cropped to the scene's aspect (``None`` if none loads)."""
    sc = ctx.scene
    for _ in range(4):
        photo = ctx.pick.photo()
        if photo is None:
            return None
        try:
            rgb = load_photo(photo.path, int(max(sc.width, sc.height) * 1.3))
        except (OSError, ValueError, SyntaxError):
            continue  # a damaged file: draw another (deterministic, since the damage is)
        ctx.pick.note(photo.image_id, photo.sender_id)
        img = _crop_to(ctx.rng, rgb, sc.width, sc.height)
        return Content(image=img, info={"variant": "garment-photo", "n_objects": 1}, ground=False)
    return None


def _crop_to(rng: Rng, rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """Random zoom (1-1.25x) crop of ``rgb`` with aspect ``w:h``, resized to ``w x h``."""
    ih, iw = rgb.shape[:2]
    s = min(iw / w, ih / h) / rng.uniform(1.0, 1.25)
    cw, ch = int(w * s), int(h * s)
    x0 = int(rng.integers(0, iw - cw + 1))
    y0 = int(rng.integers(0, ih - ch + 1))
    crop = rgb[y0 : y0 + ch, x0 : x0 + cw]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)


def flat_lay(ctx: Ctx, n: int, long_side: int) -> np.ndarray:
    """``n`` cut-outs laid side by side, slightly turned."""
    rng = ctx.rng
    unit = long_side if n == 1 else int(long_side / (0.8 * n))
    canvas = new_sprite(int(unit * 1.4), int(unit * (n * 0.85 + 0.6)))
    for i in range(n):
        piece = cutout_sprite(ctx.pick.cutout().rgba, int(unit * rng.uniform(0.8, 1.0)))
        piece = rotate_sprite(piece, float(rng.normal(0, 8)))
        over(
            canvas,
            piece,
            int(i * unit * 0.85 + rng.uniform(0, unit * 0.1)),
            int(rng.uniform(0, unit * 0.2)),
        )
    return crop_to_content(canvas)


def _fold_texture(rng: Rng, cut: Cutout, w: int, h: int, top: bool) -> np.ndarray:
    """A folded garment's face: its fabric with fold creases (across the front, down the top)."""
    tex = swatch(rng, cut, w, h)
    if top:  # a centre crease and soft wrinkles
        x = int(w * rng.uniform(0.4, 0.6))
        tex[:, max(x - 1, 0) : x + 1] *= 0.75
        return tex * (0.85 + 0.25 * value_noise(rng, h, w, max(4.0, w / 4)))[..., None]
    # The front edge shows 2-3 folded layers, each a rounded roll.
    layers = int(rng.integers(2, 4))
    t = (np.arange(h, dtype=np.float32) + 0.5) / h * layers % 1.0
    profile = 0.6 + 0.45 * np.sin(np.pi * t) ** 0.5
    return tex * profile[:, None, None]


def folded_stacks(ctx: Ctx, n_stacks: int, long_side: int) -> np.ndarray:
    """``n_stacks`` neat stacks of 2-5 folded garments (a shelf when several), in perspective."""
    rng, sc = ctx.rng, ctx.scene
    boxes, cuts = [], []
    for s in range(n_stacks):
        y = 0.0
        x0 = (s - (n_stacks - 1) / 2) * 0.42
        for _ in range(int(rng.integers(2, 6))):
            hh = float(rng.uniform(0.035, 0.08))
            size = (float(rng.uniform(0.28, 0.36)), hh, float(rng.uniform(0.22, 0.3)))
            jitter = rng.normal(0, 0.012, 2)
            boxes.append(Box((x0 + float(jitter[0]), y + hh / 2, float(jitter[1])), size))
            cuts.append(ctx.pick.cutout(fabric=True))
            y += hh

    def texture(i: int, face: str, w: int, h: int) -> np.ndarray:
        return _fold_texture(rng, cuts[i], w, h, face == "top")

    cam = Camera(sc.yaw, max(sc.pitch, 12.0), sc.distance)
    return render_boxes(boxes, cam, long_side, texture, edge_dark=0.55)


def _hanger(h: int, w: int, cx: int, top: int, span: int, thick: int) -> np.ndarray:
    """Coverage mask of a wire hanger: hook on the rail, shoulders ``span`` px wide."""
    mask = np.zeros((h, w), np.float32)
    neck = (cx, top + span // 4)
    cv2.line(mask, (cx, top), neck, 1.0, thick, cv2.LINE_AA)
    for side in (-1, 1):
        cv2.line(mask, neck, (cx + side * span // 2, top + span // 2), 1.0, thick, cv2.LINE_AA)
    return mask


def rack(ctx: Ctx, n: int, long_side: int) -> np.ndarray:
    """``n`` garments on hangers along a clothes rail with two posts."""
    rng = ctx.rng
    item = int(long_side / max(1.0, 0.55 * n + 0.6))
    w, h = int(item * (0.55 * n + 0.9)), int(item * 1.6)
    canvas = new_sprite(h, w)
    grey = float(rng.choice([60.0, 150.0, 200.0]))
    bar_y, thick = int(h * 0.06), max(2, h // 80)
    for x in (thick, w - 2 * thick):
        canvas[bar_y:, x : x + thick] = (grey, grey, grey, 1.0)
    canvas[bar_y : bar_y + thick, :] = (grey, grey, grey, 1.0)
    for i in range(n):
        piece = cutout_sprite(ctx.pick.cutout(fabric=True).rgba, int(item * rng.uniform(0.9, 1.15)))
        x = int(item * (0.35 + i * 0.55) + rng.uniform(-3, 3))
        cx = x + piece.shape[1] // 2
        wire = _hanger(h, w, cx, bar_y, int(piece.shape[1] * 0.7), max(1, thick // 2))
        over(canvas, premultiply(np.full((h, w, 3), grey, np.float32), wire), 0, 0)
        over(canvas, piece, x, bar_y + int(piece.shape[1] * 0.3))
    return crop_to_content(canvas)


def on_bed(ctx: Ctx, w: int, h: int) -> np.ndarray:
    """A few neatly folded garments laid side by side on a bed, seen from above (full frame)."""
    rng = ctx.rng
    img = textures.bed_fabric(rng, h, w)
    n = int(rng.integers(1, 5))
    cell = int(min(w / min(n, 2), h / ((n + 1) // 2)) * rng.uniform(0.6, 0.85))
    for i in range(n):
        cut = ctx.pick.cutout(fabric=True)
        fw, fh = cell, int(cell * rng.uniform(0.6, 0.85))
        item = folded_item(rng, cut, max(fw, fh))
        item = rotate_sprite(item, float(rng.normal(0, 6)))
        x = int((i % 2) * w / 2 + rng.uniform(0.02, 0.1) * w) if n > 1 else (w - fw) // 2
        y = int((i // 2) * h / 2 + rng.uniform(0.02, 0.1) * h) if n > 2 else (h - fh) // 2
        _shadow(img, x, y, item)
        over(img, item, x, y)
    return img


def folded_item(rng: Rng, cut: Cutout, long_side: int) -> np.ndarray:
    """A neatly folded garment seen from above (sprite): the real collar and shoulders of the
    cut-out on top, the body folded into a rectangle of its own fabric below."""
    h, w = cut.rgba.shape[:2]
    x0, x1 = int(w * rng.uniform(0.12, 0.25)), int(w * rng.uniform(0.75, 0.88))
    crop = cut.rgba[: max(4, int(h * rng.uniform(0.55, 0.75))), x0 : max(x0 + 4, x1)]
    out = cutout_sprite(np.ascontiguousarray(crop), long_side)
    sh, sw = out.shape[:2]
    body = sh - int(sh * rng.uniform(0.15, 0.3))  # the folded body: a full rectangle
    keep = chan(1.0 - out[-body:, :, 3])
    out[-body:, :, :3] += swatch(rng, cut, sw, body) * keep
    out[-body:, :, 3] = 1.0
    out[..., :3] *= chan(edge_falloff(sh, sw, 0.3))
    return out


def polybag(ctx: Ctx, long_side: int) -> np.ndarray:
    """One folded garment in a clear retail polybag, maybe with a size sticker: film and
    highlights over ONE neat garment are not a sack of clothes."""
    rng = ctx.rng
    item = folded_item(rng, ctx.pick.cutout(fabric=True), int(long_side * 0.85))
    h, w = item.shape[:2]
    bag = new_sprite(int(h * 1.12), int(w * 1.1))
    bag[..., :3] = 235.0 * 0.08
    bag[..., 3] = 0.08
    over(bag, item, (bag.shape[1] - w) // 2, int(h * 0.08))
    bag = apply_film(rng, bag, FilmLook.sample(rng, clear=True))
    specular(rng, bag, None, float(rng.uniform(0.4, 0.9)))
    if rng.random() < 0.5:
        size = str(rng.choice(["S", "M", "L", "XL", "XXL", "SIZE M", "SIZE L"]))
        mask = text_mask(size, max(6, h // 10), rng)
        stamp(bag, mask, int(w * 0.7), int(h * 0.1), (20, 20, 25), 0.9)
    return bag


def _shadow(img: np.ndarray, x: int, y: int, item: np.ndarray) -> None:
    """A faint soft shadow of ``item`` down and right of it on the bed, in place."""
    h, w = img.shape[:2]
    ih, iw = item.shape[:2]
    s = max(2, iw // 30)
    shade = cv2.GaussianBlur(item[..., 3], (0, 0), s)
    x0, y0, x1, y1 = max(x + s, 0), max(y + s, 0), min(x + s + iw, w), min(y + s + ih, h)
    if x1 > x0 and y1 > y0:
        cut = shade[y0 - y - s : y1 - y - s, x0 - x - s : x1 - x - s]
        img[y0:y1, x0:x1] *= chan(1.0 - 0.3 * cut)


def render_garment(ctx: Ctx, long_side: int) -> Content:
    """A garment image: a real photo, folded garments on a bed, a flat lay, stack(s) or rack."""
    rng, sc = ctx.rng, ctx.scene
    if rng.random() < 0.08:
        img = on_bed(ctx, sc.width, sc.height)
        return Content(image=img, info={"variant": "garment-bed", "n_objects": 1}, ground=False)
    if sc.layout == "single" and rng.random() < PHOTO_SHARE:
        photo = real_photo(ctx)
        if photo is not None:
            return photo
    if sc.layout == "single":
        kind = str(rng.choice(["flat", "stack", "polybag"], p=[0.55, 0.25, 0.2]))
    elif sc.layout == "group":
        kind = str(rng.choice(["stack", "rack", "flat"], p=[0.5, 0.3, 0.2]))
    else:
        kind = str(rng.choice(["shelf", "rack"]))
    if kind == "polybag":
        sprite, count = polybag(ctx, long_side), 1
        sprite = view_warp(sprite, sc.yaw * 0.5, sc.pitch, depth=0.1)
    elif kind == "flat":
        n = 1 if sc.layout == "single" else int(rng.integers(2, 4))
        sprite, count = flat_lay(ctx, n, long_side), n
        sprite = view_warp(sprite, sc.yaw, sc.pitch, depth=0.0)
    elif kind in ("stack", "shelf"):
        count = 1 if kind == "stack" else int(rng.integers(2, 5))
        sprite = folded_stacks(ctx, count, long_side)
    else:
        count = int(rng.integers(2, 5)) if sc.layout == "group" else int(rng.integers(5, 10))
        sprite = view_warp(rack(ctx, count, long_side), sc.yaw * 0.5, sc.pitch * 0.3, depth=0.3)
    return Content(
        sprite=fit_long_side(sprite, long_side),
        info={"variant": f"garment-{kind}", "n_objects": count},
    )
