"""A tiny random-weight detector: scores that vary by image, no download, ~14 MB in memory."""

from __future__ import annotations

from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import LABELS
from karung.vision.model import build_model
from karung.vision.preprocess import Preprocessing

INPUT_SIZE = 64


def tiny_checkpoint(seed: int = 1, input_size: int = INPUT_SIZE, bn_var: float = 0.1) -> Checkpoint:
    """A random MobileNetV2 whose outputs vary by image; seeds give distinct model versions.

    ``bn_var`` is the running variance every BatchNorm gets: fresh MobileNetV2 activations all but
    vanish, and small variances bring them back so that different images get different scores.
    """
    import torch

    torch.manual_seed(seed)
    model = build_model(len(LABELS), pretrained=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_var.fill_(bn_var)
        head = model.get_submodule("classifier.1")
        head.weight.normal_(0, 0.05)
        head.bias.normal_(0, 1.0)
    return Checkpoint.from_model(model, LABELS, preprocessing=Preprocessing(input_size=input_size))
