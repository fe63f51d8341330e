"""ONNX export, int8 quantisation and the parity gate, on the tiny trained model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from karung.cli.main import main
from karung.training.errors import ParityError
from karung.training.export import (
    ParityReport,
    export_fp32,
    onnx_model_version,
    stamp_metadata,
    write_parity,
)
from karung.training.export_job import ExportJob, drop_stale, run_export
from karung.vision.backends import TorchBackend
from karung.vision.checkpoint import ONNX_FILE, Checkpoint
from karung.vision.classifier import Classifier
from karung.vision.errors import CheckpointError
from karung.vision.onnx_backend import OnnxBackend


@pytest.fixture
def model_dir(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model (exports write next to the checkpoint)."""
    out = tmp_path / "model"
    out.mkdir()
    shutil.copyfile(tiny_run / "model.pt", out / "model.pt")
    return out


def test_int8_export_meets_parity_and_serves(model_dir: Path, gen: Any) -> None:
    # No --calibration: the validation split recorded in the checkpoint is used.
    job = ExportJob(checkpoint=model_dir / "model.pt", out_dir=model_dir, keep_fp32=True, workers=0)
    path, report = run_export(job)
    assert path == model_dir / ONNX_FILE and report.passed
    assert report.n == 24 and report.decision_agreement >= 0.995
    assert (model_dir / "parity.json").is_file()
    ckpt = Checkpoint.load(model_dir)
    assert onnx_model_version(path) == ckpt.model_version

    batch = ckpt.preprocessing.to_array(
        [gen.make_image(n, 50 + i) for i, n in enumerate(gen.labels)]
    )
    ref = TorchBackend(ckpt.build_model()).logits(batch)
    fp32 = OnnxBackend(model_dir / "model.fp32.onnx", threads=1).logits(batch)
    assert fp32.shape == (4, 4) and fp32.dtype == np.float32
    np.testing.assert_allclose(fp32, ref, atol=1e-4)
    clf = Classifier.from_path(model_dir, backend="auto")
    assert clf.backend.name == "onnx-int8"
    images = [gen.make_image(n, 90 + i) for i, n in enumerate(gen.labels)]
    fast = clf.score(images)
    slow = Classifier.from_path(model_dir, backend="torch").score(images)
    assert [s.label for s in fast] == [s.label for s in slow]
    assert max(abs(a.risk - b.risk) for a, b in zip(fast, slow, strict=True)) < 0.2


def test_export_cli_with_calibration_dir(model_dir: Path, tiny_data: Path, capsys: Any) -> None:
    code = main(
        ["export", "--model", str(model_dir), "--int8", "--calibration", str(tiny_data),
         "--calibration-images", "16", "--quant-format", "qoperator", "--workers", "0"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "parity PASS" in out and (model_dir / ONNX_FILE).is_file()


def test_failed_parity_raises_and_is_recorded(tmp_path: Path) -> None:
    report = ParityReport(
        n=10, max_abs_prob_diff=0.3, mean_abs_prob_diff=0.1, max_abs_risk_diff=0.3,
        decision_agreement=0.9, label_agreement=0.9, required_agreement=0.995, onnx_file="x",
    )  # fmt: skip
    with pytest.raises(ParityError, match=r"decision agreement 90\.00%"):
        write_parity(report, tmp_path)
    assert '"passed": false' in (tmp_path / "parity.json").read_text()


def test_stale_int8_file_from_other_weights_is_dropped(model_dir: Path) -> None:
    ckpt = Checkpoint.load(model_dir)
    fresh = export_fp32(ckpt, model_dir / ONNX_FILE)
    drop_stale(fresh, ckpt)
    assert fresh.exists()
    stamp_metadata(fresh, ckpt.with_updates(model_version="old-weights"))
    drop_stale(fresh, ckpt)
    assert not fresh.exists()


def test_onnx_backend_rejects_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no ONNX model"):
        OnnxBackend(tmp_path / "none.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf")
    with pytest.raises(CheckpointError, match="cannot load"):
        OnnxBackend(junk)
