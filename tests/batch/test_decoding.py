"""The backfill's single decode gives exactly the pixels of the two decodes it replaces."""

from __future__ import annotations

import numpy as np
import pytest
from imagegen import encode, textured

from karung.batch.decoding import _plan, decode_both
from karung.vision.decode import decode_image
from karung.vision.errors import CorruptImage
from karung.vision.hashing import HASH_DECODE_TARGET, decode_for_hashing

LIMITS = {"max_bytes": 1 << 25, "max_pixels": 1 << 26}


@pytest.mark.parametrize(
    ("size", "fmt", "model"),
    [
        ((1600, 1200), "JPEG", 160),  # the usual photo: one decode serves both
        ((1600, 1200), "JPEG", 224),  # a retrained model's input size
        ((1600, 1200), "JPEG", 512),  # a large input: two decodes
        ((3000, 700), "JPEG", 224),
        ((900, 700), "PNG", 160),  # box reduction differs: two decodes
        ((300, 260), "PNG", 224),
    ],
)
def test_same_pixels_as_the_two_decodes(size: tuple[int, int], fmt: str, model: int) -> None:
    data = encode(textured(*size, seed=3), fmt)
    model_image, hash_image = decode_both(data, model, **LIMITS)
    expected_model = decode_image(data, target_size=model, **LIMITS)
    expected_hash = decode_for_hashing(data, **LIMITS)
    assert np.array_equal(np.asarray(model_image), np.asarray(expected_model))
    assert np.array_equal(np.asarray(hash_image), np.asarray(expected_hash))


def test_the_shortcut_is_taken_for_a_typical_photo() -> None:
    data = encode(textured(1600, 1200, seed=1), "JPEG")
    assert _plan(data, 160) == _plan(data, HASH_DECODE_TARGET) == (400, 300, 1)


def test_broken_bytes_raise_the_typed_error() -> None:
    with pytest.raises(CorruptImage):
        decode_both(b"\xff\xd8\xff\xe0" + b"\x13" * 300, 160, **LIMITS)
