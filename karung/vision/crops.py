"""Bank-side crop variants: the stored form of an entry's partial-image hashes.

Since hash version 2 an entry stores one crop variant, the hashes of its centred crop
(:data:`karung.vision.variants.STORED_CROP`); the query side hashes the few partial images where
that crop would lie in a cropped, captioned or slightly rotated re-upload
(:data:`karung.vision.variants.QUERY_CROPS`). Entries banked with version 1 stored 17 crops of a
grid; those still parse here (:data:`MAX_CROPS`) but the matcher does not use them (their PDQ is
of version 1), and ``karung bank rehash`` replaces them.
"""

from __future__ import annotations

from typing import Final

from PIL import Image

from karung.vision.hashing import CropHashes, MalformedHash, compute_hashes

__all__ = ["MAX_CROPS", "CropHashes", "crop_hashes", "decode_crops", "encode_crops"]

# Per entry: at most this many crop variants are stored (version 1 stored up to 17).
MAX_CROPS: Final = 30


def crop_hashes(image: Image.Image) -> tuple[CropHashes, ...]:
    """The crop variants an entry of ``image`` stores: its centred crop, when usable."""
    crop = compute_hashes(image, trim=False).stored_crop
    return () if crop is None else (crop,)


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
