"""Reading the CC0 photo folder (``images.csv`` + ``images/*.jpg``) and splitting it by sender."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from PIL import Image

from karung.training.splits import Split, sender_split
from karung.training.synth.errors import SourceError

# Labels of the CC0 set that are not (or not surely) a garment: never used as garment pixels.
EXCLUDED_LABELS: Final = frozenset({"Not sure", "Skip", "Other"})
# Categories whose pixels make poor fabric strata (rigid, small).
NON_FABRIC: Final = frozenset({"Shoes", "Hat"})
REQUIRED_COLUMNS: Final = ("image", "sender_id", "label")


@dataclass(frozen=True)
class SourcePhoto:
    """One usable CC0 photo."""

    image_id: str
    sender_id: str
    category: str
    path: Path

    @property
    def is_fabric(self) -> bool:
        """Whether its garment can be cut into fabric strata."""
        return self.category not in NON_FABRIC


def read_source(folder: Path) -> list[SourcePhoto]:
    """Parse ``folder/images.csv``; keep rows whose label is a garment and whose file exists.

    Raises:
        SourceError: the folder, the CSV or its columns are missing, or no photo is usable.
    """
    csv_path = folder / "images.csv"
    if not folder.is_dir():
        raise SourceError(f"source folder not found: {folder}")
    if not csv_path.is_file():
        raise SourceError(f"no images.csv in {folder}")
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"cannot read {csv_path}: {exc}") from exc
    if not rows or any(col not in rows[0] for col in REQUIRED_COLUMNS):
        raise SourceError(f"{csv_path} needs the columns {', '.join(REQUIRED_COLUMNS)}")
    photos = list(_usable(folder / "images", rows))
    if not photos:
        raise SourceError(f"no usable garment photo listed in {csv_path}")
    return sorted(photos, key=lambda p: p.image_id)


def _usable(images_dir: Path, rows: Iterable[dict[str, str]]) -> Iterable[SourcePhoto]:
    present = {p.stem for p in images_dir.glob("*.jpg")} if images_dir.is_dir() else set()
    for row in rows:
        image_id, label = row["image"].strip(), row["label"].strip()
        if label in EXCLUDED_LABELS or image_id not in present:
            continue
        yield SourcePhoto(image_id, row["sender_id"].strip(), label, images_dir / f"{image_id}.jpg")


def by_split(photos: Sequence[SourcePhoto], val_fraction: float) -> dict[Split, list[SourcePhoto]]:
    """Partition photos by :func:`sender_split` of their sender."""
    out: dict[Split, list[SourcePhoto]] = {"train": [], "val": []}
    for photo in photos:
        out[sender_split(photo.sender_id, val_fraction=val_fraction)].append(photo)
    return out


def load_photo(path: Path, long_side: int) -> np.ndarray:
    """Decode a JPEG to an RGB uint8 array whose long side is ``long_side``.

    JPEG draft mode lets libjpeg decode at 1/2 or 1/4 scale directly, which is most of the cost.
    """
    with Image.open(path) as im:
        im.draft("RGB", (long_side, long_side))
        rgb = im.convert("RGB")
    w, h = rgb.size
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(rgb.resize(size, Image.Resampling.BILINEAR))
