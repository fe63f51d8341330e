"""The typed record of how a checkpoint was trained, stored inside the checkpoint.

In the manner of timm's ``PretrainedCfg`` and torchvision's ``Weights``: the facts a checkpoint
carries about its origin (the data it was trained on and the validation share split off it, the
recipe and its full config, calibration, headline validation metrics, timings) are one frozen
dataclass rather than a dict read with ``.get`` and ad-hoc defaults. The on-disk form stays the
plain dict checkpoints have always held, so every committed checkpoint loads unchanged; the
defaults for what an older checkpoint did not record live in :meth:`TrainingRecord.from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

# What ``karung train`` used before the record stored it (`--val-fraction`'s default).
DEFAULT_VAL_FRACTION: Final = 0.2
# The record's keys that are a mapping on disk (``None`` when absent).
_MAPPINGS: Final = (
    "config",
    "label_counts",
    "precision",
    "features",
    "timings",
    "calibration",
    "val_metrics",
    "proxies",
    "qat",
)


@dataclass(frozen=True)
class TrainingRecord:
    """How a checkpoint was trained (``None``: not recorded by the run that made it).

    ``data`` are the training data sources (folders or manifest CSVs) and ``val_fraction`` the
    share of each split off for validation: export and the int8 search rebuild that validation
    split from them. ``config`` is the training config as ``TrainConfig.to_dict`` wrote it;
    ``qat`` the settings of a quantisation-aware fine-tuning that produced this checkpoint.
    Keys a later version adds are kept in ``extra`` and written back unchanged.
    """

    data: tuple[str, ...] = ()
    val_fraction: float = DEFAULT_VAL_FRACTION
    recipe: str | None = None
    run_dir: str | None = None
    config: Mapping[str, Any] | None = None
    label_counts: Mapping[str, Any] | None = None
    precision: Mapping[str, Any] | None = None
    features: Mapping[str, Any] | None = None
    timings: Mapping[str, Any] | None = None
    calibration: Mapping[str, Any] | None = None
    val_metrics: Mapping[str, Any] | None = None
    proxies: Mapping[str, Any] | None = None
    qat: Mapping[str, Any] | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    wall_seconds: float | None = None
    torch: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> TrainingRecord:
        """Parse the on-disk dict (any checkpoint's, old ones included) with the defaults."""
        raw = dict(raw or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {k: raw.pop(k) for k in list(raw) if k in known}
        values["data"] = tuple(str(d) for d in values.get("data") or ())
        values["val_fraction"] = float(values.get("val_fraction", DEFAULT_VAL_FRACTION))
        for key in _MAPPINGS:
            if values.get(key) is not None:
                values[key] = dict(values[key])
        return cls(**values, extra=raw)

    def to_dict(self) -> dict[str, Any]:
        """The plain-data form written into the checkpoint (unrecorded facts left out)."""
        body: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is None:
                continue
            body[f.name] = list(value) if f.name == "data" else value
        return {**body, **self.extra}

    def with_updates(self, **changes: Any) -> TrainingRecord:
        """A copy with some facts replaced."""
        return replace(self, **changes)

    @property
    def seed(self) -> int | None:
        """The training seed, when the config was recorded."""
        seed = (self.config or {}).get("seed")
        return None if seed is None else int(seed)

    @property
    def is_frozen_recipe(self) -> bool:
        """Whether the frozen-backbone recipe (cached features, linear head) made it."""
        return (self.recipe or "").startswith("frozen")

    @property
    def seconds(self) -> float | None:
        """Wall-clock training time (the frozen recipe's total, else the fine-tuning's)."""
        return self.wall_seconds if self.wall_seconds is not None else self.train_seconds
