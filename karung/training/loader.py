"""Torch datasets and loaders over :class:`~karung.training.data.Sample` lists.

Files are decoded with :func:`karung.vision.decode.decode_image` (the same safe path as
serving) inside DataLoader workers. A file that fails to decode does not stop training or
evaluation: it comes back with label ``-1`` (ignored by the loss, dropped by evaluation) and
is counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler, WeightedRandomSampler

from karung.training.data import Sample
from karung.vision.decode import decode_image
from karung.vision.errors import ImageDecodeError

MAX_BYTES: Final = 20 * 1024 * 1024
MAX_PIXELS: Final = 50_000_000
UNREADABLE: Final = -1


class ImageDataset(Dataset[tuple[torch.Tensor, int, int]]):
    """``(image tensor, label, index)``; ``label`` is :data:`UNREADABLE` for a bad file."""

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[Image.Image], torch.Tensor],
        input_size: int,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.input_size = input_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        sample = self.samples[index]
        try:
            data = Path(sample.path).read_bytes()
            # Decoding near the input size lets JPEG draft mode skip most of the work.
            img = decode_image(
                data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, target_size=self.input_size
            )
        except (ImageDecodeError, OSError):
            blank = torch.zeros(3, self.input_size, self.input_size, dtype=torch.float32)
            return blank, UNREADABLE, index
        return self.transform(img), sample.label, index


def balanced_sampler(
    labels: Sequence[int], num_samples: int, generator: torch.Generator
) -> WeightedRandomSampler:
    """Draw every label equally often in expectation (with replacement)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    weights = np.array([1.0 / counts[y] for y in labels], dtype=np.float64)
    return WeightedRandomSampler(
        weights.tolist(), num_samples=num_samples, replacement=True, generator=generator
    )


def _worker_init(worker_id: int) -> None:
    # Each worker is one decode lane: intra-op threads inside workers only fight the trainer.
    torch.set_num_threads(1)
    np.random.seed((torch.initial_seed() + worker_id) % 2**32)


def make_loader(
    dataset: ImageDataset,
    *,
    batch_size: int,
    workers: int,
    sampler: Sampler[int] | None = None,
    seed: int = 0,
) -> DataLoader[tuple[torch.Tensor, int, int]]:
    """A loader with persistent decode workers (``workers=0`` decodes in-process)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_worker_init if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        drop_last=False,
    )
