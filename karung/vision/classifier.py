"""Score decoded images with a checkpoint: per-label probabilities, risk and a decision."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from karung.vision.backend_names import BACKENDS
from karung.vision.backends import InferenceBackend, TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import Decision, Thresholds
from karung.vision.modeldir import ONNX_FILES, ModelDir
from karung.vision.preprocess import Preprocessing
from karung.vision.probs import softmax as softmax  # re-exported: older imports


@dataclass(frozen=True)
class ImageScore:
    """The detector's verdict on one image."""

    scores: dict[str, float]
    risk: float
    label: str
    decision: Decision


class Classifier:
    """A checkpoint bound to an inference backend.

    Args:
        checkpoint: the model and its metadata.
        backend: defaults to eager torch; pass an ONNX backend for speed.
        batch_size: images per forward pass (bounds memory on large inputs).
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        backend: InferenceBackend | None = None,
        batch_size: int = 64,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.checkpoint = checkpoint
        self.backend = backend if backend is not None else TorchBackend(checkpoint.build_model())
        self.batch_size = batch_size
        self.risk_head = checkpoint.risk_head

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str] | ModelDir,
        backend: str = "torch",
        threads: int | None = None,
    ) -> Classifier:
        """Load ``path`` (file or model dir) on backend ``torch``, ``auto``, ``onnx``,
        ``onnx-int8`` or ``onnx-fp32``.

        ``onnx`` uses the first parity-checked ONNX export next to the checkpoint (int8 with
        its fp32 fallback, else fp32); ``auto`` times each of them once and keeps the fastest
        on this CPU, and falls back to torch when there is none. ``threads`` caps intra-op
        threads.
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} ({', '.join(BACKENDS)})")
        model_dir = path if isinstance(path, ModelDir) else ModelDir.find(path)
        checkpoint = Checkpoint.load(model_dir.checkpoint)
        found = model_dir.onnx_files()
        if backend == "torch" or (backend == "auto" and not found):
            return cls(checkpoint)
        pinned = {"onnx-int8": ONNX_FILES[0], "onnx-fp32": ONNX_FILES[1]}.get(backend)
        if pinned:
            candidates = [model_dir.file(pinned)]
        else:  # "onnx": the preferred file; "auto": every file, timed
            candidates = found[:1] if backend == "onnx" else found
        return cls(checkpoint, _onnx_backend(candidates, checkpoint, threads))

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names, in output order."""
        return self.checkpoint.labels

    @property
    def preprocessing(self) -> Preprocessing:
        """The preprocessing this model was trained with."""
        return self.checkpoint.preprocessing

    @property
    def thresholds(self) -> Thresholds:
        """Decision thresholds stored with the model."""
        return self.checkpoint.thresholds

    @property
    def model_version(self) -> str:
        """The checkpoint's version string."""
        return self.checkpoint.model_version

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Calibrated probabilities, shape ``(len(images), len(labels))``; rows sum to 1."""
        if not images:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        chunks = []
        for start in range(0, len(images), self.batch_size):
            batch = self.preprocessing.to_array(images[start : start + self.batch_size])
            chunks.append(self.backend.logits(batch))
        return self.risk_head.probs(np.concatenate(chunks))

    def risk(self, probs: np.ndarray) -> np.ndarray:
        """``P(bale) + P(sack)`` per row of a probability matrix."""
        return self.risk_head.risk(probs)

    def score(
        self, images: Sequence[Image.Image], thresholds: Thresholds | None = None
    ) -> list[ImageScore]:
        """Score images; ``thresholds`` overrides the model's own (per-client policies)."""
        probs = self.predict_proba(images)
        cut = thresholds or self.thresholds
        return [self._to_score(row, cut) for row in probs]

    def _to_score(self, row: np.ndarray, cut: Thresholds) -> ImageScore:
        risk = float(self.risk_head.risk(row[None, :])[0])
        scores = {name: float(p) for name, p in zip(self.labels, row, strict=True)}
        return ImageScore(
            scores=scores,
            risk=risk,
            label=self.labels[int(row.argmax())],
            decision=cut.decide(risk),
        )


def _onnx_backend(
    paths: list[Path], checkpoint: Checkpoint, threads: int | None
) -> InferenceBackend:
    # Missing files raise CheckpointError in OnnxBackend ("run `karung export` first").
    from karung.vision.onnx_backend import load_fastest

    size = checkpoint.preprocessing.input_size
    return load_fastest(paths, checkpoint.risk_head, size, threads=threads)
