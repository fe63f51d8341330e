"""Pooled features of the *champion's own* backbone, cached per image content.

A retrain only refits the classifier layer, so challenger and champion share every backbone
weight; features computed once with that backbone serve both. The cache key names the backbone
by a digest of its weights, so models with other backbones (tests' tiny random ones, a future
fine-tuned one) never read each other's vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from karung.training.features import FeatureCache, Features, backbone_key, extract
from karung.vision.checkpoint import Checkpoint
from karung.vision.model import HEAD_LINEAR, head_params


def backbone_digest(ckpt: Checkpoint) -> str:
    """SHA-256 of every weight outside the classifier layer (equal backbones, equal digests)."""
    digest = hashlib.sha256()
    for name in sorted(ckpt.state_dict):
        if name.startswith(HEAD_LINEAR):
            continue
        digest.update(name.encode())
        digest.update(ckpt.state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def champion_head(ckpt: Checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """The classifier layer's ``(weight, bias)`` as float64 arrays."""
    weight, bias = (
        p.detach().cpu().numpy().astype(np.float64) for p in head_params(ckpt.state_dict)
    )
    return weight, bias


def _encoder_factory(ckpt: Checkpoint, threads: int) -> Callable[[], Callable[..., np.ndarray]]:
    def make() -> Callable[[np.ndarray], np.ndarray]:
        import torch

        from karung.training.frozen import NUM_BLOCKS, FrozenPrefix

        prefix = FrozenPrefix(
            ckpt.build_model(), NUM_BLOCKS, ckpt.preprocessing.input_size, threads
        )

        def encode(batch: np.ndarray) -> np.ndarray:
            return np.asarray(prefix(torch.from_numpy(batch)).numpy(), dtype=np.float32)

        return encode

    return make


def model_features(
    paths: Sequence[str], ckpt: Checkpoint, cache_root: Path, *, threads: int, progress: bool
) -> Features:
    """Features of ``paths`` under ``ckpt``'s backbone and preprocessing (cached)."""
    key = f"{backbone_key(ckpt.preprocessing)}-bb{backbone_digest(ckpt)[:12]}"
    cache = FeatureCache(cache_root, key)
    return extract(
        paths,
        cache,
        ckpt.preprocessing,
        threads=threads,
        progress=progress,
        encoder=_encoder_factory(ckpt, threads),
    )
