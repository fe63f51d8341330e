"""Per-image scene and nuisance parameters, drawn WITHOUT knowing the label.

Every class gets its framing, viewpoint, lighting, background, overlays and degradations from
this one sampler, fed by an RNG stream that does not depend on the label, so none of these
can become a shortcut for the classifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np

Rng = np.random.Generator

ASPECTS: Final = {"1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "16:9": (16, 9)}
ASPECT_P: Final = (0.3, 0.2, 0.4, 0.1)
LAYOUTS: Final = ("single", "group", "wall")
LAYOUT_P: Final = (0.6, 0.27, 0.13)
BACKGROUNDS: Final = (
    "concrete",
    "tiles",
    "wood",
    "fabric",
    "wall",
    "room",
    "warehouse",
    "photo",
    "stall",
    "shop",
)
BACKGROUND_P: Final = (0.1, 0.07, 0.09, 0.07, 0.07, 0.18, 0.1, 0.22, 0.05, 0.05)


@dataclass(frozen=True)
class Scene:
    """Label-independent parameters of one image (see :func:`sample_scene`)."""

    width: int  # the content (photo) size; a screenshot frame is added around it
    height: int
    aspect: str
    layout: str  # single object, a small group/stack, or a wall/row of many
    scale: float  # object's bounding box relative to the frame (max of w and h ratios)
    pos_x: float  # placement of the object in the free space, 0..1
    pos_y: float
    yaw: float  # viewpoint, degrees
    pitch: float
    distance: float  # perspective strength (small = strong)
    light_x: float  # light direction in the image plane
    light_y: float
    background: str
    pallet: bool
    roll: float  # camera roll, degrees
    warp: float  # extra perspective distortion of the whole photo (0 = none)
    gain: float
    gamma: float
    warmth: float  # white balance shift, -1 cold .. 1 warm
    vignette: float
    cast_shadow: bool
    text_overlay: bool
    watermark: bool
    screenshot: str  # "", "portrait" or "landscape"
    blur: float  # Gaussian sigma in px (0 = sharp)
    motion: int  # motion blur length in px (0 = none)
    noise: float  # sensor noise sigma in levels
    downscale: float  # 1 = none; <1 = shrunk then enlarged again
    jpeg_quality: int
    jpeg_first: int  # quality of an earlier compression (0 = none)
    person: str  # "", "left" or "right": someone standing beside the goods
    clutter: int  # other things lying about on the floor (0-3)
    flash: bool  # phone flash in a dim room: bright centre, dark corners

    def params(self) -> dict[str, Any]:
        """Plain-data form for the manifest."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _frame(rng: Rng, size: int) -> tuple[str, int, int, str]:
    shot = ""
    if rng.random() < 0.12:
        shot = "portrait" if rng.random() < 0.8 else "landscape"
    aspect = str(rng.choice(list(ASPECTS), p=ASPECT_P))
    aw, ah = ASPECTS[aspect]
    inner = size if not shot else int(size * (0.62 if shot == "portrait" else 0.75))
    if aw >= ah:
        return aspect, inner, max(16, round(inner * ah / aw)), shot
    return aspect, max(16, round(inner * aw / ah)), inner, shot


def _scale(rng: Rng, layout: str) -> float:
    if layout == "wall":
        return float(rng.uniform(0.6, 1.25))
    if rng.random() < 0.15:
        return float(rng.uniform(0.1, 0.4))
    if rng.random() < 0.45:  # a close-up: the object fills most of the frame
        return float(rng.uniform(0.8, 1.15))
    return float(rng.uniform(0.4, 1.0))


def sample_scene(rng: Rng, size: int) -> Scene:
    """Draw the scene of one image whose longer side is ``size`` pixels."""
    aspect, w, h, shot = _frame(rng, size)
    layout = str(rng.choice(LAYOUTS, p=LAYOUT_P))
    return Scene(
        width=w,
        height=h,
        aspect=aspect,
        layout=layout,
        scale=_scale(rng, layout),
        pos_x=float(rng.random()),
        pos_y=float(rng.random()),
        yaw=float(rng.uniform(-50, 50)),
        pitch=float(rng.uniform(0, 45)),
        distance=float(rng.uniform(1.3, 6.0)),
        light_x=float(rng.uniform(-0.8, 0.8)),
        light_y=float(rng.uniform(-0.9, -0.2)),
        background=str(rng.choice(BACKGROUNDS, p=BACKGROUND_P)),
        pallet=bool(rng.random() < 0.1),
        roll=float(rng.normal(0, 3)) if rng.random() < 0.4 else 0.0,
        warp=float(rng.uniform(0.02, 0.09)) if rng.random() < 0.35 else 0.0,
        gain=float(rng.uniform(0.7, 1.25)),
        gamma=float(rng.uniform(0.8, 1.25)),
        warmth=float(rng.uniform(-0.7, 1)),  # phone photos indoors lean warm
        vignette=float(rng.uniform(0, 0.45)),
        cast_shadow=bool(rng.random() < 0.25),
        text_overlay=bool(rng.random() < 0.25),
        watermark=bool(rng.random() < 0.2),
        screenshot=shot,
        blur=float(rng.uniform(0.4, 1.6)) if rng.random() < 0.3 else 0.0,
        motion=int(rng.integers(3, 9)) if rng.random() < 0.06 else 0,
        noise=float(rng.uniform(1.5, 8)) if rng.random() < 0.4 else 0.0,
        downscale=float(rng.uniform(0.35, 0.8)) if rng.random() < 0.2 else 1.0,
        jpeg_quality=int(rng.integers(40, 96)),
        jpeg_first=int(rng.integers(30, 90)) if rng.random() < 0.2 else 0,
        person=str(rng.choice(["left", "right"])) if rng.random() < 0.1 else "",
        clutter=int(rng.integers(1, 4)) if rng.random() < 0.3 else 0,
        flash=bool(rng.random() < 0.08),
    )
