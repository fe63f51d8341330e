"""The work of image intake, run on intake threads or in worker processes (:mod:`.intake`).

Workers are spawned fresh and unpickle :func:`intake` by reference, importing this module: it
must stay free of torch, FastAPI and the rest of the service (each import costs every worker
startup time and memory). Only :mod:`karung.vision`'s decode, hashing and preprocessing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from karung.vision.decode import DEFAULT_MAX_DECODE_BYTES, decode_image
from karung.vision.hashing import ImageHashes, TooSmallToHash, compute_hashes, decode_for_hashing
from karung.vision.preprocess import Preprocessing


@dataclass(frozen=True)
class Intake:
    """What the scorer needs of one image: its sha256, model input and perceptual hashes."""

    sha256: str
    pixels: np.ndarray  # (1, S, S, 3) uint8, resized for the model; normalised per batch
    hashes: ImageHashes | None  # None when no bank asked for them or none can be computed
    hash_note: str | None = None  # why an image the bank asked about has no perceptual hash


def intake(
    data: bytes,
    pre: Preprocessing,
    max_bytes: int,
    max_pixels: int,
    with_hashes: bool,
    max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES,
) -> Intake:
    """The sha256 of the bytes, the model input and (with ``with_hashes``) the perceptual
    hashes, from one decode where the model can use the hashing decode's pixels. An image
    too small for a perceptual hash (1x1) is still scored: ``hash_note`` says why it has none.

    Raises the typed decode errors of :func:`karung.vision.decode.decode_image`.
    """
    sha = hashlib.sha256(data).hexdigest()
    limits = {
        "max_bytes": max_bytes,
        "max_pixels": max_pixels,
        "max_decode_bytes": max_decode_bytes,
    }
    if not with_hashes:
        image = decode_image(data, target_size=pre.input_size, **limits)
        return Intake(sha, pre.to_pixels([image]), None)
    # The bank hashed its photos from decode_for_hashing's pixels; hashing any other decode
    # (say the smaller one the model needs) would move PDQ by ~6 bits, margin an edited
    # re-upload needs. The model reuses those pixels when they are large enough for it.
    hashed = decode_for_hashing(data, **limits)
    model_image = hashed
    if min(hashed.size) < pre.input_size:  # a large model input or an extreme aspect ratio
        model_image = decode_image(data, target_size=pre.input_size, **limits)
    try:
        hashes: ImageHashes | None = compute_hashes(hashed)
    except TooSmallToHash as exc:
        return Intake(sha, pre.to_pixels([model_image]), None, str(exc))
    return Intake(sha, pre.to_pixels([model_image]), hashes)


def warm() -> bool:
    """Hash a small image so the first real item does not pay for imports and first calls
    (imagehash, scipy's DCT, loading PDQ's native entry point)."""
    from PIL import Image

    ramp = np.linspace(0, 255, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    compute_hashes(Image.fromarray(ramp.astype(np.uint8)))
    return True


def exit_with_parent(parent_pid: int, interval: float = 1.0) -> None:
    """Worker initializer: exit when the service process is gone.

    A pool's workers wait on their task queue forever; if the service is killed without a
    clean shutdown (SIGKILL, OOM killer) they would linger as orphans holding memory.
    """

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(0)

    threading.Thread(target=watch, name="karung-parent-watch", daemon=True).start()
