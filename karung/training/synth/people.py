"""Label-blind context: a person standing beside the goods, and clutter around them.

Sellers often pose next to their bales, and shops and warehouses are full of other things.
Both are drawn for every class at the same rate (the scene decides, not the label), so a
person or clutter in view is never evidence for one class.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from karung.training.synth.draw import chan, height_shading, over, premultiply, smooth
from karung.training.synth.noise import value_noise

Rng = np.random.Generator
SKIN: Final = ((240, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45), (60, 40, 30))
CLOTHES: Final = (
    (30, 30, 35),
    (200, 40, 40),
    (40, 70, 140),
    (230, 230, 225),
    (90, 120, 60),
    (220, 180, 60),
    (120, 80, 140),
    (100, 100, 105),
)


PLASTICS: Final = ((40, 90, 170), (190, 50, 45), (60, 140, 70), (230, 230, 225), (70, 70, 75))
KRAFT: Final = ((185, 145, 100), (165, 125, 85), (200, 170, 125))
TROUSERS: Final = ((40, 55, 90), (25, 25, 28), (150, 130, 100), (90, 90, 95), (60, 70, 110))


def _colour(rng: Rng, table: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    base = np.asarray(table[int(rng.integers(len(table)))], np.float32)
    return np.clip(base + rng.normal(0, 10, 3), 0, 255).astype(np.float32)


def person(rng: Rng, h: int, light: tuple[float, float]) -> np.ndarray:
    """A standing person (sprite, ``h`` px tall): head, torso, arms and legs, softly shaded."""
    w = max(8, int(h * 0.42))
    parts = {k: np.zeros((h, w), np.uint8) for k in ("skin", "top", "legs")}
    cx = w // 2
    head = max(2, int(h * 0.065))
    cv2.ellipse(parts["skin"], (cx, int(h * 0.075)), (int(head * 0.85), head), 0, 0, 360, 255, -1)
    sh = int(w * rng.uniform(0.36, 0.46))  # half the shoulder width
    torso = np.array(
        [[cx - sh, int(h * 0.16)], [cx + sh, int(h * 0.16)],
         [cx + int(sh * 0.8), int(h * 0.52)], [cx - int(sh * 0.8), int(h * 0.52)]], np.int32
    )  # fmt: skip
    cv2.fillPoly(parts["top"], [torso], 255, cv2.LINE_AA)
    arm = max(2, int(w * 0.11))
    for side in (-1, 1):
        hand = (cx + side * int(sh * rng.uniform(0.9, 1.4)), int(h * rng.uniform(0.42, 0.52)))
        cv2.line(parts["top"], (cx + side * (sh - arm // 2), int(h * 0.19)), hand, 255, arm)
        cv2.circle(parts["skin"], hand, max(1, arm // 2 + 1), 255, -1)
        foot = (cx + side * int(w * rng.uniform(0.08, 0.2)), h - 2)
        cv2.line(parts["legs"], (cx + side * int(sh * 0.45), int(h * 0.5)), foot, 255, arm + 2)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)
    for key, colour in (("legs", TROUSERS), ("top", CLOTHES), ("skin", SKIN)):
        m = parts[key].astype(np.float32) / 255.0
        rgb = rgb * chan(1 - m) + chan(m) * _colour(rng, colour)
        alpha = np.maximum(alpha, m)
    folds = 0.85 + 0.3 * value_noise(rng, h, w, max(3.0, w / 4))
    rgb *= chan(height_shading(alpha, light, None, 0.5, rim=0.3) * folds)
    soft = max(0.6, h / float(rng.uniform(80, 300)))  # people are rarely in focus
    return premultiply(cv2.GaussianBlur(rgb, (0, 0), soft), smooth(alpha, soft))


def stand_person(rng: Rng, img: np.ndarray, light: tuple[float, float], side: str) -> None:
    """Put a person at the left or right edge of ``img`` (often cut by the frame), in place."""
    h, w = img.shape[:2]
    tall = int(h * rng.uniform(0.6, 1.3))
    sprite = person(rng, tall, light)
    sw = sprite.shape[1]
    shown = rng.uniform(0.35, 0.85)  # mostly cut by the frame: someone at the edge of the shot
    x = int((shown - 1.0) * sw) if side == "left" else w - int(shown * sw)
    y = int(h * rng.uniform(0.9, 1.1)) - tall
    blob = np.zeros((h, w), np.float32)  # a soft shadow at the feet
    cv2.ellipse(
        blob, (x + sw // 2, min(y + tall, h - 1)), (sw // 2, max(2, tall // 30)), 0, 0, 360, 1.0, -1
    )
    img *= chan(1.0 - 0.35 * smooth(blob, max(1.0, sw / 10)))
    over(img, sprite, x, y)


def clutter_item(rng: Rng, side: int) -> np.ndarray:
    """A bucket, plastic crate, chair back or plain box (sprite about ``side`` px tall)."""
    kind = int(rng.integers(4))
    h, w = side, int(side * rng.uniform(0.6, 1.2))
    mask = np.zeros((h, w), np.uint8)
    if kind == 0:  # bucket: a tapered body
        poly = np.array(
            [[0, 0], [w - 1, 0], [int(w * 0.85), h - 1], [int(w * 0.15), h - 1]], np.int32
        )
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA)
    elif kind == 1:  # crate with holes
        mask[:] = 255
        for y in range(h // 6, h - h // 8, max(3, h // 5)):
            for x in range(w // 8, w - w // 8, max(3, w // 5)):
                mask[y : y + max(1, h // 10), x : x + max(1, w // 10)] = 0
    elif kind == 2:  # chair back and legs
        cv2.rectangle(mask, (0, 0), (w - 1, h // 2), 255, -1)
        for x in (w // 10, w - w // 10):
            cv2.line(mask, (x, h // 2), (x, h - 1), 255, max(2, w // 14))
    else:
        mask[:] = 255
    m = mask.astype(np.float32) / 255.0
    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = _colour(rng, PLASTICS if kind < 3 else KRAFT)
    lumps = 0.85 + 0.25 * value_noise(rng, h, w, max(3.0, w / 3))
    rgb *= chan(height_shading(m, (0.4, -0.7), None, 0.5, rim=0.35) * lumps)
    return premultiply(cv2.GaussianBlur(rgb, (0, 0), 0.8), m)


def scatter_clutter(rng: Rng, img: np.ndarray, count: int) -> None:
    """Put ``count`` clutter items along the floor of a background, in place."""
    h, w = img.shape[:2]
    for _ in range(count):
        side = max(8, int(h * rng.uniform(0.08, 0.22)))
        item = clutter_item(rng, side)
        x = int(rng.uniform(-0.1, 0.95) * w)
        y = int(h * rng.uniform(0.72, 1.0)) - item.shape[0]  # standing on the floor
        over(img, item, x, y)
