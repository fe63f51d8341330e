"""Everything else a marketplace shows (negative class).

Cartons (also strapped or film-wrapped, and stacked into the same walls as bales, so that
straps, film and stacking alone never mean "bale"), furniture, book stacks, household
objects, posters full of text, app screenshots, blank backdrops and garment-free crops of
the CC0 photos' surroundings.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth import text, textures
from karung.training.synth.bale import STRAP_COLOURS, Strap, draw_strap
from karung.training.synth.content import Content
from karung.training.synth.context import Ctx
from karung.training.synth.decor import stamp, text_mask
from karung.training.synth.draw import (
    crop_to_content,
    fit_long_side,
    height_shading,
    over,
    premultiply,
    view_warp,
)
from karung.training.synth.film import FilmLook, apply_film
from karung.training.synth.foodsack import food_sacks
from karung.training.synth.geometry import Box, Camera, render_boxes
from karung.training.synth.lookalikes import wrapped_goods
from karung.training.synth.noise import value_noise

Rng = np.random.Generator
SCENES: Final = ("objects", "interior", "poster", "screenshot", "blank", "backdrop")
SCENE_P: Final = (0.56, 0.16, 0.07, 0.06, 0.04, 0.11)
GROUPS: Final = {
    "sofa": "furniture",
    "table": "furniture",
    "cabinet": "furniture",
    **{k: "household" for k in ("ball", "bottle", "vase", "plant", "phone", "lamp")},
    "carton-strapped-wrapped": "carton-wrapped",
}
PAINT: Final = (
    (200, 60, 50),
    (50, 90, 160),
    (230, 230, 225),
    (40, 40, 45),
    (120, 160, 90),
    (230, 190, 60),
    (150, 110, 80),
    (110, 110, 115),
)


def _paint(rng: Rng) -> np.ndarray:
    base = np.asarray(PAINT[int(rng.integers(len(PAINT)))], np.float32)
    return np.clip(base + rng.normal(0, 10, 3), 0, 255).astype(np.float32)


def carton_texture(rng: Rng, face: str, w: int, h: int, strapped: list[Strap]) -> np.ndarray:
    """Kraft board with tape along the top seam and printed marks on the sides."""
    tex = textures.kraft(rng, h, w)
    if face == "top":
        band = max(2, w // 7)
        x = w // 2 - band // 2
        tex[:, x : x + band] = tex[:, x : x + band] * 0.75 + 60
        tex[h // 2 - 1 : h // 2 + 1] *= 0.6
    elif rng.random() < 0.6 and w > 16:
        mark = text_mask(text.words(rng, 1).upper(), max(6, h // 6), rng)[:, : w - 4]
        stamp(tex, mark, 2, int(h * rng.uniform(0.1, 0.6)), (40, 35, 30), 0.75)
    for s in strapped:
        for vertical, pos in [(True, s.pos)] if face in ("front", "top") else []:
            draw_strap(tex, vertical, pos, max(2.0, w * 0.04), s, rng)
    return tex


def cartons(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """One carton, a small stack, or a wall of cartons (sometimes strapped or wrapped)."""
    rng, sc = ctx.rng, ctx.scene
    size = tuple(float(v) for v in rng.uniform(0.3, 0.7, 3))
    cols, rows = {
        "single": (1, 1),
        "group": (int(rng.integers(1, 3)), int(rng.integers(2, 4))),
        "wall": (int(rng.integers(3, 6)), int(rng.integers(2, 5))),
    }[sc.layout]
    boxes = [
        Box(((c - (cols - 1) / 2) * size[0] * 1.02, (r + 0.5) * size[1], 0.0), size)  # type: ignore[arg-type]
        for r in range(rows)
        for c in range(cols)
    ]
    strapped = []
    if rng.random() < 0.2:
        colour = STRAP_COLOURS[int(rng.integers(len(STRAP_COLOURS)))]
        strapped = [
            Strap("x", float(p), colour, 0.02, False)
            for p in rng.uniform(0.2, 0.8, int(rng.integers(1, 3)))
        ]

    def texture(i: int, face: str, w: int, h: int) -> np.ndarray:
        return carton_texture(rng, face, w, h, strapped)

    sprite = render_boxes(boxes, Camera(sc.yaw, sc.pitch, sc.distance), long_side, texture, 0.1)
    wrapped = sc.layout != "single" and rng.random() < 0.3
    if wrapped:
        sprite = apply_film(rng, sprite, FilmLook.sample(rng))
    return sprite, "carton" + ("-strapped" if strapped else "") + ("-wrapped" if wrapped else "")


def furniture(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """A sofa, table, cabinet or bookshelf made of boxes."""
    rng, sc = ctx.rng, ctx.scene
    kind = str(rng.choice(["sofa", "table", "cabinet"]))
    colour = _paint(rng)
    if kind == "sofa":
        boxes = [
            Box((0, 0.22, 0), (1.8, 0.44, 0.8)),
            Box((0, 0.6, -0.3), (1.8, 0.5, 0.2)),
            Box((-0.85, 0.5, 0.05), (0.2, 0.3, 0.7)),
            Box((0.85, 0.5, 0.05), (0.2, 0.3, 0.7)),
        ]
    elif kind == "table":
        boxes = [Box((x, 0.36, z), (0.06, 0.72, 0.06)) for x in (-0.55, 0.55) for z in (-0.3, 0.3)]
        boxes.append(Box((0, 0.74, 0), (1.3, 0.05, 0.75)))
    else:
        boxes = [Box((0, 0.5, 0), (0.9, 1.0, 0.45))]
    grain = kind != "sofa"

    def texture(i: int, face: str, w: int, h: int) -> np.ndarray:
        tex = textures.wood(rng, h, w) if grain else np.full((h, w, 3), colour, np.float32)
        if kind == "cabinet" and face == "front":
            cv2.line(tex, (w // 2, 2), (w // 2, h - 2), (30, 25, 20), max(1, w // 80))
        return tex * (0.85 + 0.15 * value_noise(rng, h, w, max(w, h) / 2))[..., None]

    return render_boxes(boxes, Camera(sc.yaw, sc.pitch, sc.distance), long_side, texture, 0.2), kind


def books(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """A stack of books: coloured covers, white page edges (stripes that are not strata)."""
    rng, sc = ctx.rng, ctx.scene
    boxes, colours, y = [], [], 0.0
    for _ in range(int(rng.integers(3, 10))):
        t = float(rng.uniform(0.015, 0.05))
        boxes.append(
            Box(
                (float(rng.normal(0, 0.01)), y + t / 2, 0.0),
                (float(rng.uniform(0.15, 0.25)), t, float(rng.uniform(0.2, 0.3))),
            )
        )
        colours.append(_paint(rng))
        y += t

    def texture(i: int, face: str, w: int, h: int) -> np.ndarray:
        tex = np.empty((h, w, 3), np.float32)
        tex[:] = colours[i]
        if face in ("right", "back"):  # page edges
            tex[max(1, h // 6) : h - max(1, h // 6)] = (
                235 * (0.9 + 0.1 * (np.arange(w) % 2))[None, :, None]
            )
        return tex

    return render_boxes(
        boxes, Camera(sc.yaw, sc.pitch, sc.distance), long_side, texture, 0.1
    ), "books"


# Width of each household object relative to its height.
_HOUSEHOLD_ASPECT: dict[str, float] = {
    "ball": 1.0,
    "phone": 0.5,
    "bottle": 0.35,
    "vase": 0.55,
    "plant": 0.8,
    "lamp": 0.5,
}


def household(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """A 2-D object with rounded shading: bottle, vase, ball, pot plant, phone or lamp."""
    rng = ctx.rng
    kind = str(rng.choice(["bottle", "vase", "ball", "plant", "phone", "lamp"]))
    h = long_side
    w = int(h * _HOUSEHOLD_ASPECT[kind])
    mask = _household_mask(rng, kind, w, h)
    m = mask.astype(np.float32) / 255.0
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = _paint(rng) if kind != "plant" else (60, 130, 60)
    if kind == "phone":
        my, mx = h // 12, w // 12
        screen = 20 + 60 * value_noise(rng, h - 2 * my, w - 2 * mx, h / 3)
        rgb[my : h - my, mx : w - mx] = screen[..., None]
    rgb *= height_shading(m, (ctx.scene.light_x, ctx.scene.light_y), None, 0.5)[..., None]
    return premultiply(rgb, m), kind


def _household_mask(rng: Rng, kind: str, w: int, h: int) -> np.ndarray:
    """The ``h x w`` uint8 silhouette of a household ``kind`` (a plant draws its leaves)."""
    mask = np.zeros((h, w), np.uint8)
    if kind == "ball":
        cv2.circle(mask, (w // 2, h // 2), w // 2 - 1, 255, -1, cv2.LINE_AA)
    elif kind == "phone":
        cv2.rectangle(mask, (0, 0), (w - 1, h - 1), 255, -1)
    elif kind in ("bottle", "lamp"):
        cv2.rectangle(mask, (w // 3, 0), (2 * w // 3, h // 4), 255, -1)
        body = ((w // 2, int(h * 0.62)), (w // 2 - 1, int(h * 0.38)))
        cv2.ellipse(mask, *body, 0, 0, 360, 255, -1, cv2.LINE_AA)
    else:
        pot = ((w // 2, int(h * 0.7)), (int(w * 0.35), int(h * 0.3) - 1))
        cv2.ellipse(mask, *pot, 0, 0, 360, 255, -1, cv2.LINE_AA)
        if kind == "plant":
            for _ in range(9):
                c = (int(rng.uniform(0.1, 0.9) * w), int(rng.uniform(0.05, 0.45) * h))
                angle = float(rng.uniform(0, 180))
                cv2.ellipse(mask, c, (w // 7, h // 14), angle, 0, 360, 255, -1, cv2.LINE_AA)
    return mask


def poster(rng: Rng, w: int, h: int) -> np.ndarray:
    """A text-heavy image: flyer, price list or chat screenshot."""
    img = np.empty((h, w, 3), np.float32)
    img[:] = _paint(rng)
    ink = (255, 255, 255) if img[0, 0].mean() < 120 else (20, 20, 25)
    y = int(h * rng.uniform(0.03, 0.1))
    while y < h * 0.92:
        size = int(h * rng.uniform(0.035, 0.1))
        mask = text_mask(text.caption(rng), size, rng)[:, : w - 8]
        stamp(img, mask, int(w * rng.uniform(0.02, 0.1)), y, ink, 1.0)
        y += int(mask.shape[0] * rng.uniform(1.2, 1.9))
    return img


def screenshot_ui(rng: Rng, w: int, h: int) -> np.ndarray:
    """An app screen: bars, cards with grey image blocks and text lines."""
    img = np.full((h, w, 3), 245, np.float32)
    img[: h // 10] = _paint(rng)
    y = h // 10 + 6
    while y < h - 24:
        card = min(int(h * rng.uniform(0.12, 0.25)), h - y - 4)
        side = max(4, min(card - 8, w // 3))
        img[y : y + card, 6 : w - 6] = 255
        thumb = 170 + 60 * value_noise(rng, side, side, side / 2)
        img[y + 4 : y + 4 + side, 10 : 10 + side] = thumb[..., None]
        mask = text_mask(text.caption(rng), max(7, card // 6), rng)[:, : max(1, w - side - 24)]
        stamp(img, mask, side + 16, y + 6, (30, 30, 35), 1.0)
        y += card + 6
    return img


def blank(rng: Rng, w: int, h: int) -> np.ndarray:
    """A plain backdrop or bare surface: nothing on it."""
    kind = list(textures.FLAT)[int(rng.integers(len(textures.FLAT)))]
    return textures.FLAT[kind](rng, h, w)


def backdrop(ctx: Ctx, w: int, h: int) -> np.ndarray:
    """A crop of a CC0 photo's surroundings with no garment in view."""
    for _ in range(6):
        cut = ctx.pick.cutout()
        if cut.backdrop is not None:
            ctx.pick.note(cut.source_id, cut.sender_id)
            return cv2.resize(cut.backdrop, (w, h), interpolation=cv2.INTER_LINEAR).astype(
                np.float32
            )
    return blank(ctx.rng, w, h)


