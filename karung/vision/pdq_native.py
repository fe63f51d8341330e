"""PDQ's 8 dihedral hashes from pdqhash's own C++ code, called without holding the GIL.

The ``pdqhash`` Cython binding holds the GIL for the whole hash (about 1.3 ms a photo) and then
builds each of the 2,048 output bits in a Python loop: in the service's image threads, hashing one
photo stalls every other thread. The C++ entry point the binding wraps,
``facebook::pdq::hashing::pdqDihedralHash256esFromFloatLuma``, is exported from the binding's
own shared library; :mod:`ctypes` releases the GIL for the call, and the words are packed with
NumPy. The luma conversion is the binding's expression, so the hashes are bit for bit the
binding's (a test compares them).

Where the symbol is missing (a platform whose compiler mangles names differently, a pdqhash
release that renamed it) :func:`load` raises :class:`NativePdqUnavailable` and callers use the
binding.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Final

import numpy as np

# Itanium C++ ABI name (GCC and Clang on Linux and macOS) of
# void pdqDihedralHash256esFromFloatLuma(float*, float*, int, int, float[64][64],
#     float[16][64], float[16][16], float[16][16], Hash256* x 8, int& quality)
SYMBOL: Final = (
    "_ZN8facebook3pdq7hashing33pdqDihedralHash256esFromFloatLuma"
    "EPfS2_iiPA64_fS4_PA16_fS6_PNS1_7Hash256ES8_S8_S8_S8_S8_S8_S8_Ri"
)
WORDS: Final = 16  # a Hash256 is 16 uint16 words, w[0] least significant
VARIANTS: Final = 8
LUMA: Final = (0.299, 0.587, 0.114)  # the binding's (and ThreatExchange's) luma weights


class NativePdqUnavailable(RuntimeError):
    """The pdqhash library does not export the C++ function under the expected name."""


DihedralFn = Callable[[np.ndarray], tuple[list[bytes], int]]


@functools.cache
def load() -> DihedralFn:
    """The GIL-free dihedral hasher; raises :class:`NativePdqUnavailable` when unusable."""
    try:
        import pdqhash.bindings as bindings

        fn = getattr(ctypes.CDLL(bindings.__file__), SYMBOL)
    except (ImportError, OSError, AttributeError) as exc:
        raise NativePdqUnavailable(f"pdqhash's C++ entry point is not reachable: {exc}") from exc
    ptr = ctypes.c_void_p
    fn.restype = None
    fn.argtypes = [ptr, ptr, ctypes.c_int, ctypes.c_int, ptr, ptr, ptr, ptr]
    fn.argtypes += [ptr] * VARIANTS + [ctypes.POINTER(ctypes.c_int)]
    return functools.partial(_dihedral, fn)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Float32 luma of a ``(H, W, 3)`` uint8 array, computed exactly as the binding does
    (float64 products summed left to right, then rounded to float32)."""
    gray = rgb[:, :, 0] * LUMA[0]
    gray += rgb[:, :, 1] * LUMA[1]
    gray += rgb[:, :, 2] * LUMA[2]
    return gray.astype(np.float32)


def _dihedral(fn: Callable[..., None], rgb: np.ndarray) -> tuple[list[bytes], int]:
    """Hash bytes (most significant bit first) of the 8 variants and the quality."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    gray = luma(rgb)
    scratch = np.empty_like(gray)  # the Jarosz filter's second full-size buffer
    blocks = [np.empty(shape, np.float32) for shape in ((64, 64), (16, 64), (16, 16), (16, 16))]
    words = np.zeros((VARIANTS, WORDS), dtype=np.uint16)
    quality = ctypes.c_int(0)
    base = words.ctypes.data
    fn(
        gray.ctypes.data,
        scratch.ctypes.data,
        gray.shape[0],
        gray.shape[1],
        *(block.ctypes.data for block in blocks),
        *(base + i * WORDS * 2 for i in range(VARIANTS)),
        ctypes.byref(quality),
    )
    # w[15] holds bits 255..240: reversed words, big-endian, give the reference hex layout.
    packed = words[:, ::-1].astype(">u2")
    return [row.tobytes() for row in packed], int(quality.value)
