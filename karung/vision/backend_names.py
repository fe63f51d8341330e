"""Names of the inference backends a model can be loaded on (import-light: used by CLIs)."""

from __future__ import annotations

from typing import Final

# torch: eager fp32 reference. onnx: the preferred parity-checked ONNX export (int8 with its
# fp32 fallback, else fp32). auto: the fastest of those on this CPU, timed at load, else torch.
# onnx-int8 / onnx-fp32: that file only.
BACKENDS: Final = ("torch", "auto", "onnx", "onnx-int8", "onnx-fp32")
