"""Fixtures of the training tests: tiny generated data sets and a tiny trained run."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

# Idle OpenMP threads sleep instead of spinning: on the shared 2-core machine spinning halves
# training throughput (see karung.training.runtime). Effective when torch is not yet imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LABELS = ("bale", "sack", "garment", "other")
# One dominant colour per label plus texture: separable in a few steps even from random init.
COLOURS = {
    "bale": (150, 100, 50),
    "sack": (235, 235, 240),
    "garment": (200, 40, 60),
    "other": (40, 90, 200),
}


def make_image(label: str, seed: int, size: int = 64) -> Image.Image:
    """A small photo-like image: label colour, stripes and noise, different for every seed."""
    rng = np.random.default_rng(seed)
    base = np.array(COLOURS[label], dtype=np.float64)
    y, x = np.mgrid[0:size, 0:size]
    period = 6 + (seed % 5)
    stripes = 25.0 * np.sin((x + 2 * y) * (2 * np.pi / period))[..., None]
    noise = rng.normal(0.0, 12.0, size=(size, size, 3))
    arr = np.clip(base + stripes + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def write_image_folder(root: Path, per_label: int, seed: int = 0, size: int = 64) -> Path:
    """``root/<label>/NNN.jpg`` for every label."""
    for li, label in enumerate(LABELS):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            make_image(label, seed * 10_000 + li * 1000 + i, size).save(
                root / label / f"{i:03d}.jpg", quality=90
            )
    return root


def write_manifest_set(root: Path, per_label: int, val_per_label: int, seed: int = 0) -> Path:
    """Images plus ``manifest.csv`` with an explicit split column."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for li, label in enumerate(LABELS):
        for i in range(per_label + val_per_label):
            name = f"img_{label}_{i:03d}.jpg"
            make_image(label, seed * 10_000 + li * 1000 + i).save(root / name, quality=90)
            rows.append(
                {"file": name, "label": label, "split": "val" if i >= per_label else "train"}
            )
    with (root / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 train + 6 val 64 px images per label, with a manifest."""
    return write_manifest_set(tmp_path_factory.mktemp("tiny_data"), per_label=12, val_per_label=6)


def tiny_config(data: Path, out: Path, **overrides: Any) -> Any:
    """A seconds-long fine-tuning recipe: 64 px, 2 epochs (head, then upper blocks), in-process
    decoding. (The frozen default recipe has its own tests in test_frozen.py.)"""
    from karung.training.config import TrainConfig

    values: dict[str, Any] = {
        "data": (str(data),),
        "out": str(out),
        "recipe": "finetune",
        "input_size": 64,
        "batch_size": 16,
        "epochs": 2,
        "head_epochs": 1,
        "epoch_images": 96,
        "lr_head": 1e-2,
        "precision": "fp32",
        "workers": 0,
        "threads": 2,
        "progress": False,
    }
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of one tiny training run, shared by the tests that need a model."""
    from karung.training.trainer import train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    train(tiny_config(tiny_data, out))
    return out


class Gen:
    """The image factories, handed to tests as the ``gen`` fixture."""

    labels = LABELS
    make_image = staticmethod(make_image)
    write_image_folder = staticmethod(write_image_folder)
    write_manifest_set = staticmethod(write_manifest_set)
    tiny_config = staticmethod(tiny_config)


@pytest.fixture(scope="session")
def gen() -> type[Gen]:
    """Access to the tiny-image factories (``from conftest import`` would hit tests/conftest)."""
    return Gen


@pytest.fixture
def model_dir(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model (exports write next to the checkpoint)."""
    out = tmp_path / "model"
    out.mkdir()
    shutil.copyfile(tiny_run / "model.pt", out / "model.pt")
    return out
