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
