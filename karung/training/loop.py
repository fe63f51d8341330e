"""One training epoch and one scoring pass, with optional bf16 autocast on the CPU."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from karung.training.frozen import FrozenPrefix
from karung.training.loader import UNREADABLE
from karung.training.stages import forward, set_train_mode

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class EpochStats:
    """What one training epoch did."""

    loss: float
    accuracy: float
    images: int
    unreadable: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Training throughput including decoding stalls."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LambdaLR factor: linear warm-up, then cosine decay to 1% of the base rate."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(total_steps - warmup_steps, 1)
        progress = min((step - warmup_steps) / span, 1.0)
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    *,
    frozen_blocks: int,
    label_smoothing: float,
    bf16: bool,
    prefix: FrozenPrefix | None = None,
    progress: tqdm | None = None,
) -> EpochStats:
    """Run one pass over ``batches``; unreadable images (label -1) are ignored by the loss."""
    set_train_mode(model, frozen_blocks)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing, ignore_index=UNREADABLE)
    total_loss, correct, seen, bad = 0.0, 0, 0, 0
    start = time.perf_counter()
    for x, y, _ in batches:
        valid = y != UNREADABLE
        n = int(valid.sum())
        bad += len(y) - n
        if n == 0:
            continue
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward(model, x, frozen_blocks, prefix)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += float(loss.detach()) * n
        correct += int((logits.argmax(1)[valid] == y[valid]).sum())
        seen += n
        if progress is not None:
            progress.update(len(y))
            progress.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}")
    return EpochStats(
        loss=total_loss / max(seen, 1),
        accuracy=correct / max(seen, 1),
        images=seen,
        unreadable=bad,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class Scored:
    """Logits of a scoring pass, aligned with dataset indices; unreadable items left out."""

    logits: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    unreadable: np.ndarray


def score_batches(
    model: nn.Module,
    batches: Iterable[Batch],
    *,
    bf16: bool = False,
    frozen_blocks: int = 0,
    prefix: FrozenPrefix | None = None,
    progress: tqdm | None = None,
) -> Scored:
    """Eval-mode logits for every readable item of ``batches`` (frozen part via ``prefix``)."""
    model.eval()
    logits, labels, indices, bad = [], [], [], []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for x, y, idx in batches:
            valid = y != UNREADABLE
            bad.append(idx[~valid].numpy())
            if bool(valid.any()):
                out = forward(model, x[valid], frozen_blocks, prefix)
                logits.append(out.float().numpy())
                labels.append(y[valid].numpy())
                indices.append(idx[valid].numpy())
            if progress is not None:
                progress.update(len(y))
    if not logits:
        empty = np.zeros(0, dtype=np.int64)
        return Scored(np.zeros((0, 0), np.float32), empty, empty, np.concatenate(bad or [empty]))
    return Scored(
        logits=np.concatenate(logits).astype(np.float32),
        labels=np.concatenate(labels).astype(np.int64),
        indices=np.concatenate(indices).astype(np.int64),
        unreadable=np.concatenate(bad).astype(np.int64),
    )
