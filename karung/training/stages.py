"""The two fine-tuning stages and the split forward pass that makes them cheap on a CPU.

Stage 1 trains only the head: the whole backbone runs without autograd (no activations kept,
no backward through it). Stage 2 also trains the upper backbone blocks (``unfreeze_from`` ..
18); the lower blocks still run without autograd and with frozen batch statistics, so only the
trainable part pays for backpropagation. The frozen part runs in ONNX Runtime by default
(:mod:`karung.training.frozen`), several times faster than eager torch on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from karung.training.config import TrainConfig
from karung.vision.model import backbone_blocks, head

if TYPE_CHECKING:
    from karung.training.frozen import FrozenPrefix

NUM_BLOCKS = 19


@dataclass(frozen=True)
class Stage:
    """One phase of fine-tuning."""

    number: int
    epochs: int
    frozen_blocks: int
    lr_head: float
    lr_backbone: float


def plan_stages(cfg: TrainConfig) -> list[Stage]:
    """Stage 1 (head only) then stage 2 (upper blocks + head); empty stages are dropped."""
    stages = [
        Stage(1, cfg.head_epochs, NUM_BLOCKS, cfg.lr_head, 0.0),
        # The head is already trained: give it the backbone's gentler rate plus a margin.
        Stage(2, cfg.epochs - cfg.head_epochs, cfg.unfreeze_from, cfg.lr_head / 3, cfg.lr_backbone),
    ]
    return [s for s in stages if s.epochs > 0]


def freeze_for(model: nn.Module, stage: Stage) -> list[dict[str, Any]]:
    """Set ``requires_grad`` for ``stage`` and return the optimizer's parameter groups."""
    blocks = backbone_blocks(model)
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [p for b in blocks[stage.frozen_blocks :] for p in b.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    head_params = list(head(model).parameters())
    for p in head_params:
        p.requires_grad_(True)
    groups: list[dict[str, Any]] = [{"params": head_params, "lr": stage.lr_head}]
    if trainable:
        groups.append({"params": trainable, "lr": stage.lr_backbone})
    return groups


def set_train_mode(model: nn.Module, frozen_blocks: int) -> None:
    """Train mode for the trainable part; frozen blocks keep their batch-norm statistics."""
    model.train()
    for block in backbone_blocks(model)[:frozen_blocks]:
        block.eval()


def forward(
    model: nn.Module,
    x: torch.Tensor,
    frozen_blocks: int = 0,
    prefix: FrozenPrefix | None = None,
) -> torch.Tensor:
    """MobileNetV2's forward pass with the first ``frozen_blocks`` blocks outside autograd.

    With ``prefix`` (an ONNX Runtime session of exactly those blocks) they run in ORT instead
    of torch. Either way the result equals ``model(x)`` (tested); only the cost differs.
    """
    blocks: Sequence[nn.Module] = backbone_blocks(model)
    h = x
    if prefix is not None:
        if prefix.frozen_blocks != frozen_blocks:
            raise ValueError(f"prefix covers {prefix.frozen_blocks} blocks, not {frozen_blocks}")
        h = prefix(x)
        if prefix.pooled:
            pooled: torch.Tensor = head(model)(h)
            return pooled
    elif frozen_blocks > 0:
        with torch.no_grad():
            for block in blocks[:frozen_blocks]:
                h = block(h)
    for block in blocks[frozen_blocks:]:
        h = block(h)
    h = torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)
    out: torch.Tensor = head(model)(h)
    return out
