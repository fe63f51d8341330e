"""The checkpoint format: weights plus everything needed to use them.

A checkpoint is a plain ``dict`` saved with :func:`torch.save` and loaded with
``torch.load(weights_only=True)`` (no pickled code). It carries the architecture name, labels,
preprocessing, calibration temperature, decision thresholds, training metadata and a model
version, so serving needs nothing but the file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import torch
from torch import nn

from karung.vision.errors import CheckpointError
from karung.vision.labels import Thresholds
from karung.vision.model import ARCH, build_model
from karung.vision.modeldir import ModelDir
from karung.vision.preprocess import Preprocessing
from karung.vision.probs import RiskHead
from karung.vision.training_record import TrainingRecord

FORMAT: Final = "karung-checkpoint"
FORMAT_VERSION: Final = 1


@dataclass(frozen=True)
class Checkpoint:
    """A trained detector and its metadata."""

    labels: tuple[str, ...]
    state_dict: dict[str, torch.Tensor]
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    arch: str = ARCH
    temperature: float = 1.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    thresholds_calibrated: bool = False
    training: TrainingRecord = field(default_factory=TrainingRecord)
    model_version: str = ""

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels) or len(self.labels) < 2:
            raise CheckpointError(f"labels must be >= 2 distinct names, got {self.labels}")
        if self.arch != ARCH:
            raise CheckpointError(f"unsupported architecture {self.arch!r}")
        if not self.temperature > 0:
            raise CheckpointError(f"temperature must be > 0, got {self.temperature}")
        if not isinstance(self.training, TrainingRecord):  # a dict here fails only at save time
            raise CheckpointError(f"training must be a TrainingRecord, got {type(self.training)}")
        if not self.model_version:
            object.__setattr__(self, "model_version", default_version(self.state_dict))

    @classmethod
    def from_model(cls, model: nn.Module, labels: tuple[str, ...], **kwargs: Any) -> Checkpoint:
        """Snapshot ``model``'s weights (copied to CPU) into a new checkpoint."""
        state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
        return cls(labels=tuple(labels), state_dict=state, **kwargs)

    def with_updates(self, **changes: Any) -> Checkpoint:
        """A copy with some fields replaced (the version is kept unless given)."""
        return replace(self, **changes)

    def build_model(self) -> nn.Module:
        """Instantiate the network with these weights, in eval mode."""
        model = build_model(len(self.labels), pretrained=False)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not fit {self.arch}: {exc}") from exc
        return model.eval()

    @property
    def risk_head(self) -> RiskHead:
        """Logits -> calibrated probabilities -> risk, for this model's labels and temperature."""
        return RiskHead(self.labels, self.temperature)

    @property
    def risk_indices(self) -> tuple[int, ...]:
        """Indices of the labels whose probabilities add up to ``risk``."""
        return self.risk_head.risk_indices

    def to_dict(self) -> dict[str, Any]:
        """The plain-data form written to disk."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": self.arch,
            "labels": list(self.labels),
            "preprocessing": self.preprocessing.to_dict(),
            "calibration": {"temperature": float(self.temperature)},
            "thresholds": {**self.thresholds.to_dict(), "calibrated": self.thresholds_calibrated},
            "training": self.training.to_dict(),
            "model_version": self.model_version,
            "state_dict": self.state_dict,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file + rename) so a reader never sees half a checkpoint."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        torch.save(self.to_dict(), tmp)
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """Load a checkpoint file (or a model directory holding ``model.pt``)."""
        file = ModelDir.find(path).checkpoint
        try:
            raw = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for bad files
            raise CheckpointError(f"cannot read checkpoint {file}: {exc}") from exc
        return cls.from_dict(raw, source=str(file))

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "<dict>") -> Checkpoint:
        """Validate and convert the on-disk dict."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise CheckpointError(f"{source} is not a karung checkpoint")
        if int(raw.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"{source} has a newer format {raw['format_version']}")
        try:
            thresholds = raw["thresholds"]
            return cls(
                arch=str(raw["arch"]),
                labels=tuple(str(x) for x in raw["labels"]),
                preprocessing=Preprocessing.from_dict(raw["preprocessing"]),
                temperature=float(raw["calibration"]["temperature"]),
                thresholds=Thresholds.from_dict(thresholds),
                thresholds_calibrated=bool(thresholds.get("calibrated", False)),
                training=TrainingRecord.from_dict(raw.get("training")),
                model_version=str(raw["model_version"]),
                state_dict=dict(raw["state_dict"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source} is malformed: {exc}") from exc


def default_version(state_dict: dict[str, torch.Tensor]) -> str:
    """A content-derived version: identical weights give the identical version string."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return f"{ARCH}-{digest.hexdigest()[:12]}"
