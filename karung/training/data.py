"""Labelled image lists from data directories: ``manifest.csv`` or an ImageFolder.

A data directory is either

* a folder with ``manifest.csv`` (columns ``file,label`` and optionally ``split`` and
  ``sender_id``; ``file`` is relative to the manifest's folder or absolute), or
* an ImageFolder: ``DIR/<label>/**/*.jpg`` (optionally under ``DIR/train`` and ``DIR/val``).

A manifest row with a ``variant`` (``karung synth`` writes one, e.g. ``bale-wall``) is a
*synthetic* image; every other row (the real CC0 manifests, moderators' exports, ImageFolders)
is a *real* photo. The default recipe fits on both but picks its thresholds on real negatives.

Rows without a split get a deterministic one: by ``sender_id`` when the manifest has it (a
sender's photos share cues, so they must not straddle train and val), else by file path.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from karung.training.errors import DatasetError
from karung.training.splits import sender_split, unit_hash
from karung.vision.manifest import MANIFEST_FILE, ManifestError
from karung.vision.manifest import read_manifest as read_rows

IMAGE_SUFFIXES: Final = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


@dataclass(frozen=True)
class Sample:
    """One labelled image file."""

    path: str
    label: int
    split: str
    group: str
    variant: str = ""

    @property
    def is_real(self) -> bool:
        """A real photo (no synthetic renderer variant)."""
        return not self.variant


def load_samples(
    dirs: Iterable[str | Path], labels: Sequence[str], val_fraction: float = 0.2
) -> list[Sample]:
    """All samples of all data directories, in a stable order.

    Raises:
        DatasetError: a directory is missing, empty or names a label outside ``labels``.
    """
    samples: list[Sample] = []
    for d in dirs:
        samples.extend(load_dir(Path(d), labels, val_fraction))
    if not samples:
        raise DatasetError("no images found in the data directories")
    return samples


def load_dir(root: Path, labels: Sequence[str], val_fraction: float = 0.2) -> list[Sample]:
    """Samples of one data directory (manifest when present, else ImageFolder)."""
    if root.is_file() and root.name.endswith(".csv"):
        return read_manifest(root, labels, val_fraction)
    if not root.is_dir():
        raise DatasetError(f"data directory {root} does not exist")
    if (root / MANIFEST_FILE).is_file():
        return read_manifest(root / MANIFEST_FILE, labels, val_fraction)
    return scan_image_folder(root, labels, val_fraction)


def _split_for(split: str, group: str, key: str, val_fraction: float) -> str:
    if split:
        return split
    if group:
        return sender_split(group, val_fraction=val_fraction)
    return "val" if unit_hash(f"file:{key}") < val_fraction else "train"


def _label_index(name: str, labels: Sequence[str], where: str) -> int:
    try:
        return list(labels).index(name.strip())
    except ValueError:
        raise DatasetError(
            f"{where}: unknown label {name!r} (known: {', '.join(labels)})"
        ) from None


def read_manifest(path: Path, labels: Sequence[str], val_fraction: float = 0.2) -> list[Sample]:
    """Parse a ``manifest.csv``; relative ``file`` entries resolve against its folder."""
    try:
        rows = read_rows(path)
    except ManifestError as exc:
        raise DatasetError(str(exc)) from exc
    samples = [
        Sample(
            path=str(row.resolve(path)),
            label=_label_index(row.label, labels, f"{path}:{row.line}"),
            split=_split_for(row.split, row.sender_id, row.file, val_fraction),
            group=row.sender_id,
            variant=row.variant,
        )
        for row in rows
    ]
    if not samples:
        raise DatasetError(f"{path} lists no images")
    return samples


def scan_image_folder(root: Path, labels: Sequence[str], val_fraction: float = 0.2) -> list[Sample]:
    """``root/<label>/...`` (or ``root/{train,val}/<label>/...``) image files, sorted."""
    split_dirs = [root / s for s in ("train", "val") if (root / s).is_dir()]
    if split_dirs:
        out: list[Sample] = []
        for d in split_dirs:
            out.extend(_scan_labels(d, labels, forced_split=d.name, val_fraction=val_fraction))
        return out
    return _scan_labels(root, labels, forced_split="", val_fraction=val_fraction)


def _scan_labels(
    root: Path, labels: Sequence[str], *, forced_split: str, val_fraction: float
) -> list[Sample]:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DatasetError(f"{root} has neither {MANIFEST_FILE} nor label sub-folders")
    samples = []
    for class_dir in class_dirs:
        label = _label_index(class_dir.name, labels, str(class_dir))
        for file in sorted(class_dir.rglob("*")):
            if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES:
                rel = file.relative_to(root).as_posix()
                split = _split_for(forced_split, "", rel, val_fraction)
                samples.append(Sample(path=str(file), label=label, split=split, group=""))
    if not samples:
        raise DatasetError(f"{root} contains no image files")
    return samples


def select(samples: Sequence[Sample], split: str) -> list[Sample]:
    """The samples of one split."""
    return [s for s in samples if s.split == split]


def label_counts(samples: Sequence[Sample], labels: Sequence[str]) -> dict[str, int]:
    """How many samples each label has (zero included)."""
    counts = Counter(s.label for s in samples)
    return {name: counts.get(i, 0) for i, name in enumerate(labels)}


def split_samples(
    dirs: Iterable[str | Path], labels: Sequence[str], val_fraction: float
) -> tuple[list[Sample], list[Sample]]:
    """``(train, val)`` of the data directories, checked to be usable for training.

    Raises:
        DatasetError: no training or validation images, or a single label to learn.
    """
    samples = load_samples(dirs, labels, val_fraction)
    train, val = select(samples, "train"), select(samples, "val")
    if not train:
        raise DatasetError("no training images (every row is in val or test)")
    if not val:
        raise DatasetError("no validation images: add a split column or raise --val-fraction")
    missing = [n for n, c in label_counts(train, labels).items() if c == 0]
    if len(missing) == len(labels) - 1:
        raise DatasetError(f"training data has a single label; missing {missing}")
    return train, val
