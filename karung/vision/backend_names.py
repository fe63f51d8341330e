"""Names of the inference backends a model can be loaded on, and the input contract every
backend checks (import-light: used by CLIs and by the torch-free ONNX backend)."""

from __future__ import annotations

from typing import Final

import numpy as np

from karung.vision.errors import InvalidBatch

# torch: eager fp32 reference. onnx: the preferred parity-checked ONNX export (int8 with its
# fp32 fallback, else fp32). auto: the fastest of those on this CPU, timed at load, else torch.
# onnx-int8 / onnx-fp32: that file only.
BACKENDS: Final = ("torch", "auto", "onnx", "onnx-int8", "onnx-fp32")


def check_batch(batch: np.ndarray, size: int | None = None) -> None:
    """Raise :class:`InvalidBatch` unless ``batch`` is a non-empty ``(N, 3, S, S)`` array of
    real numbers (``S == size`` where the backend knows its input size)."""
    shape = getattr(batch, "shape", None)
    dtype = getattr(batch, "dtype", None)
    if dtype is None or not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise InvalidBatch(f"a batch must be a numeric array, got {type(batch).__name__}")
    if shape is None or len(shape) != 4 or shape[0] < 1 or shape[1] != 3 or shape[2] != shape[3]:
        raise InvalidBatch(f"a batch must be (N >= 1, 3, S, S), got shape {shape}")
    if size is not None and shape[2] != size:
        raise InvalidBatch(f"this model takes {size}x{size} images, got {shape[2]}x{shape[3]}")
