"""One synthetic image from its index: scene, background, object, nuisances, JPEG.

Four independent RNG streams are derived from ``(seed, index)``: the scene (label-blind), the
object, the background (label-blind) and the nuisances' details. So the same seed gives the
same bytes in any process, and the scene an index gets does not depend on its label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np

from karung.training.splits import Split, index_split
from karung.training.synth import textures
from karung.training.synth.content import Content
from karung.training.synth.context import Ctx, Picker, SplitAssets
from karung.training.synth.draw import chan, fit_long_side, over, smooth, soft_ellipse
from karung.training.synth.garment import render_garment
from karung.training.synth.nuisance import apply_all, encode_jpeg
from karung.training.synth.other import render_other
from karung.training.synth.people import scatter_clutter, stand_person
from karung.training.synth.pillowpile import render_any_bale
from karung.training.synth.sack import render_sacks
from karung.training.synth.scene import Scene, sample_scene
from karung.vision.labels import LABELS

Rng = np.random.Generator
STREAM_SCENE, STREAM_OBJECT, STREAM_BACKGROUND, STREAM_NUISANCE, STREAM_PEOPLE = 0, 1, 2, 3, 4
MAX_SPRITE: Final = 400  # objects are drawn about as big as they will appear, up to this


def _as_content(
    fn: Callable[[Ctx, int], tuple[np.ndarray, dict[str, Any]]],
) -> Callable[[Ctx, int], Content]:
    def wrapped(ctx: Ctx, long_side: int) -> Content:
        sprite, info = fn(ctx, long_side)
        return Content(sprite=sprite, info=info)

    return wrapped


RENDERERS: Final[dict[str, Callable[[Ctx, int], Content]]] = {
    "bale": _as_content(render_any_bale),
    "sack": _as_content(render_sacks),
    "garment": render_garment,
    "other": render_other,
}


def sprite_side(sc: Scene) -> int:
    """Draw objects at about their final size: small ones cost less and look as sharp."""
    return int(np.clip(max(sc.width, sc.height) * sc.scale, 96, MAX_SPRITE))


def label_of(index: int) -> str:
    """Labels cycle through :data:`LABELS`, so every prefix of a set is balanced."""
    return LABELS[index % len(LABELS)]


def background(rng: Rng, sc: Scene, pick: Picker) -> np.ndarray:
    """The scene's backdrop, chosen by the scene (never by the label)."""
    w, h = sc.width, sc.height
    kind = sc.background
    if kind == "photo":
        for _ in range(6):
            cut = pick.assets.cutouts[int(rng.integers(len(pick.assets.cutouts)))]
            if cut.backdrop is not None:
                pick.note(cut.source_id, cut.sender_id)
                crop = _aspect_crop(rng, cut.backdrop, w / h)
                return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        kind = "wall"
    if kind == "room":
        return textures.room(rng, h, w)
    if kind == "warehouse":
        return textures.warehouse(rng, h, w)
    if kind in ("stall", "shop"):
        return textures.stall(rng, h, w) if kind == "stall" else textures.shop(rng, h, w)
    return textures.FLAT[kind](rng, h, w)


def _aspect_crop(rng: Rng, img: np.ndarray, aspect: float) -> np.ndarray:
    h, w = img.shape[:2]
    if w / h > aspect:
        cw = max(1, int(h * aspect))
        x0 = int(rng.integers(0, w - cw + 1))
        return img[:, x0 : x0 + cw]
    ch = max(1, int(w / aspect))
    y0 = int(rng.integers(0, h - ch + 1))
    return img[y0 : y0 + ch]


