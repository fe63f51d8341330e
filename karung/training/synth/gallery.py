"""Regenerate the committed gallery: ``python -m karung.training.synth.gallery``.

Synthesises a small set into a temporary folder and writes one JPEG contact sheet per label
to ``docs/gallery/`` (JPEG keeps the four sheets well under 1 MB together).
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from karung.training.synth.config import SynthConfig
from karung.training.synth.contact import contact_sheet
from karung.training.synth.runner import generate
from karung.vision.labels import LABELS
from karung.vision.manifest import MANIFEST_FILE


def main(argv: list[str] | None = None) -> int:
    """Write ``<out>/<label>.jpg`` for every label; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m karung.training.synth.gallery")
    parser.add_argument("--out", type=Path, default=Path("docs/gallery"))
    parser.add_argument("--source", default="../shared/data/clothing-cc0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-label", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    source = None if args.source == "none" else Path(args.source)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="karung-gallery-") as tmp:
        n = args.per_label * len(LABELS)
        cfg = SynthConfig(out=Path(tmp), n=n, seed=args.seed, source=source, workers=args.workers)
        generate(cfg, quiet=True)
        with (Path(tmp) / MANIFEST_FILE).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        for label in LABELS:
            files = [Path(tmp) / r["file"] for r in rows if r["label"] == label]
            sheet = contact_sheet(files, f"{label}: seed {args.seed}", cols=6, cell=180)
            sheet.save(args.out / f"{label}.jpg", quality=82, optimize=True)
            print(args.out / f"{label}.jpg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
