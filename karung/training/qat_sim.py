"""Simulate ONNX Runtime's static int8 arithmetic inside a torch MobileNetV2.

Quantisation-aware fine-tuning (``qat``) needs a forward pass that rounds where the exported
int8 graph rounds. ORT's QDQ quantiser, run as ``karung export --int8`` runs it, rounds

* the network input, every Conv's output after its ReLU6 (the Clip folds into the range),
  every projection Conv's output and every residual Add's output to uint8 with an asymmetric
  per-tensor range calibrated by min/max;
* every Conv weight to int8, symmetric per output channel, 7-bit on CPUs without VNNI
  (``reduce_range``);
* and nothing in the head: pooling and the classifier stay fp32 (``QuantOptions.fp32_head``).

:class:`Int8Simulation` hooks exactly those tensors (weights through a parametrisation, so
gradients reach the raw fp32 weights straight through the rounding) and can be switched off,
so one set of weights runs both as the fp32 reference and as its int8 twin.

BatchNorm is folded first (:func:`fold_batchnorm`), as the ONNX export folds it: the
simulation then rounds the same weights ORT will see, and the model stays a plain torchvision
MobileNetV2 that every :class:`~karung.vision.checkpoint.Checkpoint` can load.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torchvision.models.mobilenetv2 import InvertedResidual, MobileNetV2
from torchvision.ops.misc import Conv2dNormActivation

from karung.training.errors import QatError

UINT8_MAX = 255


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm into the Conv before it, in place; returns how many were folded.

    The BatchNorm stays, reduced to adding the folded bias (unit scale, zero mean, variance
    ``1 - eps``), so the architecture and its state-dict keys do not change. Its scale is
    frozen; the bias stays trainable (it is the conv's bias).
    """
    folded = 0
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.children())
        for conv, bn in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                _fold_pair(conv, bn)
                folded += 1
    return folded


@torch.no_grad()
def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise QatError("cannot fold a BatchNorm without running statistics")
    gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.affine else torch.zeros_like(bn.running_var)
    scale = gamma / torch.sqrt(bn.running_var + bn.eps)
    bias = beta - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
        conv.bias.zero_()
    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)
    if bn.affine:
        bn.weight.fill_(1.0)
        bn.weight.requires_grad_(False)
        bn.bias.copy_(bias)


class Mode(Enum):
    """What an activation quantiser does on the forward pass."""

    OFF = "off"
    OBSERVE = "observe"
    QUANTIZE = "quantize"


@dataclass
class _Switch:
    """State shared by every hook of one simulation: activation mode, weight rounding."""

    mode: Mode = Mode.OFF
    weights: bool = False


class ActivationQuant:
    """uint8 asymmetric per-tensor rounding with a min/max range, as ORT calibrates it."""

    def __init__(self, switch: _Switch, name: str) -> None:
        self.switch = switch
        self.name = name
        self.low = 0.0
        self.high = 0.0
        self.seen = False

    def reset(self) -> None:
        """Forget the observed range."""
        self.low, self.high, self.seen = 0.0, 0.0, False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mode = self.switch.mode
        if mode is Mode.OBSERVE:
            # ORT widens every range to include zero, so zero is exactly representable.
            self.low = min(self.low, float(x.detach().min()))
            self.high = max(self.high, float(x.detach().max()))
            self.seen = True
            return x
        if mode is Mode.QUANTIZE:
            if not self.seen:
                raise QatError(f"activation {self.name} was never calibrated")
            scale = max((self.high - self.low) / UINT8_MAX, 1e-12)
            zero_point = round(-self.low / scale)
            return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, UINT8_MAX)
        return x


class WeightQuant(nn.Module):
    """Symmetric per-output-channel int8 rounding of a weight (a parametrisation)."""

    def __init__(self, switch: _Switch, qmin: int, qmax: int) -> None:
        super().__init__()
        self.switch = switch
        self.qmin, self.qmax = qmin, qmax

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.switch.weights:
            return w
        absmax = w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-12)
        scale = (2.0 * absmax / (self.qmax - self.qmin)).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(w, scale, zero, 0, self.qmin, self.qmax)


