"""Partial images: NumPy PDQ equals the library's on 64 x 64 squares, the geometry of the
query's variants undoes crops and small turns."""

from __future__ import annotations

import numpy as np
from hashing.hashkit import scene
from PIL import Image

from karung.vision import partial_hash, pdq_native, variants
from karung.vision.hashing import compute_hashes


def test_numpy_pdq_equals_the_library_on_64_pixel_squares() -> None:
    native = pdq_native.load()
    for seed in range(6):
        rgb = np.asarray(scene(seed, 64, 64))
        batch = pdq_native.luma(rgb).astype(np.float64)[None]
        [mine], [quality] = partial_hash.pdq(batch)
        words, reference_quality = native(np.ascontiguousarray(rgb))
        diff = int.from_bytes(mine, "big") ^ int.from_bytes(words[0], "big")
        assert diff.bit_count() <= 2  # float rounding at the median only
        assert abs(quality - reference_quality) <= 1


def test_box_square_averages_whole_pixel_cells() -> None:
    gray = np.arange(128 * 192, dtype=np.float64).reshape(128, 192)
    square = partial_hash.box_square(partial_hash.integral(gray), (0, 0, 192, 128))
    expected = gray.reshape(64, 2, 64, 3).mean(axis=(1, 3))
    assert np.allclose(square, expected)
    tiny = partial_hash.box_square(partial_hash.integral(gray[:10, :10]), (0, 0, 10, 10))
    assert tiny.shape == (64, 64) and np.isclose(tiny[0, 0], gray[0, 0])


def test_derotate_recovers_the_original_frame() -> None:
    original = scene(3, 300, 200)
    turned = original.rotate(5, Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))
    back = variants.derotate(turned, 5.0)
    assert abs(back.width - 300) <= 2 and abs(back.height - 200) <= 2


def test_partials_of_a_turned_photo_meet_the_stored_centre_crop() -> None:
    original = scene(3, 300, 200)
    stored = compute_hashes(original).stored_crop
    assert stored is not None
    turned = original.rotate(5, Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))
    query = compute_hashes(turned)
    assert len(query.partials) == len(variants.QUERY_CROPS)
    best = min(p.phash.distance(stored.phash) for p in query.partials)
    plain = compute_hashes(turned, partials=False)
    assert best <= 8 < plain.phash.distance(compute_hashes(original).phash)


def test_the_mirrored_centre_of_a_mirrored_captioned_photo_meets_the_stored_crop() -> None:
    """A photo mirrored and then given a caption bar: the query's mirrored centre region is
    within the pHash threshold of the stored centre crop, its plain centre region is not."""
    import random

    from karung.serve.bench.transforms import TRANSFORMS

    original = scene(5, 320, 240)
    stored = compute_hashes(original).stored_crop
    assert stored is not None
    flipped = original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    query = compute_hashes(TRANSFORMS["caption_bar"](flipped, random.Random(0)))
    by_position = dict(zip(query.partial_specs, query.partials, strict=True))
    mirrored = variants.QUERY_CROPS.index(variants.MIRRORED_CENTRE)
    assert by_position[mirrored].phash.distance(stored.phash) <= 10
    assert by_position[0].phash.distance(stored.phash) > 10


def test_a_mirrored_region_is_the_region_of_the_mirrored_image() -> None:
    """The batched square of the mirrored centre is the centre square of the image mirrored,
    up to where whole-pixel cells fall (cells of 2 and 3 pixels alternate the other way)."""
    rgb = np.asarray(scene(7, 200, 150))
    squares = partial_hash.partial_squares(rgb)
    of_flipped = partial_hash.partial_squares(np.ascontiguousarray(rgb[:, ::-1]))
    mirrored = variants.QUERY_CROPS.index(variants.MIRRORED_CENTRE)
    assert float(np.abs(squares[mirrored] - of_flipped[0]).mean()) < 1.0
    assert float(np.abs(squares[0] - of_flipped[0]).mean()) > 5.0  # the unmirrored one is not
    a, b = partial_hash.phash(np.stack([squares[mirrored], of_flipped[0]]))
    assert (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count() <= 2


def test_a_mirrored_spec_boxes_the_region_its_mirror_image_covers() -> None:
    """Off centre, a mirrored region is taken from the other side of the unmirrored image."""
    spec = variants.PartialSpec(0.1, 0.2, 0.5, 0.5, mirrored=True)
    assert spec.box(100, 100) == (40, 20, 90, 70)
    plain = variants.PartialSpec(0.1, 0.2, 0.5, 0.5)
    assert plain.box(100, 100) == (10, 20, 60, 70)
