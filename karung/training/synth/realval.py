"""Manifest of the REAL CC0 photos of validation senders (the trainer's false-positive check)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Final

from karung.training.splits import sender_split
from karung.training.synth.sources import read_source

# sender_id is what the trainer's manifest reader groups by; source_ids/sender_ids match the
# synthetic manifest.
COLUMNS: Final = ("file", "label", "split", "sender_id", "source_ids", "sender_ids", "category")


def write_real_val_manifest(source: Path, path: Path, val_fraction: float) -> int:
    """Write ``path``: every usable photo of a validation sender as ``garment``/``val``.

    ``file`` is absolute. Labels "Not sure", "Skip" and "Other" are skipped (see
    :data:`~karung.training.synth.sources.EXCLUDED_LABELS`). Returns the number of rows.

    Raises:
        SourceError: ``source`` is not a usable CC0 folder.
    """
    photos = [
        p
        for p in read_source(source)
        if sender_split(p.sender_id, val_fraction=val_fraction) == "val"
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for p in photos:
            writer.writerow(
                [
                    str(p.path.resolve()),
                    "garment",
                    "val",
                    p.sender_id,
                    p.image_id,
                    p.sender_id,
                    p.category,
                ]
            )
    os.replace(tmp, path)
    return len(photos)
