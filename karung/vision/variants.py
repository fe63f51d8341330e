"""Geometry of partial-image hashes: the entry's centre crop and the query's variants of it.

An entry stores the hashes of its whole image and of one partial image, the centred
:data:`CENTRE_KEEP` of its width and height (:data:`STORED_CROP`). A re-upload is hashed whole
(with its dihedral and border-trimmed variants) and, in addition, as a few partial images,
each the region where the original's centre crop would lie under one hypothesis
(:data:`QUERY_CROPS`):

* nothing was cut (a caption bar over the bottom or top eighth mostly falls outside the centre);
* 5% or 10% of the width and height were cut at some position: the original's centre region is
  then a larger share of the query, at an offset that a small grid of positions covers to within
  about 1.3% of a side (pHash, a 32x32 DCT, tolerates about 3%);
* the photo was rotated by a few degrees with its canvas expanded (:data:`DEROTATIONS`): the
  query is turned back and the original's size recovered from the expanded canvas;
* the photo was mirrored and then captioned (:data:`MIRRORED_CENTRE`): the whole-image hashes
  that find a mirrored copy are PDQ's dihedral ones, which a caption bar pushes past their
  threshold half the time, while the centre region mirrored back still meets the stored crop.

Crop robustness therefore costs the query about 17 small hashes instead of costing every entry 17
stored crops. No image library beyond PIL is needed; the boxes are fractions of the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

CENTRE_KEEP: Final = 0.8
_MARGIN: Final = (1 - CENTRE_KEEP) / 2


@dataclass(frozen=True)
class PartialSpec:
    """A region of an image: ``width``/``height`` and ``left``/``top`` as fractions of its size,
    after turning the image by ``angle`` degrees (counter-clockwise, 0: not turned) or, with
    ``mirrored``, of the image mirrored left to right."""

    left: float
    top: float
    width: float
    height: float
    angle: float = 0.0
    mirrored: bool = False

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The region as a (left, top, right, bottom) box of a ``width`` x ``height`` image (for
        a mirrored spec, the box of the unmirrored image whose mirror image is the region)."""
        start = 1 - self.left - self.width if self.mirrored else self.left
        left, top = round(width * start), round(height * self.top)
        right = max(left + 1, min(width, round(width * (start + self.width))))
        bottom = max(top + 1, min(height, round(height * (self.top + self.height))))
        return left, top, right, bottom


def _cut(keep: float, starts: tuple[float, ...]) -> tuple[PartialSpec, ...]:
    """Where the original's centre lies in a query that kept ``keep`` of each side."""
    side = CENTRE_KEEP / keep
    return tuple(PartialSpec(x, y, side, side) for y in starts for x in starts)


def _starts(keep: float, steps: int) -> tuple[float, ...]:
    """``steps`` offsets spread over the range the centre region can start at (midpoints)."""
    low, high = (_MARGIN - (1 - keep)) / keep, _MARGIN / keep
    low = max(low, 0.0)
    return tuple(low + (high - low) * (i + 0.5) / steps for i in range(steps))


STORED_CROP: Final = PartialSpec(_MARGIN, _MARGIN, CENTRE_KEEP, CENTRE_KEEP)
DEROTATIONS: Final = (5.0, -5.0)
MIRRORED_CENTRE: Final = PartialSpec(_MARGIN, _MARGIN, CENTRE_KEEP, CENTRE_KEEP, mirrored=True)
QUERY_CROPS: Final[tuple[PartialSpec, ...]] = (
    STORED_CROP,
    *_cut(0.95, _starts(0.95, 2)),
    *_cut(0.90, _starts(0.90, 3)),
    *(PartialSpec(_MARGIN, _MARGIN, CENTRE_KEEP, CENTRE_KEEP, a) for a in DEROTATIONS),
    MIRRORED_CENTRE,
)


def partial_image(image: Image.Image, spec: PartialSpec) -> Image.Image:
    """The region ``spec`` of ``image`` (turned back first when ``spec.angle`` is set, mirrored
    when ``spec.mirrored`` is)."""
    if spec.angle:
        image = derotate(image, spec.angle)
    region = image.crop(spec.box(image.width, image.height))
    return region.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if spec.mirrored else region


def derotate(image: Image.Image, angle: float) -> Image.Image:
    """Undo a turn by ``angle`` degrees that expanded the canvas: the original-sized image.

    An image of ``w`` x ``h`` turned by ``a`` with its canvas expanded measures
    ``W = w cos a + h sin a`` by ``H = w sin a + h cos a``; solving for ``w`` and ``h`` gives the
    box to keep after turning back (the corners the turn filled are then outside the centre).
    """
    cos, sin = math.cos(math.radians(abs(angle))), math.sin(math.radians(abs(angle)))
    big_w, big_h = image.size
    det = cos * cos - sin * sin
    w = max(2, round((big_w * cos - big_h * sin) / det))
    h = max(2, round((big_h * cos - big_w * sin) / det))
    fill: float | tuple[int, ...] = 255.0 if len(image.getbands()) == 1 else (255, 255, 255)
    turned = image.rotate(-angle, resample=Image.Resampling.BILINEAR, fillcolor=fill)
    left, top = (big_w - w) // 2, (big_h - h) // 2
    return turned.crop((left, top, left + w, top + h))


def derotate_array(gray: np.ndarray, angle: float) -> np.ndarray:
    """:func:`derotate` of a 2-D float luma array (white is 255)."""
    image = Image.fromarray(np.asarray(gray, dtype=np.float32), "F")
    return np.asarray(derotate(image, angle), dtype=np.float64)
