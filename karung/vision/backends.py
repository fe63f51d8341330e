"""Inference backends: one small interface, a plain torch implementation, faster ones elsewhere.

A backend maps a preprocessed float32 batch ``(N, 3, H, W)`` to raw logits ``(N, L)``. Every
faster backend (ONNX Runtime int8, see :mod:`karung.vision.onnx_backend`) is checked for parity
against :class:`TorchBackend`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import nn

from karung.vision.backend_names import check_batch
from karung.vision.errors import InvalidBatch


class InferenceBackend(Protocol):
    """Turns a normalised batch into logits."""

    name: str

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Return float32 logits of shape ``(N, num_labels)``."""
        ...


class TorchBackend:
    """Eager fp32 PyTorch on the CPU: the reference every other backend is compared with."""

    name = "torch"

    def __init__(self, model: nn.Module) -> None:
        self._model = model.eval()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Run the network under :func:`torch.inference_mode`.

        Raises:
            InvalidBatch: ``batch`` is not ``(N, 3, S, S)`` numbers the network can take.
        """
        check_batch(batch)
        try:
            with torch.inference_mode():
                out = self._model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        except RuntimeError as exc:  # e.g. an image too small for the network's strides
            raise InvalidBatch(f"the network cannot take this batch: {exc}") from exc
        return out.float().numpy()
