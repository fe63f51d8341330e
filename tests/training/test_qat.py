"""Quantisation-aware fine-tuning: BN folding, the int8 simulation, the loss and the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from karung.cli.main import main
from karung.training.errors import QatError
from karung.training.export import QuantOptions, export_fp32, image_batches, quantize_int8
from karung.training.export_job import ExportJob, choose_sets
from karung.training.model_card import write_model_card
from karung.training.qat import QatConfig, qat_loss
from karung.training.qat_sim import Int8Simulation, fold_batchnorm, weight_range
from karung.vision.checkpoint import Checkpoint
from karung.vision.onnx_backend import OnnxBackend
from karung.vision.training_record import TrainingRecord


def _batches(model_dir: Path) -> tuple[Checkpoint, list[np.ndarray], list[np.ndarray]]:
    job = ExportJob(
        checkpoint=model_dir / "model.pt",
        out_dir=model_dir,
        calibration_images=12,
        parity_images=12,
        workers=0,
    )
    ckpt = Checkpoint.load(job.checkpoint)
    cal, par = choose_sets(job, ckpt)
    return (
        ckpt,
        list(image_batches(cal, ckpt, workers=0)),
        list(image_batches(par, ckpt, workers=0)),
    )


def test_fold_batchnorm_keeps_outputs_and_state_dict_keys(model_dir: Path) -> None:
    ckpt = Checkpoint.load(model_dir / "model.pt")
    model = ckpt.build_model().eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    keys = set(model.state_dict())
    folded = fold_batchnorm(model)
    with torch.no_grad():
        after = model(x)
    assert folded == 52  # every Conv-BN pair of MobileNetV2
    assert set(model.state_dict()) == keys
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    bn = dict(model.named_modules())["features.0.1"]
    assert isinstance(bn, torch.nn.BatchNorm2d)
    assert bn.running_mean is not None and not bn.running_mean.any()
    assert torch.equal(bn.weight, torch.ones_like(bn.weight))
    assert not bn.weight.requires_grad


def test_simulation_is_off_outside_the_context_and_gone_after_remove(model_dir: Path) -> None:
    ckpt, cal, par = _batches(model_dir)
    model = ckpt.build_model().eval()
    fold_batchnorm(model)
    x = torch.from_numpy(par[0])
    with torch.no_grad():
        ref = model(x)
        sim = Int8Simulation(model, reduce_range=True)
        sim.calibrate([torch.from_numpy(b) for b in cal])
        off = model(x)
        with sim.quantized():
            quant = model(x)
        assert all(q.seen and q.high > q.low for q in sim.activations)
        sim.remove()
        after = model(x)
    torch.testing.assert_close(off, ref)
    torch.testing.assert_close(after, ref)
    assert not (quant - ref).abs().max() < 1e-6  # the rounding is really applied
    assert not any(parametrize.is_parametrized(m) for m in model.modules())


def test_simulated_weights_take_int8_values_per_channel(model_dir: Path) -> None:
    model = Checkpoint.load(model_dir / "model.pt").build_model().eval()
    fold_batchnorm(model)
    sim = Int8Simulation(model, reduce_range=True)
    conv = dict(model.named_modules())["features.1.conv.0.0"]  # depthwise: a channel per group
    assert isinstance(conv, torch.nn.Conv2d) and conv.groups == conv.out_channels
    qmin, qmax = weight_range(True)
    with sim.quantized():
        w = conv.weight.detach()
    sim.remove()  # the raw fp32 weight is back in place
    raw = conv.weight.detach()
    scale = 2 * raw.abs().flatten(1).amax(1) / (qmax - qmin)
    steps = w.flatten(1) / scale[:, None]
    torch.testing.assert_close(steps, steps.round(), atol=1e-4, rtol=0)
    assert steps.abs().max() <= qmax
    assert not torch.equal(w, raw)


def test_quantizing_before_calibration_is_refused(model_dir: Path) -> None:
    model = Checkpoint.load(model_dir / "model.pt").build_model().eval()
    fold_batchnorm(model)
    sim = Int8Simulation(model, reduce_range=True)
    with pytest.raises(QatError, match="never calibrated"), sim.quantized():
        model(torch.zeros(1, 3, 64, 64))


def test_simulation_follows_onnx_runtime_int8(model_dir: Path, tmp_path: Path) -> None:
    """The simulated int8 model is closer to ORT's int8 than the fp32 model is."""
    ckpt, cal, par = _batches(model_dir)
    opts = QuantOptions(reduce_range=True)
    fp32 = export_fp32(ckpt, tmp_path / "fp32.onnx")
    ort = OnnxBackend(quantize_int8(fp32, tmp_path / "int8.onnx", cal, opts))
    model = ckpt.build_model().eval()
    fold_batchnorm(model)
    sim = Int8Simulation(model, reduce_range=True)
    sim.calibrate([torch.from_numpy(b) for b in cal])
    x = np.concatenate(par)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
        with sim.quantized():
            simulated = model(torch.from_numpy(x)).numpy()
    z_ort = ort.logits(x)
    assert np.abs(simulated - z_ort).mean() < 0.5 * np.abs(ref - z_ort).mean()


