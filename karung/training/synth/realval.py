"""Manifests of the REAL CC0 photos: every sender (the trainer's real negatives, split by sender)
or validation senders only (the held-out false-positive check)."""

from __future__ import annotations

from pathlib import Path

from karung.training.splits import sender_split
from karung.training.synth.sources import read_source
from karung.vision.manifest import REAL_COLUMNS, write_manifest


def write_real_val_manifest(source: Path, path: Path, val_fraction: float) -> int:
    """Write ``path``: every usable photo of a validation sender as ``garment``/``val``."""
    return write_real_manifest(source, path, val_fraction, splits=("val",))


def write_real_manifest(
    source: Path, path: Path, val_fraction: float, splits: tuple[str, ...] = ("train", "val")
) -> int:
    """Write ``path``: every usable photo of a sender whose split is in ``splits``, as
    ``garment`` with the sender's split (the same split as the synthetic set's, so a sender's
    pixels never feed both sides).

    ``file`` is absolute. Labels "Not sure", "Skip" and "Other" are skipped (see
    :data:`~karung.training.synth.sources.EXCLUDED_LABELS`). Returns the number of rows.

    Raises:
        SourceError: ``source`` is not a usable CC0 folder.
    """
    photos = [
        (p, sender_split(p.sender_id, val_fraction=val_fraction)) for p in read_source(source)
    ]
    photos = [(p, split) for p, split in photos if split in splits]
    # sender_id is what the trainer groups by; source_ids/sender_ids match the synthetic set.
    rows = [
        {
            "file": str(p.path.resolve()),
            "label": "garment",
            "split": split,
            "sender_id": p.sender_id,
            "source_ids": p.image_id,
            "sender_ids": p.sender_id,
            "category": p.category,
        }
        for p, split in photos
    ]
    write_manifest(path, REAL_COLUMNS, rows)
    return len(photos)
