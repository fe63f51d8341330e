"""``karung train``'s engine: two-stage fine-tuning, early stopping, resume, calibration.

A run directory holds ``config.json`` (resolved configuration), ``history.jsonl`` (one metrics
line per epoch), ``state.pt`` (everything ``--resume`` needs), ``best_weights.pt`` and, when
training ends, ``model.pt`` (the calibrated checkpoint) and ``metrics.json``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from karung.training.augment import EvalTransform, train_transform
from karung.training.config import TrainConfig
from karung.training.data import label_counts, split_samples
from karung.training.errors import ResumeError
from karung.training.frozen import FrozenPrefix
from karung.training.loader import ImageDataset, balanced_sampler, make_loader
from karung.training.loop import EpochStats, cosine_with_warmup, score_batches, train_one_epoch
from karung.training.precision import choose_precision
from karung.training.stages import Stage, freeze_for, plan_stages
from karung.training.validation import epoch_metrics, finalize, val_subset
from karung.vision.model import build_model
from karung.vision.modeldir import ModelDir
from karung.vision.preprocess import Preprocessing


@dataclass
class RunState:
    """Progress of a run, saved after every epoch so ``--resume`` can continue it."""

    stage_index: int = 0
    epoch_in_stage: int = 0
    global_epoch: int = 0
    best: tuple[float, float] = (float("-inf"), float("inf"))
    best_epoch: int = -1
    stale_epochs: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainResult:
    """Where the trained checkpoint is and how it did on validation."""

    checkpoint: Path
    metrics: dict[str, Any]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (the samplers get their own per-epoch seeds)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def improves(candidate: tuple[float, float], best: tuple[float, float]) -> bool:
    """Model selection: higher risk ROC AUC wins; within 1e-4 of it, lower validation loss.

    AUC saturates near 1.0 on easy validation sets, where the loss still separates models; a
    ``nan`` AUC (validation without a risky or a safe class) falls back to the loss alone.
    """
    auc, loss = candidate
    best_auc, best_loss = best
    if math.isnan(auc):
        return loss < best_loss
    if auc > best_auc + 1e-4:
        return True
    return auc >= best_auc - 1e-4 and loss < best_loss


def train(cfg: TrainConfig) -> TrainResult:
    """Run the configured recipe and return the calibrated checkpoint's path."""
    if cfg.recipe == "frozen":
        from karung.training.headtrain import train_frozen

        path, metrics = train_frozen(cfg)
        return TrainResult(path, metrics)
    return train_finetune(cfg)


