"""Fixtures of the synth tests: a tiny fake CC0 folder made of generated photos."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from karung.training.splits import sender_split

SHIRT = [(0.35, 0.08), (0.65, 0.08), (0.92, 0.25), (0.8, 0.4), (0.72, 0.35), (0.72, 0.92),
         (0.28, 0.92), (0.28, 0.35), (0.2, 0.4), (0.08, 0.25)]  # fmt: skip


def senders_by_split(k: int) -> tuple[list[str], list[str]]:
    """``k`` sender ids that :func:`sender_split` puts in train and ``k`` in val."""
    train, val, i = [], [], 0
    while len(train) < k or len(val) < k:
        sid = str(1000 + i)
        (val if sender_split(sid) == "val" else train).append(sid)
        i += 1
    return train[:k], val[:k]


def garment_photo(rng: np.random.Generator, w: int = 120, h: int = 160) -> Image.Image:
    """A flat garment of one colour on a textured floor, like a tiny CC0 photo."""
    floor = rng.integers(90, 200, 3)
    noise = rng.normal(0, 12, (h, w, 1))
    bg = np.clip(floor[None, None, :] + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(bg)
    colour = tuple(int(c) for c in (255 - floor + rng.integers(-30, 30, 3)) % 256)
    # Shrunk towards the centre: the floor shows around it, as in the real photos.
    shape = [((0.5 + (x - 0.5) * 0.7) * w, (0.12 + y * 0.7) * h) for x, y in SHIRT]
    ImageDraw.Draw(im).polygon(shape, fill=colour)
    return im


@pytest.fixture(scope="session")
def fake_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CC0-like folder: 24 garment photos of 3 train and 3 val senders, plus rows to skip."""
    root = tmp_path_factory.mktemp("cc0")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    train, val = senders_by_split(3)
    rows = []
    for i in range(24):
        image_id = f"img-{i:03d}"
        garment_photo(rng).save(images / f"{image_id}.jpg", quality=90)
        rows.append([image_id, (train + val)[i % 6], "T-Shirt" if i % 3 else "Pants", "False"])
    for i, label in enumerate(["Not sure", "Skip", "Other"]):
        image_id = f"skip-{i}"
        garment_photo(rng).save(images / f"{image_id}.jpg")
        rows.append([image_id, val[0], label, "False"])
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows.append(["broken", train[0], "Shirt", "False"])
    rows.append(["missing-file", train[1], "Shirt", "False"])
    with (root / "images.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "sender_id", "label", "kids"])
        writer.writerows(rows)
    return root
