"""A tiny end-to-end training run: the loss falls, calibration fills the checkpoint, the
checkpoint scores through :class:`Classifier`, and ``--resume`` continues an interrupted run."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from karung.training import trainer
from karung.training.calibrate import nll
from karung.training.config import TrainConfig
from karung.training.data import load_samples, select
from karung.training.errors import ConfigError, ResumeError
from karung.training.evaluate import predict
from karung.vision.checkpoint import Checkpoint
from karung.vision.classifier import Classifier
from karung.vision.labels import Thresholds
from karung.vision.model import build_model


def _history(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_loss_falls_and_checkpoint_scores(tiny_run: Path, tiny_data: Path, gen: Any) -> None:
    history = _history(tiny_run)
    assert [h["stage"] for h in history] == [1, 2]
    # The untrained network (same seed, fresh head) sits at about ln(4) on validation.
    trainer.seed_everything(0)
    fresh = Checkpoint.from_model(
        build_model(4), gen.labels, preprocessing=Checkpoint.load(tiny_run).preprocessing
    )
    val = select(load_samples([tiny_data], gen.labels), "val")
    before = predict(fresh, val, workers=0, progress=False)
    loss_before = -float(np.mean(np.log(before.probs[np.arange(len(val)), before.labels])))
    assert loss_before == pytest.approx(math.log(4), abs=0.1)
    assert history[-1]["val_loss"] < 0.7 * loss_before

    config = json.loads((tiny_run / "config.json").read_text())
    assert config["input_size"] == 64 and config["resolved"]["precision"]["use_bf16"] is False

    ckpt = Checkpoint.load(tiny_run)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert ckpt.thresholds_calibrated
    assert ckpt.thresholds == Thresholds(**metrics["thresholds"])
    assert ckpt.temperature == pytest.approx(metrics["calibration"]["temperature"])
    assert ckpt.training.data == (str(tiny_data),)
    assert metrics["risk_roc_auc"] > 0.9

    clf = Classifier.from_path(tiny_run)
    scores = clf.score([gen.make_image("bale", 7001), gen.make_image("garment", 7002)])
    assert scores[0].risk > scores[1].risk
    assert scores[0].decision == ckpt.thresholds.decide(scores[0].risk)
    assert abs(sum(scores[1].scores.values()) - 1.0) < 1e-5


def test_resume_continues_an_interrupted_run(
    tiny_data: Path, tiny_run: Path, tmp_path: Path, gen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = gen.tiny_config(tiny_data, tmp_path / "run")
    real_save = trainer._save_state

    def save_then_crash(*args: Any, **kwargs: Any) -> None:
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # the power goes out right after epoch 1 was saved

    monkeypatch.setattr(trainer, "_save_state", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg)
    monkeypatch.undo()
    assert len(_history(cfg.out_dir)) == 1 and not (cfg.out_dir / "model.pt").exists()

    with pytest.raises(ResumeError, match="lr_head"):
        trainer.train(dataclasses.replace(cfg, resume=True, lr_head=0.5))
    trainer.train(dataclasses.replace(cfg, resume=True))
    resumed = _history(cfg.out_dir)
    assert [h["epoch"] for h in resumed] == [1, 2]
    # Same seed, same data: the resumed run retraces the uninterrupted one.
    straight = _history(tiny_run)
    assert resumed[1]["val_loss"] == pytest.approx(straight[1]["val_loss"], rel=1e-3)
    assert Checkpoint.load(cfg.out_dir).thresholds_calibrated


def test_config_validation_and_cli_parsing(tmp_path: Path) -> None:
    import argparse

    from karung.cli import train as train_cli
    from karung.training.config import from_args

    parser = argparse.ArgumentParser()
    train_cli.configure(parser)
    args = parser.parse_args(["--data", "a", "--data", "b", "--out", "runs/x", "--epochs", "5"])
    cfg = from_args(args)
    assert cfg.epochs == 5 and len(cfg.data) == 2 and Path(cfg.data[0]).is_absolute()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="head_epochs"):
        TrainConfig(data=("a",), out="o", epochs=1, head_epochs=2)
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(data=("a",), out="o", precision="fp8")


def test_nll_of_uniform_logits_is_log_k() -> None:
    assert nll(np.zeros((3, 4)), np.array([0, 1, 2]), 1.0) == pytest.approx(math.log(4))


def test_time_budget_estimates_and_stops(tiny_data: Path, tmp_path: Path, gen: Any) -> None:
    history = [{"stage": 1, "epoch_s": 10.0}, {"stage": 1, "epoch_s": 12.0}]
    assert trainer.next_epoch_estimate(history, 1) == 12.0
    assert trainer.next_epoch_estimate(history, 2) == 24.0  # stage 2 costs more
    assert trainer.next_epoch_estimate([], 1) == 0.0
    assert trainer.Clock(None).allows(1e9)
    assert not trainer.Clock(deadline=0.0).allows(1.0)
    # A budget that is already spent: the first epoch still runs, then calibration.
    cfg = gen.tiny_config(tiny_data, tmp_path / "run", max_minutes=0.001)
    trainer.train(cfg)
    assert len(_history(cfg.out_dir)) == 1
    assert Checkpoint.load(cfg.out_dir).thresholds_calibrated