def weight_range(reduce_range: bool) -> tuple[int, int]:
    """ORT's symmetric int8 weight range: 7-bit with ``reduce_range``."""
    return (-64, 64) if reduce_range else (-127, 127)


class Int8Simulation:
    """ORT's int8 rounding hooked into a BN-folded torchvision MobileNetV2.

    Use :meth:`calibrate` (observe ranges), then ``with sim.quantized():`` to run the int8
    twin; outside that block the model computes in plain fp32 (with rounded weights after
    :meth:`round_weights`). :meth:`remove` detaches everything, keeping the raw or, with
    ``snap``, the rounded weights.
    """

    def __init__(self, model: nn.Module, reduce_range: bool) -> None:
        if not isinstance(model, MobileNetV2):
            raise QatError(f"int8 simulation supports MobileNetV2, got {type(model).__name__}")
        self.model = model
        self.switch = _Switch()
        self.activations: list[ActivationQuant] = []
        self._handles: list[Any] = []
        self._convs: list[nn.Conv2d] = []
        self._hook_activations(model)
        qmin, qmax = weight_range(reduce_range)
        for module in model.features.modules():
            if isinstance(module, nn.Conv2d):
                parametrize.register_parametrization(
                    module, "weight", WeightQuant(self.switch, qmin, qmax)
                )
                self._convs.append(module)

    def _quantizer(self, name: str) -> ActivationQuant:
        quant = ActivationQuant(self.switch, name)
        self.activations.append(quant)
        return quant

    def _hook_output(self, module: nn.Module, name: str) -> None:
        quant = self._quantizer(name)
        self._handles.append(module.register_forward_hook(lambda _m, _i, out: quant(out)))

    def _hook_activations(self, model: MobileNetV2) -> None:
        stem = model.features[0][0]
        quant_in = self._quantizer("input")
        self._handles.append(stem.register_forward_pre_hook(lambda _m, args: (quant_in(args[0]),)))
        for name, module in model.features.named_modules():
            if isinstance(module, Conv2dNormActivation):
                self._hook_output(module, f"{name}.out")
            elif isinstance(module, InvertedResidual):
                # conv[-1] is the projection's (folded) BatchNorm: the linear bottleneck output.
                self._hook_output(module.conv[-1], f"{name}.project")
                if module.use_res_connect:
                    self._hook_output(module, f"{name}.add")

    @torch.no_grad()
    def calibrate(self, batches: Iterator[torch.Tensor] | list[torch.Tensor]) -> int:
        """Set every activation range to the min/max over ``batches``; returns images seen."""
        for quant in self.activations:
            quant.reset()
        self.switch.mode = Mode.OBSERVE
        seen = 0
        try:
            for x in batches:
                self.model(x)
                seen += int(x.shape[0])
        finally:
            self.switch.mode = Mode.OFF
        if not seen:
            raise QatError("no calibration images for the int8 simulation")
        return seen

    @contextmanager
    def quantized(self) -> Iterator[None]:
        """Forward passes inside this block run the simulated int8 model."""
        weights_before = self.switch.weights
        self.switch.mode, self.switch.weights = Mode.QUANTIZE, True
        try:
            yield
        finally:
            self.switch.mode, self.switch.weights = Mode.OFF, weights_before

    def round_weights(self, on: bool = True) -> None:
        """Round the conv weights on every forward pass, inside :meth:`quantized` or not."""
        self.switch.weights = on

    def remove(self, snap: bool = False) -> nn.Module:
        """Detach the hooks and parametrisations.

        With ``snap`` the model keeps its *rounded* weights: they lie on ORT's int8 grid, so
        quantising them again at export is exact. Otherwise the raw fp32 weights stay.
        """
        for handle in self._handles:
            handle.remove()
        self.switch.weights = snap
        for conv in self._convs:
            parametrize.remove_parametrizations(conv, "weight", leave_parametrized=snap)
        self._handles, self._convs = [], []
        self.switch.weights = False
        return self.model
