"""Cheap smooth noise: random grids upsampled with bicubic interpolation.

Perlin-quality noise is not needed: after JPEG at 320 px only the blob size and contrast of
stains, lumps and wrinkles matter, and a resized random grid costs microseconds.
"""

from __future__ import annotations

import cv2
import numpy as np


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in ``[0, 1]`` (float32, ``h x w``) with blobs about ``cell`` pixels wide."""
    gh = max(2, int(h / max(cell, 1.0)) + 2)
    gw = max(2, int(w / max(cell, 1.0)) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def fractal_noise(
    rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3
) -> np.ndarray:
    """Sum of :func:`value_noise` octaves (each half the size, half the weight), in ``[0, 1]``."""
    total = np.zeros((h, w), np.float32)
    weight, norm = 1.0, 0.0
    for _ in range(octaves):
        total += weight * value_noise(rng, h, w, cell)
        norm += weight
        cell, weight = cell / 2.0, weight / 2.0
    return total / norm


def grain(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Per-pixel Gaussian noise (float32, mean 0), for sensor noise and fibre speckle."""
    return rng.standard_normal((h, w), dtype=np.float32) * np.float32(sigma)


def noise_1d(rng: np.random.Generator, n: int, cell: float) -> np.ndarray:
    """Smooth 1-D noise in ``[-1, 1]`` of length ``n`` (wavy edges and strata)."""
    return value_noise(rng, 1, n, cell)[0] * 2.0 - 1.0
