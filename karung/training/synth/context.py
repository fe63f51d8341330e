"""What a renderer works with: its RNG, the scene, and a picker of source material.

The picker only offers material of the image's own split and records every source photo it
hands out, which is what ends up in the manifest's ``source_ids`` and ``sender_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from karung.training.synth.scene import Scene
from karung.training.synth.segment import Cutout
from karung.training.synth.sources import SourcePhoto

Rng = np.random.Generator


@dataclass(frozen=True)
class SplitAssets:
    """Source material of one split: segmented cut-outs and the real photos for ``garment``."""

    cutouts: tuple[Cutout, ...]
    photos: tuple[SourcePhoto, ...] = ()

    def __post_init__(self) -> None:
        if not self.cutouts:
            raise ValueError("a split needs at least one cut-out")


@dataclass
class Picker:
    """Draws material from one :class:`SplitAssets` and remembers what was used."""

    assets: SplitAssets
    rng: Rng
    used: dict[str, str] = field(default_factory=dict)  # source id -> sender id, in order

    def note(self, source_id: str, sender_id: str) -> None:
        """Record a source photo as used by this image."""
        self.used.setdefault(source_id, sender_id)

    def cutout(self, fabric: bool = False) -> Cutout:
        """A random cut-out (``fabric``: avoid shoes and hats, whose pixels make poor strata)."""
        pool = self.assets.cutouts
        for _ in range(8):
            cut = pool[int(self.rng.integers(len(pool)))]
            if not fabric or cut.category not in ("Shoes", "Hat"):
                break
        self.note(cut.source_id, cut.sender_id)
        return cut

    def palette(self, k: int) -> list[Cutout]:
        """``k`` cut-outs (fabric only) for one object's mix of garments."""
        return [self.cutout(fabric=True) for _ in range(k)]

    def photo(self) -> SourcePhoto | None:
        """A random real photo of this split, or ``None`` when the split has none."""
        photos = self.assets.photos
        if not photos:
            return None
        return photos[int(self.rng.integers(len(photos)))]


@dataclass
class Ctx:
    """Per-image rendering context."""

    rng: Rng
    scene: Scene
    pick: Picker


def swatch(rng: Rng, cut: Cutout, w: int, h: int, squash: float = 1.0) -> np.ndarray:
    """A ``w x h`` float RGB patch cropped from ``cut.fabric``.

    ``squash`` > 1 takes a taller region than the patch's aspect, i.e. compresses the fabric
    vertically the way a baling press does.
    """
    fab = cut.fabric
    fh, fw = fab.shape[:2]
    cw = min(max(int(fw * rng.uniform(0.3, 1.0)), 2), fw)
    ch = min(max(int(cw * h / max(w, 1) * squash), 2), fh)
    x0 = int(rng.integers(0, fw - cw + 1))
    y0 = int(rng.integers(0, fh - ch + 1))
    patch = fab[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    out = cv2.resize(patch, (max(1, w), max(1, h)), interpolation=cv2.INTER_LINEAR)
    return out.astype(np.float32)
