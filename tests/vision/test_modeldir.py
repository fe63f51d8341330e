"""The model folder layout and the checkpoint's typed training record."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from karung.vision.checkpoint import Checkpoint
from karung.vision.errors import CheckpointError
from karung.vision.modeldir import ModelDir, default_model_dir
from karung.vision.training_record import DEFAULT_VAL_FRACTION, TrainingRecord

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "default"


def test_find_accepts_a_folder_or_a_checkpoint_file(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"x")
    (tmp_path / "other.pt").write_bytes(b"x")
    assert ModelDir.find(tmp_path).checkpoint == tmp_path / "model.pt"
    named = ModelDir.find(tmp_path / "other.pt")
    assert named.root == tmp_path and named.checkpoint == tmp_path / "other.pt"
    with pytest.raises(CheckpointError, match="no checkpoint"):
        ModelDir.find(tmp_path / "missing")


def test_onnx_files_lists_only_present_files_preferred_first(tmp_path: Path) -> None:
    folder = ModelDir(tmp_path)
    assert folder.onnx_files() == []
    folder.fp32_onnx.write_bytes(b"x")
    folder.failed(folder.int8_onnx.name).write_bytes(b"x")  # a failed export is never listed
    assert folder.onnx_files() == [folder.fp32_onnx]
    folder.int8_onnx.write_bytes(b"x")
    assert folder.onnx_files() == [folder.int8_onnx, folder.fp32_onnx]
    assert folder.onnx_files("onnx-fp32") == [folder.fp32_onnx]
    assert folder.onnx_files("onnx-int8") == [folder.int8_onnx]


def test_the_shipped_folder_has_every_file_its_layout_names() -> None:
    shipped = ModelDir.find(SHIPPED)
    for path in (shipped.checkpoint, shipped.int8_onnx, shipped.fp32_onnx, shipped.parity):
        assert path.is_file(), path
    assert shipped.metrics.is_file() and shipped.config.is_file() and shipped.model_card.is_file()
    assert shipped.reports.is_dir()


def test_the_shipped_checkpoint_record_parses_and_round_trips_unchanged() -> None:
    raw = torch.load(SHIPPED / "model.pt", map_location="cpu", weights_only=True)
    ckpt = Checkpoint.load(SHIPPED)
    record = ckpt.training
    assert ckpt.model_version == raw["model_version"] == "mobilenet_v2-b7caa820eef3"
    assert record.recipe == "frozen-imagenet-linear-head" and record.is_frozen_recipe
    assert record.data == tuple(raw["training"]["data"])
    assert record.val_fraction == raw["training"]["val_fraction"]
    assert record.seed == raw["training"]["config"]["seed"]
    assert record.to_dict() == raw["training"]


def test_an_old_record_gets_the_defaults_and_keeps_unknown_keys() -> None:
    old = {"data": ["runs/x"], "epochs_run": 3, "train_seconds": 12.5, "future": {"a": 1}}
    record = TrainingRecord.from_dict(old)
    assert record.val_fraction == DEFAULT_VAL_FRACTION and record.recipe is None
    assert record.data == ("runs/x",) and record.seconds == 12.5 and not record.is_frozen_recipe
    assert record.seed is None and record.extra == {"future": {"a": 1}}
    assert record.to_dict() == {**old, "val_fraction": DEFAULT_VAL_FRACTION}
    assert TrainingRecord.from_dict(None) == TrainingRecord()


def test_a_malformed_record_is_a_checkpoint_error(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(SHIPPED, folder, ignore=shutil.ignore_patterns("*.onnx", "reports"))
    raw = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    raw["training"] = ["not", "a", "mapping"]
    torch.save(raw, folder / "model.pt")
    with pytest.raises(CheckpointError, match="malformed"):
        Checkpoint.load(folder)


def test_default_model_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARUNG_MODEL", "/somewhere/else")
    assert default_model_dir() == Path("/somewhere/else")
    monkeypatch.delenv("KARUNG_MODEL")
    assert default_model_dir() == SHIPPED
