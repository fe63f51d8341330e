"""Version-2 PDQ: a mirrored or rotated copy of a small or odd-sized photo lands within a few
bits of one of the original's 8 dihedral hashes (the reference PDQ did not, issue 19)."""

from __future__ import annotations

import io

import pytest
from hashing.hashkit import scene
from PIL import Image

from karung.vision.hashing import compute_hashes

T = Image.Transpose
SIZES = [(140, 180), (185, 273), (225, 225), (97, 131), (33, 47)]
EDITS = [
    T.FLIP_LEFT_RIGHT,
    T.ROTATE_90,
    T.ROTATE_270,
    T.FLIP_TOP_BOTTOM,
    T.ROTATE_180,
    T.TRANSPOSE,
]


def _reupload(img: Image.Image, edit: T) -> Image.Image:
    buf = io.BytesIO()
    img.transpose(edit).save(buf, format="JPEG", quality=90)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize("size", SIZES)
def test_dihedral_copies_land_within_a_few_bits(size: tuple[int, int]) -> None:
    for seed in range(3):
        original = scene(seed, *size)
        banked = compute_hashes(original, partials=False)
        assert banked.pdq_usable
        for edit in EDITS:
            query = compute_hashes(_reupload(original, edit), partials=False)
            assert min(v.distance(banked.pdq) for v in query.pdq_dihedral) <= 12, (size, edit)


def test_reference_shortcut_was_not_size_safe() -> None:
    """What version 2 fixes: the reference PDQ of a 140x180 photo's mirror image is 30+ bits
    from every dihedral hash of the original (so a threshold of 31 is a coin toss)."""
    worst = 0
    for seed in range(3):
        original = scene(seed, 140, 180)
        banked = compute_hashes(original, partials=False).reference
        query = compute_hashes(_reupload(original, T.FLIP_LEFT_RIGHT), partials=False).reference
        assert banked is not None and query is not None
        worst = max(worst, min(v.distance(banked[0][0]) for v in query[0]))
    assert worst >= 30
