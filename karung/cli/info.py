"""``karung info``: versions, the model path and its labels."""

from __future__ import annotations

import argparse
import json
import platform
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from karung.vision.checkpoint import Checkpoint


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``karung info``."""
    parser.add_argument("--model", help="checkpoint file or model dir (default: shipped model)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """Print environment and model facts; exit 1 if the model cannot be loaded."""
    import PIL
    import torch
    import torchvision

    from karung import __version__
    from karung.vision.checkpoint import Checkpoint
    from karung.vision.errors import KarungVisionError
    from karung.vision.modeldir import ModelDir, default_model_dir
    from karung.vision.pretrained import imagenet_weights_path

    facts: dict[str, object] = {
        "karung": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
    }
    status = 0
    try:
        facts["imagenet_weights"] = str(imagenet_weights_path())
    except KarungVisionError as exc:
        facts["imagenet_weights"], status = f"MISSING: {exc}", 1
    model = args.model or default_model_dir()
    try:
        path = ModelDir.find(model).checkpoint
        ckpt = Checkpoint.load(path)
        facts.update(_model_facts(str(path), ckpt))
    except KarungVisionError as exc:
        facts["model"], status = f"MISSING: {exc}", 1
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        for key, value in facts.items():
            print(f"{key:<18} {value}")
    return status


def _model_facts(path: str, ckpt: Checkpoint) -> dict[str, object]:
    return {
        "model": path,
        "model_version": ckpt.model_version,
        "labels": ", ".join(ckpt.labels),
        "input_size": ckpt.preprocessing.input_size,
        "thresholds": ckpt.thresholds.to_dict(),
        "thresholds_calibrated": ckpt.thresholds_calibrated,
        "temperature": ckpt.temperature,
    }
