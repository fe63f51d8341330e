"""Hashes of generated images: golden values, dihedral variants, quality, border trimming."""

from __future__ import annotations

from typing import Any

import numpy as np
import pdqhash
import pytest
from hashing.hashkit import scene
from PIL import Image, ImageOps

from karung.vision.hashing import (
    HASH_MAX_SIDE,
    MIN_PDQ_QUALITY,
    MalformedHash,
    compute_hashes,
    hash_input,
)
from karung.vision.trim import even_box, trim_border

# Pinned hashes of generated images: a pdqhash or imagehash upgrade that changes hashes (and so
# silently breaks every stored bank and shared hash list) fails here. Version 2 PDQ (the 64 x 64
# normalised image), quality, pHash; REFERENCE_GOLDEN: the version-1 (reference) PDQ.
GOLDEN = {
    0: (
        "f92d687468d96e64b589b70ca34ca79c13b4d5a956b4dc236b468a16b69399ca",
        100,
        "ab2964b4b5e6964a",
    ),
    1: (
        "ed25603efc317ff3ffe100ded6c806faf001d2071dec1ffcdd8d00244033ee01",
        100,
        "ffc0e490d81f93e0",
    ),
    2: (
        "a44e5294ab41e62d097e64ea92966d66d2c5292dd6ed195654a9de56abad92a9",
        100,
        "a5ca5ab5cab55a12",
    ),
}
REFERENCE_GOLDEN = {
    0: (
        "f92d687468d92e64b589b704890da7bc13b4dda956b4dc236b468a96b69399ca",
        100,
        "ab2964b4b5e6964a",
    ),
    1: (
        "e123603ffd317ff2ffc300def6c806faf001d2471dec1ffcdc8d00244033ee01",
        100,
        "ffc0e490d81f93e0",
    ),
    2: (
        "a44612b4a949e62d097a54ea92966d6fd2c5292dd6ed195654a9de56abad92a9",
        100,
        "a5ca5ab5cab55a12",
    ),
}


@pytest.mark.parametrize("seed", sorted(GOLDEN))
def test_golden_hashes(seed: int) -> None:
    pdq, quality, phash = GOLDEN[seed]
    hashes = compute_hashes(scene(seed))
    assert hashes.pdq.hex() == pdq
    assert hashes.pdq_quality == quality
    assert hashes.phash.hex() == phash
    assert hashes.reference is not None
    assert (hashes.reference[0][0].hex(), hashes.reference[1]) == REFERENCE_GOLDEN[seed][:2]


def test_generated_images_are_usable_and_unrelated() -> None:
    a, b = compute_hashes(scene(0)), compute_hashes(scene(1))
    assert a.pdq_usable and b.pdq_usable
    assert a.pdq.distance(b.pdq) > 90  # unrelated images sit near 128 of 256
    assert a.phash.distance(b.phash) > 16


def test_pdq_hex_has_the_reference_bit_order() -> None:
    """Bit 255 of the binding's vector comes first, so hex equals ThreatExchange's layout."""
    img = scene(3)
    vector, _quality = pdqhash.compute(np.asarray(img))
    expected = "".join(
        f"{int(''.join(map(str, vector[i : i + 4])), 2):x}" for i in range(0, 256, 4)
    )
    reference = compute_hashes(img).reference
    assert reference is not None and reference[0][0].hex() == expected


@pytest.mark.parametrize(
    ("edit", "limit"),
    [
        (ImageOps.mirror, 4),
        (lambda img: img.transpose(Image.Transpose.ROTATE_90), 4),
        # Variants with a vertical flip come out ~20 bits off (PDQ derives them from the DCT and
        # its downsampling is not symmetric top to bottom); still well inside the threshold.
        (lambda img: img.transpose(Image.Transpose.FLIP_TOP_BOTTOM), 31),
        (lambda img: img.transpose(Image.Transpose.ROTATE_180), 31),
    ],
)
def test_dihedral_variants_catch_mirror_and_rotation(edit: Any, limit: int) -> None:
    original = compute_hashes(scene(0))
    assert len(original.pdq_dihedral) == 8
    assert original.pdq_dihedral[0] == original.pdq
    query = compute_hashes(edit(scene(0)))
    assert query.pdq.distance(original.pdq) > 60  # the plain hash does not survive
    assert min(v.distance(original.pdq) for v in query.pdq_dihedral) <= limit


