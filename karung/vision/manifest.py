"""The ``manifest.csv`` format: one labelled image a row; the one module that reads and writes it.

Three writers make manifests (``karung synth``, the real-photo manifests of
:mod:`karung.training.synth.realval`, the moderators' export of :mod:`karung.serve.review.export`)
and the trainer reads them (:mod:`karung.training.data`). The columns the trainer reads are

* ``file`` (required): the image, relative to the manifest's folder or absolute;
* ``label`` (required): a label name;
* ``split`` (optional): ``train``, ``val`` or ``test``; empty means "the reader decides";
* ``sender_id`` (optional): who sent the photo (a sender's photos share cues, so the reader
  never lets them straddle train and val);
* ``variant`` (optional): the synthetic renderer that drew it; empty for a real photo.

Any other column is provenance for people and is kept as written. This module lives in
:mod:`karung.vision` because both training and serving write manifests and neither may
import the other.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from karung.vision.errors import KarungVisionError

MANIFEST_FILE: Final = "manifest.csv"
REQUIRED_COLUMNS: Final = ("file", "label")
KNOWN_SPLITS: Final = frozenset({"train", "val", "test"})
# The provenance columns each writer adds after the ones the trainer reads.
SYNTH_LEAD_COLUMNS: Final = (
    "file",
    "label",
    "split",
    "index",
    "variant",
    "source_ids",
    "sender_ids",
)
REAL_COLUMNS: Final = (
    "file",
    "label",
    "split",
    "sender_id",
    "source_ids",
    "sender_ids",
    "category",
)
REVIEW_COLUMNS: Final = (
    "file",
    "label",
    "split",
    "sender_id",
    "sha256",
    "item_id",
    "listing_id",
    "decided_at",
    "reviews_required",
    "queue_reason",
    "model_decision",
    "model_risk",
    "model_version",
)


class ManifestError(KarungVisionError, ValueError, code="manifest_invalid"):
    """A manifest is unreadable, lacks ``file``/``label`` or has a bad value in a row."""


@dataclass(frozen=True)
class ManifestRow:
    """The trainer's view of one row (``line`` is its line in the file, for messages)."""

    file: str
    label: str
    split: str = ""
    sender_id: str = ""
    variant: str = ""
    line: int = 0

    def resolve(self, manifest: Path) -> Path:
        """The image's path: ``file`` itself when absolute, else beside ``manifest``."""
        path = Path(self.file)
        return path if path.is_absolute() else manifest.parent / path


def manifest_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself when it names a ``.csv`` file, else ``path/manifest.csv``."""
    p = Path(path)
    return p if p.suffix == ".csv" and not p.is_dir() else p / MANIFEST_FILE


def read_manifest(path: Path) -> list[ManifestRow]:
    """Parse a manifest file into rows (validated: columns, splits; labels are the caller's).

    Raises:
        ManifestError: the file cannot be read, lacks ``file``/``label`` or names an
            unknown split.
    """
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or ())
            if not set(REQUIRED_COLUMNS) <= columns:
                raise ManifestError(f"{path} needs columns file,label (has {sorted(columns)})")
            raw = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    return [_row(path, line, r) for line, r in enumerate(raw, start=2)]


def _row(path: Path, line: int, raw: Mapping[str, str | None]) -> ManifestRow:
    split = (raw.get("split") or "").strip().lower()
    if split and split not in KNOWN_SPLITS:
        raise ManifestError(f"{path}:{line}: unknown split {split!r} (train, val or test)")
    return ManifestRow(
        file=raw.get("file") or "",
        label=(raw.get("label") or "").strip(),
        split=split,
        sender_id=(raw.get("sender_id") or "").strip(),
        variant=(raw.get("variant") or "").strip(),
        line=line,
    )


def write_manifest(
    path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, object]]
) -> Path:
    """Write a manifest atomically (a temp file renamed into place: readers never see half).

    Raises:
        ManifestError: ``columns`` lack ``file``/``label`` or a row has a column not in them.
    """
    if tuple(columns[:2]) != REQUIRED_COLUMNS:
        raise ManifestError(f"a manifest starts with the columns file,label, got {columns[:2]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
    except ValueError as exc:  # DictWriter: a row with a column not in ``columns``
        tmp.unlink(missing_ok=True)
        raise ManifestError(f"{path}: {exc}") from exc
    os.replace(tmp, path)
    return path
