"""Run the frozen lower blocks with ONNX Runtime instead of eager torch.

On this class of CPU, ONNX Runtime runs MobileNetV2 in fp32 about five times faster than eager
PyTorch (fused conv + batch-norm + ReLU6, blocked memory layout; see ``karung bench
inference``). The frozen blocks of a stage never change and need no gradient, so they are
exported once per stage and executed by ORT; only the trainable top runs in torch with
autograd. In stage 1 (head only) the ORT graph includes the global pooling and torch trains
just the linear head. Numerically the result matches the plain torch forward to ~1e-5 (tested).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from karung.training.errors import KarungTrainingError
from karung.vision.model import backbone_blocks
from karung.vision.onnx_backend import session_options

NUM_BLOCKS = 19


class _Prefix(nn.Module):
    """Blocks ``[0, k)``; with all 19 blocks also the global average pooling."""

    def __init__(self, blocks: list[nn.Module], pooled: bool) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*blocks)
        self.pooled = pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.blocks(x)
        if self.pooled:
            h = torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)
        return h


class FrozenPrefix:
    """The first ``frozen_blocks`` backbone blocks as an ONNX Runtime session.

    Args:
        model: the network; its frozen blocks must not change while this object is used.
        frozen_blocks: how many blocks (1-19) are frozen.
        input_size: the square input size (the ONNX graph has a dynamic batch axis).
        threads: ORT intra-op threads.
    """

    def __init__(self, model: nn.Module, frozen_blocks: int, input_size: int, threads: int) -> None:
        if not 1 <= frozen_blocks <= NUM_BLOCKS:
            raise KarungTrainingError(f"frozen_blocks must be in [1, 19], got {frozen_blocks}")
        self.frozen_blocks = frozen_blocks
        self.pooled = frozen_blocks == NUM_BLOCKS
        prefix = _Prefix(list(backbone_blocks(model))[:frozen_blocks], self.pooled).eval()
        with tempfile.TemporaryDirectory(prefix="karung-frozen-") as tmp:
            path = Path(tmp) / "prefix.onnx"
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # TorchScript exporter deprecation notice
                torch.onnx.export(
                    prefix,
                    (torch.zeros(2, 3, input_size, input_size),),
                    str(path),
                    dynamo=False,
                    opset_version=17,
                    input_names=["input"],
                    output_names=["features"],
                    dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
                )
            # The session keeps its own copy of the graph; the file can go.
            self._session = ort.InferenceSession(
                str(path),
                sess_options=session_options(threads, spin=False),
                providers=["CPUExecutionProvider"],
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Features after the frozen blocks (pooled ``(N, 1280)`` when all are frozen)."""
        batch = np.ascontiguousarray(x.detach().float().numpy())
        out = self._session.run(None, {"input": batch})[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))
