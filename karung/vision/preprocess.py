"""Preprocessing that travels with a checkpoint (input size, resize mode, mean and std).

Serving never hard-codes 224 or the ImageNet statistics: it reads a :class:`Preprocessing`
from the checkpoint and calls :meth:`Preprocessing.to_array`.
"""

from __future__ import annotations

import functools
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
        return self.normalize(self.to_pixels(images))

    def to_pixels(self, images: Sequence[Image.Image]) -> np.ndarray:
        """The resized images as a uint8 batch ``(N, input_size, input_size, 3)``.

        A quarter of the bytes of :meth:`to_array`'s floats, so this is what crosses from the
        service's image workers to the model; :meth:`normalize` finishes the job per batch.
        """
        if not images:
            raise ValueError("empty batch")
        rgb = [im if im.mode == "RGB" else im.convert("RGB") for im in images]  # no copies
        return np.stack([np.asarray(self.resize_image(im)) for im in rgb])

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 -> normalised float32 ``(N, 3, S, S)``.

        Every uint8 value of a channel maps to one float, so a 256-entry table per channel
        (built with the same float32 arithmetic) gives bit-identical results at a quarter of
        the cost of converting and scaling each pixel.
        """
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[3] != 3:
            raise ValueError(
                f"expected (N, H, W, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}"
            )
        table = _channel_tables(self.mean, self.std)
        planar = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
        out = np.empty(planar.shape, dtype=np.float32)
        for channel in range(3):
            np.take(table[channel], planar[:, channel], out=out[:, channel])
        return out

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


@functools.lru_cache(maxsize=8)
def _channel_tables(
    mean: tuple[float, float, float], std: tuple[float, float, float]
) -> np.ndarray:
    """``(3, 256)`` float32: ``(v - mean*255) / (std*255)`` for every byte value ``v``."""
    scaled_mean = np.asarray(mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(std, dtype=np.float32) * 255.0)
    values = np.arange(256, dtype=np.float32)
    return (values[None, :] - scaled_mean[:, None]) * inv_std[:, None]


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) != 3:
        raise ValueError(f"expected 3 channel values, got {len(values)}")
    return (float(values[0]), float(values[1]), float(values[2]))


_INTERPOLATIONS: Final = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}