def pallet(rng: Rng, w: int) -> np.ndarray:
    """A wooden pallet seen from the front (sprite), ``w`` px wide."""
    h = max(4, w // 8)
    img = textures.wood(rng, h, w)
    sprite = np.dstack([img, np.ones((h, w), np.float32)])
    for k in range(3):  # dark gaps between the blocks
        x0 = int(w * (0.12 + 0.33 * k))
        sprite[h // 3 : h - h // 5, x0 : x0 + w // 5] = 0.0
        sprite[h // 3 : h - h // 5, x0 : x0 + w // 5, :3] = 20.0
        sprite[h // 3 : h - h // 5, x0 : x0 + w // 5, 3] = 1.0
    return sprite


def place(rng: Rng, bg: np.ndarray, content: Content, sc: Scene) -> np.ndarray:
    """Scale the sprite to the scene's object scale and put it down with shadows."""
    if content.sprite is None:
        raise ValueError("place() needs a sprite")
    H, W = bg.shape[:2]  # noqa: N806
    sprite = content.sprite
    base = None
    if sc.pallet:
        base = pallet(rng, int(sprite.shape[1] * 1.05))
        stacked = np.zeros((sprite.shape[0] + base.shape[0], base.shape[1], 4), np.float32)
        over(stacked, sprite, (base.shape[1] - sprite.shape[1]) // 2, 0)
        over(stacked, base, 0, sprite.shape[0])
        sprite = stacked
    h, w = sprite.shape[:2]
    s = sc.scale / max(w / W, h / H)
    sprite = fit_long_side(sprite, max(4, int(max(h, w) * s)))
    h, w = sprite.shape[:2]
    x = int((W - w) * sc.pos_x) if w <= W else -int((w - W) * sc.pos_x)
    # Things stand on the floor: the bottom edge lands in the lower part of the frame.
    bottom = H * (0.62 + 0.38 * sc.pos_y) if h <= H else H + (h - H) * sc.pos_y
    y = int(max(bottom - h, 0.0)) if h <= H else int(bottom - h)
    _shadows(bg, sprite, x, y, sc)
    over(bg, sprite, x, y)
    return bg


def _shadows(bg: np.ndarray, sprite: np.ndarray, x: int, y: int, sc: Scene) -> None:
    """A soft contact shadow under the object and a faint one cast away from the light."""
    H, W = bg.shape[:2]  # noqa: N806
    h, w = sprite.shape[:2]
    blob = soft_ellipse(H, W, x + w / 2, y + h * 0.97, w * 0.55, max(3.0, h * 0.06))
    cast = np.zeros((H, W), np.float32)
    dx, dy = int(-sc.light_x * w * 0.08), int(-sc.light_y * h * 0.05)
    alpha = sprite[..., 3]
    ys0, xs0 = max(y + dy, 0), max(x + dx, 0)
    ys1, xs1 = min(y + dy + h, H), min(x + dx + w, W)
    if ys1 > ys0 and xs1 > xs0:
        cast[ys0:ys1, xs0:xs1] = alpha[ys0 - y - dy : ys1 - y - dy, xs0 - x - dx : xs1 - x - dx]
    cast = smooth(cast, max(1.5, max(h, w) * 0.02))
    bg *= chan(1.0 - np.clip(0.45 * blob + 0.3 * cast, 0, 0.7))


@dataclass(frozen=True)
class Rendered:
    """The JPEG of one image and its manifest fields."""

    index: int
    label: str
    split: Split
    jpeg: bytes
    params: dict[str, Any]
    source_ids: tuple[str, ...]
    sender_ids: tuple[str, ...]


def render_index(
    index: int, seed: int, size: int, val_fraction: float, assets: dict[Split, SplitAssets]
) -> Rendered:
    """Render image ``index`` of the set made with ``seed``."""
    label = label_of(index)
    split = index_split(index, val_fraction=val_fraction)
    sc = sample_scene(np.random.default_rng([seed, index, STREAM_SCENE]), size)
    obj_rng = np.random.default_rng([seed, index, STREAM_OBJECT])
    pick = Picker(assets[split], obj_rng)
    content = RENDERERS[label](Ctx(obj_rng, sc, pick), sprite_side(sc))
    if content.image is not None:
        img = content.image
    else:
        bg_pick = Picker(assets[split], np.random.default_rng([seed, index, STREAM_BACKGROUND]))
        img = background(bg_pick.rng, sc, bg_pick)
        if sc.clutter:
            scatter_clutter(bg_pick.rng, img, sc.clutter)
        img = place(bg_pick.rng, img, content, sc)
        for sid, snd in bg_pick.used.items():
            pick.note(sid, snd)
    if sc.person:
        people_rng = np.random.default_rng([seed, index, STREAM_PEOPLE])
        stand_person(people_rng, img, (sc.light_x, sc.light_y), sc.person)
    img = apply_all(np.random.default_rng([seed, index, STREAM_NUISANCE]), img, sc, size)
    params = {
        **sc.params(),
        **content.info,
        "image_width": img.shape[1],
        "image_height": img.shape[0],
    }
    return Rendered(
        index,
        label,
        split,
        encode_jpeg(img, sc),
        params,
        tuple(pick.used),
        tuple(pick.used.values()),
    )