def test_qat_loss_hand_computed() -> None:
    z32 = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    z8 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    total, task, gap = qat_loss(z32, z8, y, temperature=0.5, consistency=2.0, label_smoothing=0.0)
    ce = -(np.log(np.exp(2) / (np.exp(2) + 1)) + np.log(np.e / (np.e + 1))) / 2
    assert task == pytest.approx(ce, rel=1e-5)
    assert gap == pytest.approx(1.0)  # one element off by 1, /0.5 squared = 4, mean over 4
    assert float(total) == pytest.approx(ce + 2.0, rel=1e-5)


def test_snapped_weights_survive_int8_rounding_unchanged(model_dir: Path) -> None:
    """After ``remove(snap=True)`` the fp32 weights are on the grid: rounding is a no-op."""
    model = Checkpoint.load(model_dir / "model.pt").build_model().eval()
    fold_batchnorm(model)
    sim = Int8Simulation(model, reduce_range=True)
    sim.round_weights()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        rounded = model(x)  # outside quantized(): only the weights are rounded
    sim.remove(snap=True)
    with torch.no_grad():
        torch.testing.assert_close(model(x), rounded)
    again = Int8Simulation(model, reduce_range=True)
    again.round_weights()
    with torch.no_grad():
        torch.testing.assert_close(model(x), rounded, atol=1e-5, rtol=1e-5)
    again.remove()
    raw = Checkpoint.load(model_dir / "model.pt").build_model().eval()
    fold_batchnorm(raw)
    with torch.no_grad():
        assert (raw(x) - rounded).abs().max() > 1e-4  # rounding did change the weights


def test_config_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(QatError):
        QatConfig(model=tmp_path, out=tmp_path, steps=0)
    with pytest.raises(QatError):
        QatConfig(model=tmp_path, out=tmp_path, lr=0.0)


def test_cli_qat_saves_a_recalibrated_checkpoint(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Checkpoint.load(model_dir / "model.pt")
    out = tmp_path / "qat"
    args = ["qat", "--model", str(model_dir), "--out", str(out), "--steps", "4"]
    args += ["--batch-size", "8", "--calibration-images", "8", "--recalibrate-every", "2"]
    assert main([*args, "--workers", "0", "--no-progress"]) == 0
    assert "checkpoint:" in capsys.readouterr().out
    tuned = Checkpoint.load(out / "model.pt")
    assert tuned.model_version != source.model_version
    assert tuned.labels == source.labels and tuned.preprocessing == source.preprocessing
    assert (tuned.training.qat or {})["source_version"] == source.model_version
    assert tuned.training.data == source.training.data  # export finds its val split
    history = [json.loads(line) for line in (out / "qat_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history] == [1, 2, 3, 4]
    assert all(np.isfinite(r["gap"]) and 0 <= r["agree"] <= 1 for r in history)
    saved = json.loads((out / "qat.json").read_text())
    assert saved["steps"] == 4 and isinstance(saved["reduce_range"], bool)
    assert (out / "metrics.json").is_file()
    # The saved weights are on the int8 grid: rounding them again changes nothing.
    model = tuned.build_model().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        plain = model(x)
        Int8Simulation(model, reduce_range=saved["reduce_range"]).round_weights()
        torch.testing.assert_close(model(x), plain, atol=1e-5, rtol=1e-5)
    text = write_model_card(out, tmp_path / "card" / "MODEL_CARD.md").read_text()
    assert f"--out {model_dir} --recipe finetune --epochs" in text  # qat's source run
    assert f"karung qat --model {model_dir} --out {out} --steps 4 --batch-size 8" in text
    assert f"cp {out / 'model.pt'} " in text
    assert "quantisation-aware fine-tuning:" in text


def test_cli_qat_refuses_a_checkpoint_without_training_config(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = Checkpoint.load(model_dir / "model.pt")
    bare = ckpt.with_updates(training=TrainingRecord())
    bare.save(tmp_path / "bare" / "model.pt")
    code = main(["qat", "--model", str(tmp_path / "bare"), "--out", str(tmp_path / "o")])
    assert code == 1
    assert "qat_error" in capsys.readouterr().err