def test_flat_image_has_low_quality() -> None:
    hashes = compute_hashes(Image.new("RGB", (200, 150), (120, 130, 140)))
    assert hashes.pdq_quality < MIN_PDQ_QUALITY
    assert not hashes.pdq_usable


def test_too_small_image_is_rejected() -> None:
    with pytest.raises(MalformedHash, match="1x1"):
        compute_hashes(Image.new("RGB", (1, 1)))


def test_large_images_are_hashed_at_bounded_size() -> None:
    big = scene(5, 1600, 1200)
    assert max(hash_input(big).size) == HASH_MAX_SIDE
    small = compute_hashes(scene(5, 1600, 1200).resize((400, 300)))
    assert compute_hashes(big).pdq.distance(small.pdq) <= 16


def test_non_rgb_input_is_converted() -> None:
    grey = scene(6).convert("L")
    assert compute_hashes(grey).phash == compute_hashes(grey.convert("RGB")).phash


@pytest.mark.parametrize("colour", [(255, 255, 255), (0, 0, 0), (200, 40, 90)])
def test_uniform_border_is_trimmed(colour: tuple[int, int, int]) -> None:
    img = scene(1)  # a scene whose own edges are not uniform (some are, and get trimmed too)
    framed = ImageOps.expand(img, (40, 30, 40, 30), fill=colour)
    inner = trim_border(framed)
    assert inner is not None and inner.size == img.size
    hashes = compute_hashes(framed)
    assert hashes.trimmed is not None
    assert hashes.trimmed.pdq.distance(compute_hashes(img).pdq) <= 4
    assert hashes.variants() == (hashes, hashes.trimmed)


def test_nested_borders_are_peeled() -> None:
    img = scene(2)
    framed = ImageOps.expand(ImageOps.expand(img, 20, fill="white"), 15, fill="black")
    inner = trim_border(framed)
    assert inner is not None and inner.size == img.size


def test_images_without_border_are_not_trimmed() -> None:
    assert trim_border(scene(9)) is None
    assert compute_hashes(scene(9)).trimmed is None
    top_band = trim_border(scene(3))  # scene 3 has a flat band along its bottom edge
    assert top_band is not None and top_band.size == (320, 222)
    assert trim_border(Image.new("RGB", (100, 80), "white")) is None  # nothing but border
    assert compute_hashes(scene(9), trim=False).trimmed is None


def test_a_border_trimmed_into_a_light_background_is_evened_out() -> None:
    """A photo shot on a near-white floor (its top 40 rows), framed by an even white border:
    trimming runs on through the floor at the top only, the even trim stops at the border."""
    photo = scene(9)  # no uniform edge of its own
    photo.paste((246, 246, 246), (0, 0, photo.width, 40))
    framed = ImageOps.expand(photo, (48, 36, 48, 36), fill=(255, 255, 255))
    hashes = compute_hashes(framed)
    assert hashes.trimmed is not None and hashes.evened is not None
    assert even_box((48, 76, 368, 276), framed.size) == (48, 36, 368, 276)
    original = compute_hashes(photo)
    assert hashes.evened.pdq.distance(original.pdq) <= 4
    assert hashes.trimmed.pdq.distance(original.pdq) > 31  # what the even trim is for
    assert hashes.variants() == (hashes, hashes.trimmed, hashes.evened)
    assert compute_hashes(ImageOps.expand(scene(9), 40, fill="white")).evened is None