def train_finetune(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) the two-stage fine-tuning recipe and return the calibrated checkpoint."""
    started = time.perf_counter()
    torch.set_num_threads(cfg.intra_op_threads)
    seed_everything(cfg.seed)
    train_s, val_s = split_samples(cfg.data, cfg.labels, cfg.val_fraction)
    prep = Preprocessing(input_size=cfg.input_size)
    model = build_model(len(cfg.labels), pretrained=cfg.pretrained)
    stages = plan_stages(cfg)
    state = _load_state(cfg, model) if cfg.resume else RunState()
    precision = choose_precision(cfg.precision, model, prep.input_size, stages[-1].frozen_blocks)
    counts = {"train": label_counts(train_s, cfg.labels), "val": label_counts(val_s, cfg.labels)}
    cfg.save(
        extra={"precision": precision, "label_counts": counts, "threads": cfg.intra_op_threads}
    )
    bf16 = precision["use_bf16"]
    train_ds = ImageDataset(train_s, train_transform(prep, cfg.augment), prep.input_size)
    gen = torch.Generator()
    sampler = balanced_sampler([s.label for s in train_s], cfg.epoch_images or len(train_s), gen)
    train_loader = make_loader(
        train_ds, batch_size=cfg.batch_size, workers=cfg.workers, sampler=sampler, seed=cfg.seed
    )
    val_ds = ImageDataset(
        val_subset(val_s, cfg.val_images, cfg.seed), EvalTransform(prep), prep.input_size
    )
    loaders = _Loaders(train_loader, gen, make_loader(val_ds, batch_size=64, workers=cfg.workers))
    clock = Clock(started + cfg.max_minutes * 60 if cfg.max_minutes else None)
    for si in range(state.stage_index, len(stages)):
        _run_stage(cfg, model, stages[si], si, state, loaders, bf16, clock)
    model.load_state_dict(torch.load(ModelDir(cfg.out_dir).best_weights, weights_only=True))
    full_val = ImageDataset(val_s, EvalTransform(prep), prep.input_size)
    last = stages[-1].frozen_blocks
    scored = score_batches(
        model,
        make_loader(full_val, batch_size=64, workers=cfg.workers),
        frozen_blocks=last,
        prefix=_prefix(cfg, model, last),
    )
    meta = _metadata(cfg, state, precision, counts)
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    path, metrics = finalize(cfg, model, prep, scored, meta)
    return TrainResult(path, metrics)


@dataclass(frozen=True)
class Clock:
    """The wall-time budget of a run (``--max-minutes``); ``deadline`` is perf_counter based."""

    deadline: float | None
    reserve_s: float = 120.0  # final validation, calibration and saving

    def allows(self, next_epoch_s: float) -> bool:
        """Whether an epoch of ``next_epoch_s`` seconds still fits before the deadline."""
        if self.deadline is None:
            return True
        return time.perf_counter() + next_epoch_s + self.reserve_s <= self.deadline


def next_epoch_estimate(history: list[dict[str, Any]], stage: int) -> float:
    """Seconds the next epoch of ``stage`` will take, judged from the epochs already run.

    A stage's first epoch is guessed at twice the previous stage's last one (stage 2 also
    backpropagates through backbone blocks); the very first epoch always runs.
    """
    same = [row for row in history if row["stage"] == stage]
    if same:
        return float(same[-1]["epoch_s"])
    return 2.0 * float(history[-1]["epoch_s"]) if history else 0.0


def _prefix(cfg: TrainConfig, model: nn.Module, frozen_blocks: int) -> FrozenPrefix | None:
    """The ORT session of the frozen blocks, or None (torch runs them) when disabled."""
    if cfg.frozen_engine != "onnx" or frozen_blocks == 0:
        return None
    return FrozenPrefix(model, frozen_blocks, cfg.input_size, cfg.intra_op_threads)


@dataclass(frozen=True)
class _Loaders:
    """Built once per run so the decode workers persist across epochs and stages."""

    train: DataLoader[Any]
    generator: torch.Generator
    val: DataLoader[Any]

    @property
    def epoch_images(self) -> int:
        sampler = self.train.sampler
        return len(sampler)  # type: ignore[arg-type]


def _run_stage(
    cfg: TrainConfig,
    model: nn.Module,
    stage: Stage,
    stage_index: int,
    state: RunState,
    loaders: _Loaders,
    bf16: bool,
    clock: Clock,
) -> None:
    """Train one stage epoch by epoch, validating, checkpointing and maybe stopping early."""
    prefix = _prefix(cfg, model, stage.frozen_blocks)
    optimizer = torch.optim.AdamW(freeze_for(model, stage), weight_decay=cfg.weight_decay)
    total = len(loaders.train) * stage.epochs
    warmup = max(1, int(total * cfg.warmup_fraction))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total, warmup))
    if state.stage_index == stage_index and state.epoch_in_stage > 0:
        _restore_optimizer(cfg, optimizer, scheduler)
    else:
        state.stage_index, state.epoch_in_stage, state.stale_epochs = stage_index, 0, 0
    while state.epoch_in_stage < stage.epochs and state.stale_epochs < cfg.patience:
        # The first epoch always runs: a run must produce a model.
        if state.history and not clock.allows(next_epoch_estimate(state.history, stage.number)):
            tqdm.write(f"time budget: no room for another epoch; stage {stage.number} ends")
            break
        # Re-seeding per epoch makes the draw of a resumed epoch equal to the original one.
        loaders.generator.manual_seed(cfg.seed * 100_003 + state.global_epoch)
        desc = f"epoch {state.global_epoch + 1}/{cfg.epochs} stage {stage.number}"
        with tqdm(
            total=loaders.epoch_images, desc=desc, unit="img", disable=not cfg.progress
        ) as bar:
            stats = train_one_epoch(
                model,
                loaders.train,
                optimizer,
                scheduler,
                frozen_blocks=stage.frozen_blocks,
                label_smoothing=cfg.label_smoothing,
                bf16=bf16,
                prefix=prefix,
                progress=bar,
            )
        _after_epoch(cfg, model, stage, state, stats, loaders.val, bf16, prefix)
        _save_state(cfg, model, optimizer, scheduler, state)
    if state.stale_epochs >= cfg.patience:
        tqdm.write(f"early stop of stage {stage.number}: {state.stale_epochs} epochs without gain")
    state.stage_index, state.epoch_in_stage, state.stale_epochs = stage_index + 1, 0, 0


def _after_epoch(
    cfg: TrainConfig,
    model: nn.Module,
    stage: Stage,
    state: RunState,
    stats: EpochStats,
    val_loader: Any,
    bf16: bool,
    prefix: FrozenPrefix | None,
) -> dict[str, Any]:
    """Validate, keep the best weights, log one metrics line and advance the counters."""
    start = time.perf_counter()
    scored = score_batches(
        model, val_loader, bf16=bf16, frozen_blocks=stage.frozen_blocks, prefix=prefix
    )
    val = epoch_metrics(scored, cfg.labels)
    state.global_epoch += 1
    state.epoch_in_stage += 1
    state.seconds += stats.seconds + time.perf_counter() - start
    key = (val["risk_roc_auc"], val["val_loss"])
    improved = improves(key, state.best)
    if improved:
        state.best, state.best_epoch, state.stale_epochs = key, state.global_epoch, 0
        torch.save(model.state_dict(), ModelDir(cfg.out_dir).best_weights)
    else:
        state.stale_epochs += 1
    row = {
        "epoch": state.global_epoch,
        "stage": stage.number,
        "train_loss": stats.loss,
        "train_acc": stats.accuracy,
        "train_img_s": stats.images_per_second,
        "unreadable": stats.unreadable,
        **val,
        "best": improved,
        "elapsed_s": state.seconds,
        "epoch_s": stats.seconds + time.perf_counter() - start,
    }
    state.history.append(row)
    with ModelDir(cfg.out_dir).history.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    tqdm.write(_metrics_line(row, cfg.epochs))
    return row


def _metrics_line(row: dict[str, Any], epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs} stage {row['stage']} "
        f"train_loss {row['train_loss']:.4f} train_acc {row['train_acc']:.3f} "
        f"val_loss {row['val_loss']:.4f} val_acc {row['val_acc']:.3f} "
        f"risk_auc {row['risk_roc_auc']:.4f} {row['train_img_s']:.1f} img/s "
        f"elapsed {row['elapsed_s'] / 60:.1f} min{' *best*' if row['best'] else ''}"
    )


def _save_state(
    cfg: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: RunState,
) -> None:
    payload = {
        "config": cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "run": {**state.__dict__, "best": list(state.best)},
    }
    state_file = ModelDir(cfg.out_dir).state
    tmp = state_file.with_name(state_file.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(state_file)


def _read_state(cfg: TrainConfig) -> dict[str, Any]:
    path = ModelDir(cfg.out_dir).state
    if not path.is_file():
        raise ResumeError(f"--resume: no {path.name} in {cfg.out_dir}")
    payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return payload


def _load_state(cfg: TrainConfig, model: nn.Module) -> RunState:
    """Restore model weights, RNG and counters of an interrupted run in ``cfg.out``."""
    payload = _read_state(cfg)
    saved = TrainConfig.from_dict(payload["config"])
    diff = cfg.resume_mismatch(saved)
    if diff:
        raise ResumeError(f"--resume: options differ from the interrupted run: {', '.join(diff)}")
    model.load_state_dict(payload["model"])
    torch.set_rng_state(payload["torch_rng"])
    run = dict(payload["run"])
    run["best"] = tuple(run["best"])
    state = RunState(**run)
    tqdm.write(f"resuming at epoch {state.global_epoch + 1}/{cfg.epochs}")
    return state


def _restore_optimizer(
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> None:
    payload = _read_state(cfg)
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])


def _metadata(
    cfg: TrainConfig, state: RunState, precision: dict[str, Any], counts: dict[str, Any]
) -> dict[str, Any]:
    """JSON-able facts stored inside the checkpoint (export finds its calibration data here)."""
    return {
        "run_dir": str(cfg.out_dir.resolve()),
        "data": list(cfg.data),
        "val_fraction": cfg.val_fraction,
        "config": cfg.to_dict(),
        "label_counts": counts,
        "precision": precision,
        "epochs_run": state.global_epoch,
        "best_epoch": state.best_epoch,
        "train_seconds": round(state.seconds, 1),
        "torch": str(torch.__version__),
    }
