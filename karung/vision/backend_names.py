"""Names of the inference backends a model can be loaded on (import-light: used by CLIs)."""

from __future__ import annotations

from typing import Final

# torch: eager fp32 reference. auto/onnx: fastest parity-checked ONNX export on this CPU
# (auto falls back to torch without one). onnx-int8 / onnx-fp32: that file only.
BACKENDS: Final = ("torch", "auto", "onnx", "onnx-int8", "onnx-fp32")
