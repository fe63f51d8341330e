"""Manifest integrity, label balance and the sender-disjoint splits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from karung.training.splits import sender_split
from karung.training.synth.config import SynthConfig
from karung.training.synth.runner import COLUMNS, generate
from karung.vision.labels import LABELS


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory: pytest.TempPathFactory, fake_source: Path) -> Path:
    out = tmp_path_factory.mktemp("set")
    cfg = SynthConfig(
        out=out, n=40, seed=11, source=fake_source, size=128, workers=2, contact_count=6
    )
    generate(cfg, quiet=True)
    return out


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_columns_and_files(photo_set: Path) -> None:
    rows = _rows(photo_set)
    assert list(rows[0].keys()) == list(COLUMNS)
    assert [int(r["index"]) for r in rows] == list(range(40))
    for r in rows:
        path = photo_set / r["file"]
        assert path.parent.name == r["label"]
        assert r["split"] in ("train", "val")
        with Image.open(path) as im:
            assert im.format == "JPEG"
            assert im.size == (int(r["image_width"]), int(r["image_height"]))
            assert max(im.size) == 128
        json.loads(r["extra"])
    on_disk = {str(p.relative_to(photo_set)) for p in photo_set.glob("*/*.jpg")}
    assert on_disk == {r["file"] for r in rows}


def test_labels_balanced_and_contact_sheets(photo_set: Path) -> None:
    rows = _rows(photo_set)
    counts = {label: sum(r["label"] == label for r in rows) for label in LABELS}
    assert counts == {label: 10 for label in LABELS}
    for label in LABELS:
        assert (photo_set / f"contact_{label}.png").is_file()


def test_no_sender_feeds_both_splits(photo_set: Path) -> None:
    rows = _rows(photo_set)
    senders: dict[str, set[str]] = {"train": set(), "val": set()}
    for r in rows:
        ids = [s for s in r["sender_ids"].split(";") if s]
        assert len(ids) == len([s for s in r["source_ids"].split(";") if s])
        for sid in ids:
            if sid != "proc":  # procedural stand-ins have no sender
                assert sender_split(sid) == r["split"], r
        senders[r["split"]].update(ids)
    assert not (senders["train"] & senders["val"]) - {"proc"}
    assert senders["train"] - {"proc"} and senders["val"] - {"proc"}


def test_bales_and_real_garments_use_real_photos(photo_set: Path) -> None:
    rows = _rows(photo_set)
    # A bale wrapped in woven polypropylene shows no garment, so it needs no photo.
    bale_ids = [
        r["source_ids"] for r in rows if r["label"] == "bale" and r["variant"] != "bale-woven"
    ]
    assert all(ids and not ids.startswith("proc:") for ids in bale_ids)
    photos = [r for r in rows if r["variant"] == "garment-photo"]
    assert photos, "some garment images should be real photos"
    skipped = {"skip-0", "skip-1", "skip-2", "broken", "missing-file"}
    for r in rows:
        assert not skipped & set(r["source_ids"].split(";"))


def test_summary_counts_the_broken_photo(photo_set: Path) -> None:
    summary = json.loads((photo_set / "synth.json").read_text())["summary"]
    assert summary["assets"]["failed"] == 1  # broken.jpg; the run went on without it
    assert summary["per_label"] == {label: 10 for label in LABELS}
