"""``--source none``: the whole pipeline without a single photo."""

from __future__ import annotations

import csv
from pathlib import Path

from karung.training.synth.config import SynthConfig
from karung.training.synth.runner import generate
from karung.vision.labels import LABELS


def test_procedural_mode_writes_every_label(tmp_path: Path) -> None:
    summary = generate(SynthConfig(out=tmp_path, n=8, seed=0, source=None, size=96), quiet=True)
    assert summary.assets.procedural
    assert summary.per_label == {label: 2 for label in LABELS}
    with (tmp_path / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        assert all(s.startswith("proc:") for s in r["source_ids"].split(";") if s)
        assert (tmp_path / r["file"]).stat().st_size > 500
