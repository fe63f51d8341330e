"""Loading ImageFolders and manifests, splits, and the class-balanced sampler."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch

from karung.training.augment import EvalTransform
from karung.training.data import label_counts, load_dir, load_samples, select
from karung.training.errors import DatasetError
from karung.training.loader import UNREADABLE, ImageDataset, balanced_sampler
from karung.vision.preprocess import Preprocessing

LABELS = ("bale", "sack", "garment", "other")


def _manifest(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_manifest_relative_absolute_and_split(tmp_path: Path, gen: Any) -> None:
    gen.make_image("bale", 1).save(tmp_path / "a.jpg")
    elsewhere = tmp_path / "other_place"
    elsewhere.mkdir()
    gen.make_image("garment", 2).save(elsewhere / "b.jpg")
    data = tmp_path / "set"
    data.mkdir()
    (data / "imgs").mkdir()
    gen.make_image("sack", 3).save(data / "imgs" / "c.jpg")
    _manifest(
        data / "manifest.csv",
        [
            {"file": "imgs/c.jpg", "label": "sack", "split": "val"},
            {"file": str(elsewhere / "b.jpg"), "label": "garment", "split": "train"},
            {"file": str(tmp_path / "a.jpg"), "label": "bale", "split": ""},
        ],
    )
    samples = load_dir(data, LABELS)
    assert [Path(s.path).name for s in samples] == ["c.jpg", "b.jpg", "a.jpg"]
    assert Path(samples[0].path) == data / "imgs" / "c.jpg"
    assert [s.split for s in samples[:2]] == ["val", "train"]
    assert samples[2].split in ("train", "val")  # derived deterministically
    assert load_dir(data, LABELS)[2].split == samples[2].split
    assert [s.label for s in samples] == [1, 2, 0]
    # A manifest file can also be passed directly.
    assert len(load_dir(data / "manifest.csv", LABELS)) == 3


def test_sender_split_keeps_senders_together(tmp_path: Path) -> None:
    rows = [{"file": f"x{i}.jpg", "label": "garment", "sender_id": str(i % 7)} for i in range(70)]
    _manifest(tmp_path / "manifest.csv", rows)
    samples = load_dir(tmp_path, LABELS, val_fraction=0.4)
    by_sender: dict[str, set[str]] = {}
    for s in samples:
        by_sender.setdefault(s.group, set()).add(s.split)
    assert all(len(splits) == 1 for splits in by_sender.values())
    assert {"train", "val"} == set().union(*by_sender.values())


def test_image_folder_and_split_folders(tmp_path: Path, gen: Any) -> None:
    gen.write_image_folder(tmp_path / "flat", per_label=5)
    flat = load_samples([tmp_path / "flat"], LABELS, val_fraction=0.3)
    assert label_counts(flat, LABELS) == dict.fromkeys(LABELS, 5)
    assert select(flat, "train") and select(flat, "val")
    gen.write_image_folder(tmp_path / "split" / "train", per_label=2)
    gen.write_image_folder(tmp_path / "split" / "val", per_label=1)
    split = load_samples([tmp_path / "split"], LABELS)
    assert Counter(s.split for s in split) == {"train": 8, "val": 4}


def test_bad_data_raises_typed_errors(tmp_path: Path, gen: Any) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dir(tmp_path / "missing", LABELS)
    (tmp_path / "zebra").mkdir()
    gen.make_image("bale", 0).save(tmp_path / "zebra" / "z.jpg")
    with pytest.raises(DatasetError, match="unknown label 'zebra'"):
        load_dir(tmp_path, LABELS)
    bad = tmp_path / "bad"
    bad.mkdir()
    _manifest(bad / "manifest.csv", [{"path": "a.jpg", "label": "bale"}])
    with pytest.raises(DatasetError, match="needs columns"):
        load_dir(bad, LABELS)
    _manifest(bad / "manifest.csv", [{"file": "a.jpg", "label": "bale", "split": "holdout"}])
    with pytest.raises(DatasetError, match="unknown split"):
        load_dir(bad, LABELS)


def test_unreadable_file_does_not_break_the_batch(tmp_path: Path, gen: Any) -> None:
    gen.write_image_folder(tmp_path, per_label=1)
    (tmp_path / "bale" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    samples = load_dir(tmp_path, LABELS)
    ds = ImageDataset(samples, EvalTransform(Preprocessing(input_size=32)), 32)
    items = [ds[i] for i in range(len(ds))]
    labels = [y for _, y, _ in items]
    assert labels.count(UNREADABLE) == 1
    assert all(x.shape == (3, 32, 32) for x, _, _ in items)
    assert sorted(y for y in labels if y != UNREADABLE) == [0, 1, 2, 3]


def test_balanced_sampler_evens_out_labels() -> None:
    labels = [0] * 90 + [1] * 10
    sampler = balanced_sampler(labels, 4000, torch.Generator().manual_seed(0))
    drawn = Counter(labels[i] for i in sampler)
    assert abs(drawn[0] - drawn[1]) < 300
