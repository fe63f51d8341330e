"""The command lines a model card prints to reproduce a model (``karung train``, ``karung qat``,
``karung export``), rebuilt from the configs the run recorded."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from karung.training.config import TrainConfig

# Spelled out even when equal to today's default, so the command survives a change of defaults.
RECIPE_FLAGS: Final = {
    "epochs": "--epochs", "head_epochs": "--head-epochs", "unfreeze_from": "--unfreeze-from",
    "input_size": "--input-size", "batch_size": "--batch-size", "epoch_images": "--epoch-images",
    "seed": "--seed",
}  # fmt: skip


def shown(path: str) -> str:
    """``path`` relative to the working directory when inside it (the repository root)."""
    p = Path(path)
    try:
        return str(p.relative_to(Path.cwd())) if p.is_absolute() else path
    except ValueError:
        return path


def train_command(cfg: TrainConfig) -> str:
    """The ``karung train`` command line that reproduces ``cfg``.

    The recipe options are always written out; the others only when they differ from the
    defaults.
    """
    default = TrainConfig(data=cfg.data, out=cfg.out)
    parts = ["karung", "train"]
    for d in cfg.data:
        parts += ["--data", shown(d)]
    parts += ["--out", shown(cfg.out), "--recipe", cfg.recipe]
    if cfg.recipe == "frozen":
        neg = cfg.negatives
        parts += ["--input-size", str(cfg.input_size), "--head-l2", str(cfg.head_l2)]
        parts += ["--block-rate", str(neg.block_rate), "--review-rate", str(neg.review_rate)]
        if cfg.val_fraction != default.val_fraction:
            parts += ["--val-fraction", str(cfg.val_fraction)]
        return shlex.join(parts)
    for field_name, flag in RECIPE_FLAGS.items():
        parts += [flag, str(getattr(cfg, field_name))]
    flags = {
        "val_images": "--val-images", "lr_head": "--lr-head",
        "lr_backbone": "--lr-backbone", "weight_decay": "--weight-decay",
        "label_smoothing": "--label-smoothing", "patience": "--patience",
        "precision": "--precision", "val_fraction": "--val-fraction", "seed": "--seed",
        "max_minutes": "--max-minutes", "frozen_engine": "--frozen-engine",
    }  # fmt: skip
    for field_name, flag in flags.items():
        value = getattr(cfg, field_name)
        if value != getattr(default, field_name):
            parts += [flag, str(value)]
    return shlex.join(parts)


def qat_command(qat: Mapping[str, Any]) -> str:
    """The ``karung qat`` command line recorded in a fine-tuned checkpoint's metadata."""
    parts = ["karung", "qat", "--model", shown(qat["model"]), "--out", shown(qat["out"])]
    for d in qat.get("data", []):
        parts += ["--data", shown(d)]
    for key in ("steps", "batch_size", "lr", "consistency", "calibration_images", "seed"):
        parts += ["--" + key.replace("_", "-"), str(qat[key])]
    parts += ["--reduce-range", "yes" if qat["reduce_range"] else "no"]
    return shlex.join(parts)


def search_flag(parity: dict[str, Any] | None) -> str:
    """`` --int8-search`` when the installed int8 file keeps some nodes in fp32."""
    return " --int8-search" if (parity or {}).get("int8", {}).get("mixed_precision") else ""
