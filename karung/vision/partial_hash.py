"""PDQ and pHash of many small partial images at once, in NumPy.

A query hashes 17 partial images (:data:`karung.vision.variants.QUERY_CROPS`), so their cost
matters: through PIL and the PDQ library they took about 10 ms a photo; here every region is
averaged to 64 x 64 cells of whole pixels from one summed-area table (four gathers), and the 16
PDQ hashes come from one batched DCT:

* PDQ exactly as the reference computes it for a 64 x 64 input (its Jarosz filter and decimation
  are then the identity): the 16 x 16 DCT coefficients after the DC row and column, a bit per
  coefficient above their median, and the gradient-sum quality. Bits equal the library's up to
  float rounding at the median (a test compares them).
* pHash of the 32 x 32 average of that square: the lowest 8 x 8 DCT coefficients against their
  median, as ``imagehash.phash`` does on its own 32 x 32 reduction.

Partial hashes are only ever compared with partial hashes computed here (an entry's stored centre
crop is partial 0), so their small differences from the libraries' resampling never matter.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from karung.vision import variants
from karung.vision.pdq_native import luma

SIDE: Final = 64
_PDQ_QUALITY_DIVISOR: Final = 90


def _dct(rows: int, n: int, skip_dc: bool) -> np.ndarray:
    first = 1 if skip_dc else 0
    k = np.arange(first, first + rows)[:, None]
    j = np.arange(n)[None, :]
    return np.cos(np.pi / (2 * n) * k * (2 * j + 1))


_PDQ_DCT: Final = np.sqrt(2 / SIDE) * _dct(16, SIDE, skip_dc=True)
_PHASH_DCT: Final = 2 * _dct(8, 32, skip_dc=False)


def integral(gray: np.ndarray) -> np.ndarray:
    """The summed-area table of a 2-D array, with a leading row and column of zeros."""
    out = np.zeros((gray.shape[0] + 1, gray.shape[1] + 1), dtype=np.float64)
    np.cumsum(np.cumsum(gray, axis=0), axis=1, out=out[1:, 1:])
    return out


def _edges(start: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and past-the-end line of each of 64 cells over ``size`` lines from ``start``, for
    each region (``(k,)`` in, ``(k, 64)`` out; whole lines; a cell of a region smaller than 64
    lines repeats a line)."""
    cuts = start[:, None] + (np.arange(SIDE + 1)[None, :] * size[:, None]) // SIDE
    low = np.minimum(cuts[:, :-1], (start + size - 1)[:, None])
    return low, np.maximum(cuts[:, 1:], low + 1)


def box_squares(table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Each (left, top, right, bottom) row of ``boxes`` of the array behind ``table``
    (:func:`integral`) averaged to 64 x 64 cells of whole pixels: four gathers for all the
    boxes at once, no resampling filter."""
    y0, y1 = _edges(boxes[:, 1], boxes[:, 3] - boxes[:, 1])
    x0, x1 = _edges(boxes[:, 0], boxes[:, 2] - boxes[:, 0])

    def corner(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return table[ys[:, :, None], xs[:, None, :]]

    sums = corner(y1, x1) - corner(y0, x1) - corner(y1, x0)
    sums += corner(y0, x0)
    return sums / ((y1 - y0)[:, :, None] * (x1 - x0)[:, None, :])


def box_square(table: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """One box of :func:`box_squares`."""
    return box_squares(table, np.array([box], dtype=np.int64))[0]


def pdq(batch: np.ndarray) -> tuple[list[bytes], list[int]]:
    """PDQ hash bytes (reference layout, most significant bit first) and quality of each
    ``(64, 64)`` luma square of ``batch``."""
    coefficients = _PDQ_DCT @ batch @ _PDQ_DCT.T  # (k, 16, 16)
    flat = coefficients.reshape(len(batch), -1)
    bits = flat > np.median(flat, axis=1, keepdims=True)
    hashes = [np.packbits(row[::-1]).tobytes() for row in bits]
    return hashes, [int(q) for q in _quality(batch)]


def _quality(batch: np.ndarray) -> np.ndarray:
    """PDQ's quality: the summed truncated gradients (in percent of full scale) / 90, <= 100."""
    down = np.trunc(np.abs(np.diff(batch, axis=1)) * 100 / 255).sum(axis=(1, 2))
    across = np.trunc(np.abs(np.diff(batch, axis=2)) * 100 / 255).sum(axis=(1, 2))
    return np.minimum(100, ((down + across) // _PDQ_QUALITY_DIVISOR)).astype(np.int64)


def phash(batch: np.ndarray) -> list[bytes]:
    """pHash bytes of each 64 x 64 square, from its 32 x 32 average."""
    small = batch.reshape(len(batch), 32, 2, 32, 2).mean(axis=(2, 4))
    low = (_PHASH_DCT @ small @ _PHASH_DCT.T).reshape(len(batch), -1)
    bits = low > np.median(low, axis=1, keepdims=True)
    return [np.packbits(row).tobytes() for row in bits]


def partial_squares(rgb: np.ndarray) -> np.ndarray:
    """The 64 x 64 luma squares of every partial image of :data:`variants.QUERY_CROPS` of an
    ``(H, W, 3)`` uint8 array (already reduced to a few hundred pixels); the regions of one
    angle come from one summed-area table in one batched gather, and a mirrored region is
    its square turned over."""
    gray = luma(rgb).astype(np.float64)
    out = np.empty((len(variants.QUERY_CROPS), SIDE, SIDE), dtype=np.float64)
    for angle in dict.fromkeys(spec.angle for spec in variants.QUERY_CROPS):
        turned = variants.derotate_array(gray, angle) if angle else gray
        table = integral(turned)
        height, width = turned.shape
        which = [i for i, spec in enumerate(variants.QUERY_CROPS) if spec.angle == angle]
        boxes = [variants.QUERY_CROPS[i].box(width, height) for i in which]
        out[which] = box_squares(table, np.array(boxes, dtype=np.int64))
    mirrored = [i for i, spec in enumerate(variants.QUERY_CROPS) if spec.mirrored]
    out[mirrored] = out[mirrored][:, :, ::-1]  # the squares of the image mirrored
    return out
