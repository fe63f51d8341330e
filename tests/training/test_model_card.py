"""The model card generator and the inference benchmark, on the tiny model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from karung.training.card_commands import train_command
from karung.training.config import TrainConfig
from karung.training.inference_bench import BenchOptions, run_bench
from karung.training.model_card import write_model_card
from karung.vision.checkpoint import Checkpoint


def _fake_eval(path: Path, data: str, metrics: dict[str, object]) -> Path:
    path.mkdir(parents=True)
    body = {"data": [data], "models": [{"name": "model", "metrics": metrics}]}
    (path / "metrics.json").write_text(json.dumps(body))
    return path


def test_model_card_has_command_metrics_thresholds_and_limits(
    tiny_run: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "models" / "default"
    model_dir.mkdir(parents=True)
    shutil.copyfile(tiny_run / "model.pt", model_dir / "model.pt")
    synth = _fake_eval(
        tmp_path / "synth",
        "/data/synth",
        {"n": 500, "risk_roc_auc": 0.9954, "accuracy": 0.93, "ece": 0.012,
         "at_block": {"precision": 0.991, "recall": 0.87}, "at_review": {"recall": 0.96}},
    )  # fmt: skip
    real = _fake_eval(
        tmp_path / "real",
        "/data/cc0/heldout.csv",
        {"n": 1000, "safe_blocked_share": 0.004, "safe_review_or_worse_share": 0.031},
    )
    report = {"n": 1000, "max_abs_prob_diff": 0.4, "decision_agreement": 1.0, "passed": True}
    parity = {
        "fp32": report,
        "int8": {
            **report,
            "fallback": {"low": 0.1358, "high": 0.9744, "margin_log_odds": 1.89,
                         "n_tuning": 1000, "parity_rechecked_share": 0.109},
            "without_fallback": {**report, "decision_agreement": 0.983},
        },
    }  # fmt: skip
    (model_dir / "parity.json").write_text(json.dumps(parity))
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"batch": 64, "threads": 2, "rows": [
        {"name": "torch fp32 eager", "images_per_second": 40.0, "ratio": 1.0},
        {"name": "onnx int8 qdq", "images_per_second": 300.0, "ratio": 7.5},
    ]}))  # fmt: skip
    card = write_model_card(
        tiny_run, model_dir / "MODEL_CARD.md", synth_eval=synth, real_eval=real, bench=bench,
        synth_command="karung synth --out /data/synth --n 24000",
    )  # fmt: skip
    text = card.read_text()
    ckpt = Checkpoint.load(model_dir)
    assert "karung synth --out /data/synth --n 24000" in text
    assert f"karung train --data {ckpt.training.data[0]}" in text
    assert "--input-size 64" in text and "--epoch-images 96" in text and "--lr-head 0.01" in text
    assert "| synthetic val: risk ROC AUC | proxy only | 0.9954 |" in text
    assert "blocked | <= 1% | 0.40% |" in text and "review or worse | <= 5% | 3.10% |" in text
    assert f"risk >= {ckpt.thresholds.block:.4f}" in text
    assert "| onnx int8 qdq | 300.0 | 7.50x |" in text
    assert "ONNX int8 with its fp32 fallback parity vs torch fp32 on 1000" in text
    assert "risks in [0.1358, 0.9744]" in text and "10.90% of the parity images" in text
    assert "int8 alone agrees on 98.30%" in text
    assert "No real photo of a used-clothing bale" in text
    assert ckpt.model_version in text


def test_train_command_lists_only_non_defaults() -> None:
    cfg = TrainConfig(
        data=("/d/a", "/d/b"), out="runs/x", recipe="finetune", epochs=9, lr_head=0.01
    )
    assert train_command(cfg) == (
        "karung train --data /d/a --data /d/b --out runs/x --recipe finetune --epochs 9 "
        "--head-epochs 2 --unfreeze-from 14 --input-size 224 --batch-size 32 --epoch-images 0 "
        "--seed 0 --lr-head 0.01"
    )


def test_train_command_of_the_frozen_recipe() -> None:
    cfg = TrainConfig(data=("/d/a",), out="runs/x", head_l2=0.05, val_fraction=0.3)
    assert train_command(cfg) == (
        "karung train --data /d/a --out runs/x --recipe frozen --input-size 224 --head-l2 0.05 "
        "--block-rate 0.005 --review-rate 0.03 --val-fraction 0.3"
    )


def test_inference_bench_measures_every_backend(tiny_run: Path) -> None:
    ckpt = Checkpoint.load(tiny_run)
    data = (str(ckpt.training.data[0]),)  # real images of the tiny data set
    opts = BenchOptions(batch_size=4, seconds=0.3, threads=1, bf16=False, formats=(), data=data)
    rows = run_bench(ckpt, tiny_run, opts)
    names = [r.name for r in rows]
    assert names[0] == "torch fp32 eager" and rows[0].ratio == 1.0
    assert names == ["torch fp32 eager", "torch fp32 channels-last", "onnx fp32"]
    assert all(r.images_per_second > 0 for r in rows)
    assert next(r for r in rows if r.name == "onnx fp32").max_prob_diff < 1e-3


def test_reproduce_command_names_the_int8_search_when_the_file_used_it() -> None:
    from karung.training.card_commands import search_flag

    assert search_flag({"int8": {"mixed_precision": {"excluded": ["/GlobalAveragePool"]}}}) == (
        " --int8-search"
    )
    assert search_flag({"int8": {"passed": True}}) == ""
    assert search_flag(None) == ""