def render_other(ctx: Ctx, long_side: int) -> Content:
    """A non-clothing image: objects (sprite) or a full-frame scene."""
    rng, sc = ctx.rng, ctx.scene
    scene = str(rng.choice(SCENES, p=SCENE_P))
    w, h = sc.width, sc.height
    full = {
        "poster": lambda: poster(rng, w, h),
        "screenshot": lambda: screenshot_ui(rng, w, h),
        "blank": lambda: blank(rng, w, h),
        "backdrop": lambda: backdrop(ctx, w, h),
    }
    if scene == "interior":
        img, kind = interior(ctx, w, h)
        return Content(image=img, info={"variant": f"other-{kind}", "n_objects": 0}, ground=False)
    if scene in full:
        return Content(
            image=full[scene](), info={"variant": f"other-{scene}", "n_objects": 0}, ground=False
        )
    makers = {
        "single": (
            cartons,
            furniture,
            books,
            household,
            electronics,
            food_sacks_sprite,
            wrapped_goods,
        ),
        "group": (cartons, books, furniture, food_sacks_sprite, food_sacks_sprite, wrapped_goods),
        "wall": (cartons, food_sacks_sprite, wrapped_goods),
    }[sc.layout]
    sprite, kind = makers[int(rng.integers(len(makers)))](ctx, long_side)
    if kind in ("ball", "bottle", "vase", "plant", "phone", "lamp"):
        sprite = view_warp(sprite, sc.yaw * 0.3, sc.pitch * 0.3, depth=0.7)
    return Content(
        sprite=crop_to_content(sprite),
        info={"variant": f"other-{GROUPS.get(kind, kind)}", "n_objects": 1},
    )


