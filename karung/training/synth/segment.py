"""Cut a garment out of its CC0 photo (GrabCut), plus a fabric swatch and a garment-free backdrop.

The CC0 photos show one garment roughly centred on a floor, bed or door, so GrabCut seeded with
a rectangle inset from the border separates it well. It runs at 128 px (the cost is in the
GMM iterations, not in the resolution that matters after compositing) and the mask is then
upsampled and feathered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from karung.training.synth.errors import SynthError
from karung.training.synth.sources import SourcePhoto, load_photo

CUTOUT_SIDE: Final = 256  # long side of stored cut-outs (px)
GRABCUT_SIDE: Final = 128
MIN_COVER, MAX_COVER = 0.04, 0.90


class CutoutError(SynthError, code="bad_photo"):
    """A photo could not be decoded or its garment could not be separated."""


@dataclass(frozen=True)
class Cutout:
    """A garment ready for compositing; arrays are uint8 and read-only by convention."""

    rgba: np.ndarray  # garment on transparent, PREMULTIPLIED, cropped to its bounding box
    fabric: np.ndarray  # an RGB swatch from inside the garment (strata, crumpled clothes)
    backdrop: np.ndarray | None  # an RGB crop of the photo with no garment in view
    source_id: str
    sender_id: str
    category: str


def premultiplied_u8(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 RGBA with colour premultiplied by ``mask`` (so it can be resized as is)."""
    a = np.clip(mask, 0.0, 1.0).astype(np.float32)
    rgb_p = rgb.astype(np.float32) * cv2.cvtColor(a, cv2.COLOR_GRAY2RGB)
    out = cv2.cvtColor(np.clip(rgb_p + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_RGB2RGBA)
    out[..., 3] = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def garment_mask(rgb: np.ndarray) -> np.ndarray:
    """Float mask in ``[0, 1]`` of the main object of ``rgb`` (GrabCut from an inset rectangle)."""
    h, w = rgb.shape[:2]
    s = GRABCUT_SIDE / max(h, w)
    small = cv2.resize(
        rgb, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA
    )
    sh, sw = small.shape[:2]
    mask = np.zeros((sh, sw), np.uint8)
    rect = (round(sw * 0.05), round(sh * 0.05), round(sw * 0.9), round(sh * 0.9))
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(12345)  # GrabCut's k-means draws from OpenCV's global RNG
    cv2.grabCut(small, mask, rect, bgd, fgd, 3, cv2.GC_INIT_WITH_RECT)
    fg = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    fg = _clean(fg)
    up = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(up, (5, 5), 0).astype(np.float32) / 255.0


def _clean(fg: np.ndarray) -> np.ndarray:
    """Drop specks, keep the big components (both shoes of a pair) and fill holes."""
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return fg
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= 0.2 * areas.max())
    fg = np.isin(labels, keep).astype(np.uint8) * 255
    holes = fg.copy()
    flood = np.zeros((fg.shape[0] + 2, fg.shape[1] + 2), np.uint8)
    cv2.floodFill(holes, flood, (0, 0), 255)
    return cv2.bitwise_or(fg, cv2.bitwise_not(holes))


def fabric_swatch(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The largest square centred where the garment is thickest (usually the torso)."""
    dist = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5)
    cy, cx = np.unravel_index(int(np.argmax(dist)), dist.shape)
    half = max(4, int(dist[cy, cx] * 0.7))
    y0, x0 = max(cy - half, 0), max(cx - half, 0)
    return np.ascontiguousarray(rgb[y0 : cy + half, x0 : cx + half])


def backdrop_crop(
    rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray | None:
    """The largest strip of the photo clear of the garment, if one is at least 24 px thick.

    The box is grown by 8% first and a strip holding any garment pixel is refused: GrabCut
    sometimes misses a sleeve, and an "other" image must not show garment pixels.
    """
    h, w = mask.shape
    mx, my = int(w * 0.08), int(h * 0.08)
    x0, y0, x1, y1 = max(box[0] - mx, 0), max(box[1] - my, 0), box[2] + mx, box[3] + my
    regions = [(slice(0, y0), slice(None)), (slice(y1, None), slice(None)),
               (slice(None), slice(0, x0)), (slice(None), slice(x1, None))]  # fmt: skip
    best: np.ndarray | None = None
    for rows, cols in regions:
        strip = rgb[rows, cols]
        if min(strip.shape[:2]) < 24 or (mask[rows, cols] > 0.3).mean() > 0.002:
            continue
        if best is None or strip.size > best.size:
            best = strip
    return None if best is None else np.ascontiguousarray(best)


def cut_photo(photo: SourcePhoto) -> Cutout:
    """Segment one CC0 photo into a :class:`Cutout`.

    Raises:
        CutoutError: undecodable file, or a mask covering too little or too much of the frame.
    """
    try:
        rgb = load_photo(photo.path, CUTOUT_SIDE)
    except (OSError, ValueError, SyntaxError) as exc:
        raise CutoutError(f"{photo.image_id}: cannot decode ({exc})") from exc
    mask = garment_mask(rgb)
    cover = float(mask.mean())
    if not MIN_COVER <= cover <= MAX_COVER:
        raise CutoutError(f"{photo.image_id}: garment mask covers {cover:.0%} of the photo")
    ys, xs = np.nonzero(mask > 0.5)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    rgba = premultiplied_u8(rgb, mask)[box[1] : box[3], box[0] : box[2]]
    return Cutout(
        rgba=np.ascontiguousarray(rgba),
        fabric=fabric_swatch(rgb, mask),
        backdrop=backdrop_crop(rgb, mask, box),
        source_id=photo.image_id,
        sender_id=photo.sender_id,
        category=photo.category,
    )
