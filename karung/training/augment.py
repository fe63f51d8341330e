"""Image transforms: strong ``torchvision.transforms.v2`` augmentation for training, and an
evaluation transform that is byte-for-byte the serving preprocessing.

The augmentation aims at generalising from synthetic photos to real listings: scale and aspect
changes, perspective, colour and white-balance shifts, blur, sensor noise and JPEG
re-compression, so no class can be told apart by rendering artefacts alone.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from karung.training.config import AugmentConfig
from karung.vision.preprocess import Preprocessing


class GaussianNoise(torch.nn.Module):
    """Additive sensor-like noise on a float image in ``[0, 1]`` with a random strength."""

    def __init__(self, max_sigma: float = 0.04, p: float = 0.3) -> None:
        super().__init__()
        self.max_sigma = max_sigma
        self.p = p

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """Return ``img`` plus noise (with probability ``p``), clamped to ``[0, 1]``."""
        if torch.rand(()) >= self.p:
            return img
        sigma = float(torch.rand(())) * self.max_sigma
        # numpy's ziggurat sampler is several times faster than torch.randn on one thread; its
        # seed comes from torch's RNG, so worker seeding and --seed still govern it.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        noise = rng.standard_normal(img.shape, dtype=np.float32)
        return (img + torch.from_numpy(noise) * sigma).clamp_(0.0, 1.0)


def train_transform(prep: Preprocessing, cfg: AugmentConfig) -> v2.Compose:
    """PIL RGB image -> normalised float tensor ``(3, S, S)`` with random augmentation.

    The geometric and colour steps run on the PIL image after the crop (Pillow's C kernels
    on an ``S x S`` image are several times faster than the tensor kernels on the full photo);
    noise, normalisation and erasing run on the small float tensor.
    """
    size = prep.input_size
    return v2.Compose(
        [
            # Serving squashes the whole photo, and a bale may fill only a tenth of it at the
            # edge: half of the time the photo is squashed whole, otherwise mildly cropped.
            v2.RandomChoice(
                [
                    v2.Resize((size, size), antialias=True),
                    v2.RandomResizedCrop(
                        size, scale=(cfg.min_scale, 1.0), ratio=(0.75, 1.33), antialias=True
                    ),
                ]
            ),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.RandomRotation(12)], p=0.3),
            v2.RandomPerspective(distortion_scale=cfg.perspective, p=0.3),
            v2.ColorJitter(cfg.jitter, cfg.jitter, cfg.jitter),
            # Hue shifts need an HSV round trip (the costliest step): only on a fifth.
            v2.RandomApply([v2.ColorJitter(hue=0.04)], p=0.2),
            v2.RandomGrayscale(cfg.grayscale_p),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.8))], p=cfg.blur_p),
            v2.RandomApply([v2.JPEG(quality=(25, 90))], p=cfg.jpeg_p),
            v2.ToImage(),
            v2.ToDtype(torch.float32, scale=True),
            GaussianNoise(),
            v2.Normalize(mean=list(prep.mean), std=list(prep.std)),
            v2.RandomErasing(p=cfg.erase_p, scale=(0.02, 0.15), value=0),
        ]
    )


class EvalTransform:
    """Exactly :meth:`Preprocessing.to_array` for one image (picklable for DataLoader workers)."""

    def __init__(self, prep: Preprocessing) -> None:
        self.prep = prep

    def __call__(self, img: Image.Image) -> torch.Tensor:
        """PIL RGB image -> normalised float tensor ``(3, S, S)`` as served."""
        arr: np.ndarray = self.prep.to_array([img])[0]
        return torch.from_numpy(arr)