def electronics(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """A television, microwave, speaker or computer screen: dark boxes with a glossy screen."""
    rng, sc = ctx.rng, ctx.scene
    kind = str(rng.choice(["tv", "microwave", "speaker"]))
    size = {"tv": (1.0, 0.6, 0.08), "microwave": (0.5, 0.3, 0.38), "speaker": (0.3, 0.5, 0.3)}[kind]
    body = (
        np.float32(rng.uniform(15, 60)) if kind != "microwave" else np.float32(rng.uniform(30, 220))
    )

    def texture(i: int, face: str, w: int, h: int) -> np.ndarray:
        tex = np.full((h, w, 3), body, np.float32)
        if face == "front":
            m = max(1, min(w, h) // 14)
            sw = w - 2 * m if kind == "tv" else int(w * 0.65)
            screen = 10 + 50 * value_noise(rng, h - 2 * m, max(1, sw), max(h, w) / 2)
            tex[m : h - m, m : m + sw] = screen[..., None] * np.array([0.9, 0.95, 1.1], np.float32)
            cv2.line(tex, (m + sw // 5, m), (m + sw // 2, h - m), (120, 125, 135), max(1, w // 40))
            if kind == "speaker":
                cv2.circle(tex, (w // 2, int(h * 0.65)), w // 3, (10, 10, 10), -1)
        return tex

    boxes = [Box((0, size[1] / 2, 0), size)]
    cam = Camera(sc.yaw, sc.pitch * 0.5, sc.distance)
    return render_boxes(boxes, cam, long_side, texture, 0.1), "electronics"


def _put(img: np.ndarray, sprite: np.ndarray, rng: Rng, height: float, floor: float) -> None:
    """Stand ``sprite`` on the floor line ``floor`` (fraction) at ``height`` of the frame."""
    h, w = img.shape[:2]
    sprite = fit_long_side(sprite, max(8, int(h * height)))
    sh, sw = sprite.shape[:2]
    x = int(rng.uniform(-0.15, 1.0) * (w - sw * 0.5))
    over(img, sprite, x, int(h * floor) - sh)


INTERIORS: Final = ("room", "shop", "warehouse")


def interior(ctx: Ctx, w: int, h: int, kind: str | None = None) -> tuple[np.ndarray, str]:
    """A room, shop or warehouse in full frame: furniture, electronics, shelves, cartons."""
    rng = ctx.rng
    drawn = str(rng.choice(INTERIORS))
    kind = kind or drawn
    img = textures.warehouse(rng, h, w) if kind == "warehouse" else textures.room(rng, h, w)
    makers = {
        "room": (furniture, electronics, household, cartons),
        "shop": (electronics, household, books, cartons),
        "warehouse": (cartons, cartons, food_sacks_sprite),
    }[kind]
    side = max(96, min(400, max(w, h) // 2))
    for k in range(int(rng.integers(2, 6))):
        sprite, _ = makers[int(rng.integers(len(makers)))](ctx, side)
        floor = rng.uniform(0.55, 1.05) + 0.08 * k
        _put(img, crop_to_content(sprite), rng, float(rng.uniform(0.25, 0.7)), float(floor))
    return img, kind


def food_sacks_sprite(ctx: Ctx, long_side: int) -> tuple[np.ndarray, str]:
    """Rice, flour, sugar, feed or cement sacks (see :mod:`foodsack`)."""
    return food_sacks(ctx, long_side), "food-sack"
