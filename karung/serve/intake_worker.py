"""The part of image intake that runs inside worker processes (see :mod:`karung.serve.intake`).

Workers are spawned fresh and unpickle :func:`intake` by reference, importing this module: it
must stay free of torch, FastAPI and the rest of the service (each import costs every worker
startup time and memory). Only :mod:`karung.vision`'s decode, hashing and preprocessing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from karung.vision.decode import decode_image
from karung.vision.hashing import HASH_MAX_SIDE, ImageHashes, compute_hashes, hash_input
from karung.vision.preprocess import Preprocessing


@dataclass(frozen=True)
class Intake:
    """What the scorer needs of one image: its sha256, model input and perceptual hashes."""

    sha256: str
    array: np.ndarray  # (1, 3, S, S) float32, normalised for the model
    hashes: ImageHashes | None  # None when no bank asked for them


def intake(
    data: bytes, pre: Preprocessing, max_bytes: int, max_pixels: int, with_hashes: bool
) -> Intake:
    """Hash the bytes, decode at the model's input size, preprocess and (optionally) hash.

    Raises the typed decode errors of :func:`karung.vision.decode.decode_image`.
    """
    sha = hashlib.sha256(data).hexdigest()
    if not with_hashes:
        image = decode_image(
            data, max_bytes=max_bytes, max_pixels=max_pixels, target_size=pre.input_size
        )
        return Intake(sha, pre.to_array([image]), None)
    # Hash exactly what the bank hashed when it added its entries (decode towards
    # HASH_MAX_SIDE, then hash_input): a decode sized for the model instead drifts PDQ by
    # ~6 bits on average (22 at worst on 150 CC0 photos), margin a cropped or captioned
    # re-upload needs. The model input is then resized from the same pixels.
    image = hash_input(
        decode_image(data, max_bytes=max_bytes, max_pixels=max_pixels, target_size=HASH_MAX_SIDE)
    )
    return Intake(sha, pre.to_array([image]), compute_hashes(image))


def warm() -> bool:
    """Import the hashing libraries in a fresh worker so the first real item is not slow."""
    import imagehash  # noqa: F401
    import pdqhash  # noqa: F401

    return True
