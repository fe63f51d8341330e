"""One decode instead of two when the model's decode and the bank's hashing decode coincide.

A backfilled photo needs two decodes: ``karung score``'s (``decode_image`` towards the model's
input size) and the bank's (``decode_for_hashing``, towards ``HASH_DECODE_TARGET``). Both run
the same steps on the same bytes, and the target only changes two of them: the JPEG draft scale
(DCT scaling) and the integer box reduction. When the header says both targets lead to the
same draft size and the same reduction, the two decodes give identical pixels, so the model's
image is hashed directly (a typical 1600x1200 listing photo decodes to 400x300 either way). Any
doubt (an unparsable header, a different size) keeps the two decodes: the result is always
exactly what the two separate decodes give.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image

from karung.vision.decode import decode_image
from karung.vision.hashing import HASH_DECODE_TARGET, decode_for_hashing, hash_input


def decode_both(
    data: bytes, model_size: int, *, max_bytes: int, max_pixels: int
) -> tuple[Image.Image, Image.Image]:
    """``(model image, hashing image)``, identical to ``decode_image(target=model_size)`` and
    ``decode_for_hashing``; typed decode errors as those raise them."""
    model_image = decode_image(
        data, max_bytes=max_bytes, max_pixels=max_pixels, target_size=model_size
    )
    plan = _plan(data, model_size)
    if plan is not None and plan == _plan(data, HASH_DECODE_TARGET):
        return model_image, hash_input(model_image)
    return model_image, decode_for_hashing(data, max_bytes=max_bytes, max_pixels=max_pixels)


def _plan(data: bytes, target: int) -> tuple[int, int, int] | None:
    """(width, height) after the JPEG draft for ``target`` and the box-reduction factor, read
    from the header alone; None when the header cannot tell."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # decode_image already reports bombs its own way
            img = Image.open(io.BytesIO(data))
            if img.format == "JPEG":
                img.draft("RGB", (target, target))
            width, height = img.size
    except Exception:  # any header trouble: decode twice, decode_image raises the typed error
        return None
    factor = min(width // target, height // target)
    return width, height, factor if factor >= 2 else 1
