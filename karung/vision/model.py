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
