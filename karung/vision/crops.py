"""Bank-side crop variants: the hashes of a small grid of crops of a banked image.

PDQ and pHash describe the whole frame, so a re-upload cropped by 10% lands far from the banked
original (PDQ is ~90 bits off after a 5% crop). The bank therefore also stores the hashes of
crops of each banked image (:data:`CROP_GRID`): a query cropped near one of those crops is close
to it. The query side is unchanged (one image, its dihedral and trimmed variants), so matching
cost grows with the bank, not per query.

The grid was chosen by measurement on the CC0 garment photos (see ``docs/HASHING.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from PIL import Image

from karung.vision.hashing import (
    MIN_PDQ_QUALITY,
    HashValue,
    MalformedHash,
    hash_input,
    pdq_dihedral,
    phash,
)


@dataclass(frozen=True)
class CropSpec:
    """A crop keeping ``keep`` of the width and of the height, its top-left corner at ``x``/``y``
    of the slack (0: left/top edge, 1: right/bottom edge)."""

    keep: float
    x: float
    y: float

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The crop box (left, top, right, bottom) in an image of ``width`` x ``height``."""
        kw, kh = max(1, round(width * self.keep)), max(1, round(height * self.keep))
        left, top = round((width - kw) * self.x), round((height - kh) * self.y)
        return left, top, left + kw, top + kh


def _grid(keep: float, steps: tuple[float, ...]) -> tuple[CropSpec, ...]:
    return tuple(CropSpec(keep, x, y) for y in steps for x in steps)


# Measured (docs/HASHING.md): 90% crops on a 4x4 grid of positions (steps of a third of the 10%
# slack, so a 10% crop anywhere is at most 1.7% of the side away from one of them) plus the
# centred 95% crop for the smaller crops in between.
CROP_GRID: Final[tuple[CropSpec, ...]] = (
    *_grid(0.90, (0.0, 1 / 3, 2 / 3, 1.0)),
    CropSpec(0.95, 0.5, 0.5),
)
# Per entry: at most this many crop variants are stored (the store and the index rely on it).
MAX_CROPS: Final = 30


@dataclass(frozen=True)
class CropHashes:
    """PDQ (of usable quality) and pHash of one crop of a banked image."""

    pdq: HashValue
    phash: HashValue

    def __post_init__(self) -> None:
        if self.pdq.kind != "pdq" or self.phash.kind != "phash":
            raise MalformedHash("a crop variant is a PDQ hash and a pHash")

    def text(self) -> str:
        """``<64 hex PDQ>:<16 hex pHash>``, the stored and exported form."""
        return f"{self.pdq.hex()}:{self.phash.hex()}"

    @classmethod
    def from_text(cls, text: str) -> CropHashes:
        """Parse :meth:`text` output; :class:`MalformedHash` says what is wrong."""
        pdq, sep, ph = text.partition(":")
        if not sep:
            raise MalformedHash(f"crop variant needs '<pdq hex>:<phash hex>', got {text!r}")
        return cls(HashValue.from_hex("pdq", pdq), HashValue.from_hex("phash", ph))


def crop_hashes(
    image: Image.Image, grid: tuple[CropSpec, ...] = CROP_GRID
) -> tuple[CropHashes, ...]:
    """The hashes of every crop of ``grid`` whose PDQ quality is usable (>= 50), in grid order.

    The crops are taken from the image the hashes are computed on (:func:`hash_input`), so the
    crop variants line up with the entry's plain hashes.
    """
    img = hash_input(image)
    out = []
    for spec in grid:
        crop = img.crop(spec.box(img.width, img.height))
        if crop.width < 2 or crop.height < 2:
            continue
        hashes, quality = pdq_dihedral(crop)
        if quality >= MIN_PDQ_QUALITY:
            out.append(CropHashes(hashes[0], phash(crop)))
    return tuple(out)


def encode_crops(crops: tuple[CropHashes, ...]) -> str | None:
    """The stored form of a set of crop variants: their texts separated by spaces (None: none)."""
    return " ".join(c.text() for c in crops) if crops else None


def decode_crops(text: str | None) -> tuple[CropHashes, ...]:
    """Parse :func:`encode_crops` output (None or empty: no variants); :class:`MalformedHash`."""
    if not text or not text.strip():
        return ()
    items = tuple(CropHashes.from_text(part) for part in text.split())
    if len(items) > MAX_CROPS:
        raise MalformedHash(f"at most {MAX_CROPS} crop variants per entry, got {len(items)}")
    return items
