"""The detector network: torchvision MobileNetV2 with a new head for karung's labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import torch
from torch import nn
from torchvision.models import mobilenet_v2

from karung.vision.pretrained import imagenet_weights_path

ARCH: Final = "mobilenet_v2"
FEATURE_DIM: Final = 1280
# The linear layer the labels come out of: the frozen recipe's and the retrain's head is exactly
# this layer, so training writes it and reads it back by this one name.
HEAD_LINEAR: Final = "classifier.1"


def build_model(num_labels: int, *, pretrained: bool = True, dropout: float = 0.2) -> nn.Module:
    """Build MobileNetV2 with a ``num_labels``-way head.

    With ``pretrained=True`` the backbone starts from torchvision's ImageNet weights, read from
    the installed weights package (sha256-checked, never downloaded); the new head is freshly
    initialised. With ``pretrained=False`` everything is random (for loading a checkpoint).
    """
    if num_labels < 2:
        raise ValueError(f"need at least 2 labels, got {num_labels}")
    model = mobilenet_v2(weights=None)
    if pretrained:
        state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    model.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(FEATURE_DIM, num_labels))
    nn.init.normal_(model.classifier[1].weight, 0.0, 0.01)
    nn.init.zeros_(model.classifier[1].bias)
    return model


def backbone_blocks(model: nn.Module) -> Sequence[nn.Module]:
    """The feature blocks of MobileNetV2, input side first (19 of them)."""
    features = model.get_submodule("features")
    return list(features.children())


def head(model: nn.Module) -> nn.Module:
    """The classification head (dropout + linear)."""
    return model.get_submodule("classifier")


def head_params(state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``(weight, bias)`` of the head's linear layer in a state dict."""
    return state[f"{HEAD_LINEAR}.weight"], state[f"{HEAD_LINEAR}.bias"]


def with_head_params(
    state: dict[str, torch.Tensor], weight: torch.Tensor, bias: torch.Tensor
) -> dict[str, torch.Tensor]:
    """A copy of ``state`` whose head linear layer is ``weight``, ``bias``."""
    return {**state, f"{HEAD_LINEAR}.weight": weight, f"{HEAD_LINEAR}.bias": bias}
