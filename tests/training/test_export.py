"""ONNX export, int8 quantisation and the parity gate, on the tiny trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from karung.cli.main import main
from karung.training.errors import ParityError
from karung.training.export import (
    ParityReport,
    QuantOptions,
    export_fp32,
    onnx_model_version,
    quantize_int8,
    stamp_metadata,
    write_parity,
)
from karung.training.export_job import ExportJob, drop_stale, run_export
from karung.training.fallback_fit import FallbackOptions
from karung.vision.backends import TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.classifier import Classifier
from karung.vision.errors import CheckpointError
from karung.vision.modeldir import FP32_ONNX_FILE, INT8_ONNX_FILE, ModelDir
from karung.vision.onnx_backend import OnnxBackend


def tiny_data_dir(ckpt: Checkpoint) -> str:
    """The data directory the tiny model was trained on (recorded in the checkpoint)."""
    return str(ckpt.training.data[0])


def tiny_job(model_dir: Path, **overrides: Any) -> ExportJob:
    """Export the tiny model in place, decoding in the test process."""
    return ExportJob(checkpoint=model_dir / "model.pt", out_dir=model_dir, workers=0, **overrides)


def test_export_fp32_exact_and_int8_installed_by_the_gate(model_dir: Path, gen: Any) -> None:
    # No --calibration: the validation split recorded in the checkpoint is used. Static int8
    # on a 2-epoch toy model is rough, so this test lowers the gate to see the install path;
    # the gate itself is tested below and on real models by `karung export`.
    result = run_export(tiny_job(model_dir, min_agreement=0.5))
    assert result.files == {"fp32": model_dir / FP32_ONNX_FILE, "int8": model_dir / INT8_ONNX_FILE}
    fp32, int8 = result.reports["fp32"], result.reports["int8"]
    assert fp32.n == int8.n == 24
    assert fp32.decision_agreement == 1.0 and fp32.max_abs_prob_diff < 1e-4
    assert int8.passed and int8.label_agreement >= 0.75
    saved = json.loads((model_dir / "parity.json").read_text())
    assert saved["fp32"]["passed"] and saved["int8"]["onnx_file"] == str(model_dir / INT8_ONNX_FILE)
    ckpt = Checkpoint.load(model_dir)
    assert onnx_model_version(model_dir / INT8_ONNX_FILE) == ckpt.model_version

    batch = ckpt.preprocessing.to_array(
        [gen.make_image(n, 50 + i) for i, n in enumerate(gen.labels)]
    )
    ref = TorchBackend(ckpt.build_model()).logits(batch)
    onnx32 = OnnxBackend(model_dir / FP32_ONNX_FILE, threads=1).logits(batch)
    assert onnx32.shape == (4, 4) and onnx32.dtype == np.float32
    np.testing.assert_allclose(onnx32, ref, atol=1e-4)
    clf = Classifier.from_path(model_dir, backend="onnx")
    assert clf.backend.name == "onnx-int8+fallback"  # close calls re-run on the fp32 file
    auto = Classifier.from_path(model_dir, backend="auto").backend.name
    assert auto in ("onnx-int8+fallback", "onnx")  # whichever is faster on this CPU
    assert result.fallback is not None and result.unguarded is not None
    fallback = saved["int8"]["fallback"]
    assert fallback["low"] == result.fallback.band.low <= ckpt.thresholds.review
    assert 0.0 <= fallback["parity_rechecked_share"] <= 1.0
    assert saved["int8"]["without_fallback"]["n"] == 24
    assert int8.decision_agreement >= result.unguarded.decision_agreement
    # Evaluation through the fp32 graph gives the torch figures.
    reports = {}
    for backend in ("torch", "onnx-fp32"):
        out = model_dir / f"eval-{backend}"
        args = ["evaluate", "--model", str(model_dir), "--data", str(tiny_data_dir(ckpt))]
        args += ["--split", "val", "--backend", backend, "--out", str(out), "--workers", "0"]
        assert main([*args, "--no-progress"]) == 0
        reports[backend] = json.loads((out / "metrics.json").read_text())["models"][0]["metrics"]
    assert reports["onnx-fp32"]["risk_roc_auc"] == pytest.approx(reports["torch"]["risk_roc_auc"])
    assert reports["onnx-fp32"]["confusion"] == reports["torch"]["confusion"]
    images = [gen.make_image(n, 90 + i) for i, n in enumerate(gen.labels)]
    fast = clf.score(images)
    slow = Classifier.from_path(model_dir, backend="torch").score(images)
    assert [s.label for s in fast] == [s.label for s in slow]


def test_export_cli_gate_refuses_to_install(model_dir: Path, tiny_data: Path, capsys: Any) -> None:
    assert main(["export", "--model", str(model_dir), "--workers", "0"]) == 0
    assert "fp32: parity PASS" in capsys.readouterr().out
    assert (model_dir / FP32_ONNX_FILE).is_file() and not (model_dir / INT8_ONNX_FILE).exists()
    code = main(
        ["export", "--model", str(model_dir), "--int8", "--calibration", str(tiny_data),
         "--calibration-images", "16", "--quant-format", "qoperator", "--workers", "0",
         "--min-agreement", "1.01"]
    )  # fmt: skip
    assert code == 3
    assert "NOT installed" in capsys.readouterr().err
    assert not (model_dir / INT8_ONNX_FILE).exists()
    assert (model_dir / "model.int8.failed.onnx").is_file()
    assert not json.loads((model_dir / "parity.json").read_text())["int8"]["passed"]


def test_failed_parity_raises_and_is_recorded(tmp_path: Path) -> None:
    report = ParityReport(
        n=10, max_abs_prob_diff=0.3, mean_abs_prob_diff=0.1, max_abs_risk_diff=0.3,
        decision_agreement=0.9, label_agreement=0.9, required_agreement=0.995, onnx_file="x",
    )  # fmt: skip
    with pytest.raises(ParityError, match=r"int8: parity FAIL .* decision agreement 90\.00%"):
        write_parity({"int8": report}, tmp_path)
    assert '"passed": false' in (tmp_path / "parity.json").read_text()


def test_stale_int8_file_from_other_weights_is_dropped(model_dir: Path) -> None:
    ckpt = Checkpoint.load(model_dir)
    fresh = export_fp32(ckpt, model_dir / INT8_ONNX_FILE)
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


def test_int8_keeps_the_head_in_fp32_unless_told_otherwise(model_dir: Path, tmp_path: Path) -> None:
    ckpt = Checkpoint.load(model_dir / "model.pt")
    fp32 = export_fp32(ckpt, tmp_path / "fp32.onnx")
    batches = [np.random.default_rng(0).normal(size=(4, 3, 64, 64)).astype(np.float32)]
    for fp32_head in (True, False):
        out = tmp_path / f"head-{fp32_head}.onnx"
        graph = onnx.load(str(quantize_int8(fp32, out, batches, QuantOptions(fp32_head=fp32_head))))
        floats = {t.name for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
        gemm = next(n for n in graph.graph.node if n.op_type == "Gemm")
        rounded = {n.input[0] for n in graph.graph.node if n.op_type == "QuantizeLinear"}
        assert (gemm.input[1] in floats) is fp32_head  # the classifier's weight
        assert (gemm.output[0] in rounded) is not fp32_head  # the logits
        assert any(n.op_type == "QuantizeLinear" for n in graph.graph.node)  # the body is int8


def test_fallback_band_guards_the_gate_and_needs_the_fp32_file(model_dir: Path) -> None:
    # A band over all of [0, 1] re-runs every image on fp32: the guarded decisions are
    # exactly fp32's, so even a 100% gate passes, whatever the toy model's int8 error.
    job = tiny_job(model_dir, min_agreement=1.0, fallback_options=FallbackOptions(floor=50.0))
    result = run_export(job)
    assert result.reports["int8"].passed and result.reports["int8"].decision_agreement == 1.0
    saved = json.loads((model_dir / "parity.json").read_text())["int8"]
    assert saved["fallback"]["parity_rechecked_share"] == 1.0
    assert saved["fallback"]["tuning_guarded_agreement"] == 1.0
    meta = {p.key: p.value for p in onnx.load(str(model_dir / INT8_ONNX_FILE)).metadata_props}
    assert (
        meta["karung_fallback_model"] == FP32_ONNX_FILE
        and float(meta["karung_fallback_low"]) < 1e-9
    )
    (model_dir / FP32_ONNX_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing beside it"):
        Classifier.from_path(model_dir, backend="onnx-int8")


def test_no_fallback_installs_plain_int8(model_dir: Path) -> None:
    result = run_export(tiny_job(model_dir, min_agreement=0.5, fallback=False))
    assert result.fallback is None and result.unguarded is None
    assert "fallback" not in json.loads((model_dir / "parity.json").read_text())["int8"]
    assert Classifier.from_path(model_dir, backend="onnx-int8").backend.name == "onnx-int8"


def test_the_folder_export_writes_is_the_folder_serve_loads(model_dir: Path) -> None:
    from karung.serve.runtime import ModelHolder

    result = run_export(tiny_job(model_dir, int8=False))
    layout = ModelDir.find(model_dir)
    assert result.files == {"fp32": layout.fp32_onnx}
    assert layout.onnx_files() == [layout.fp32_onnx] and layout.parity.is_file()
    holder = ModelHolder(model_dir, backend="onnx")
    info = holder.load()
    assert info.backend == "onnx" and info.path == str(model_dir)
    assert info.model_version == Checkpoint.load(layout.checkpoint).model_version
    # A file that failed its parity check is never what serve loads.
    layout.fp32_onnx.rename(layout.failed(layout.fp32_onnx.name))
    assert holder.load(backend="auto").backend == "torch"
