"""Preprocessing that travels with a checkpoint (input size, resize mode, mean and std).

Serving never hard-codes 224 or the ImageNet statistics: it reads a :class:`Preprocessing`
from the checkpoint and calls :meth:`Preprocessing.to_array`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
from PIL import Image

IMAGENET_MEAN: Final = (0.485, 0.456, 0.406)
IMAGENET_STD: Final = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How raw RGB images become the network's input tensor.

    ``resize`` is ``"squash"`` (the whole photo is resized to a square, nothing is cropped away,
    which matters when a bale sits at the edge of a listing photo).
    """

    input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "squash"
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.input_size < 16:
            raise ValueError(f"input_size must be >= 16, got {self.input_size}")
        if self.resize != "squash":
            raise ValueError(f"unknown resize mode {self.resize!r}")
        if self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}")

    def resize_image(self, img: Image.Image) -> Image.Image:
        """Resize an RGB image to the network's square input size."""
        size = (self.input_size, self.input_size)
        if img.size == size:
            return img
        return img.resize(size, _INTERPOLATIONS[self.interpolation], reducing_gap=3.0)

    def to_array(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Return a normalised float32 batch of shape ``(N, 3, input_size, input_size)``."""
        if not images:
            raise ValueError("empty batch")
        batch = np.stack([np.asarray(self.resize_image(im.convert("RGB"))) for im in images])
        mean = np.asarray(self.mean, dtype=np.float32) * 255.0
        inv_std = 1.0 / (np.asarray(self.std, dtype=np.float32) * 255.0)
        out = (batch.astype(np.float32) - mean) * inv_std
        return np.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form stored inside checkpoints."""
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        return cls(
            input_size=int(data["input_size"]),
            mean=_triple(data["mean"]),
            std=_triple(data["std"]),
            resize=str(data.get("resize", "squash")),
            interpolation=str(data.get("interpolation", "bilinear")),
        )


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError(f"expected 3 channel values, got {len(values)}")
    return (float(values[0]), float(values[1]), float(values[2]))


_INTERPOLATIONS: Final = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}
