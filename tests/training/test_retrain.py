"""``karung retrain``'s pieces: the paired-bootstrap gate, the shipped base set, lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from karung.training.retrain.base import BaseSet, BaseSetError, load_base, save_base
from karung.training.retrain.compare import GatePolicy, Scored, compare
from karung.training.retrain.encoder import backbone_digest
from karung.vision.checkpoint import Checkpoint
from karung.vision.lineage import (
    Lineage,
    content_digest,
    mark_promoted,
    read_lineage,
    write_lineage,
)
from karung.vision.model import build_model

LABELS = ("bale", "sack", "garment", "other")


def separated(n_pos: int, n_neg: int, gap: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pos = np.concatenate([np.ones(n_pos, bool), np.zeros(n_neg, bool)])
    risk = np.clip(rng.normal(0.3, 0.15, pos.size) + gap * pos, 0, 1)
    return risk, pos


def test_the_same_model_passes_and_a_worse_one_is_refused() -> None:
    risk, pos = separated(40, 200, 0.4, 0)
    champ = Scored(risk, block=0.8, review=0.5)
    assert compare(champ, champ, pos).passed
    noise = np.random.default_rng(1).uniform(0, 1, risk.size)
    worse = compare(champ, Scored(noise, block=0.8, review=0.5), pos, GatePolicy(rounds=300))
    assert not worse.passed
    failed = {m.metric for m in worse.metrics if not m.passed}
    assert "auc" in failed and any("auc" in r for r in worse.reasons())


def test_a_challenger_that_blocks_more_honest_sellers_is_refused() -> None:
    risk, pos = separated(40, 400, 0.4, 2)
    champ = Scored(risk, block=0.9, review=0.5)
    trigger_happy = Scored(risk, block=0.5, review=0.5)
    result = compare(champ, trigger_happy, pos, GatePolicy(rounds=300))
    fbr = next(m for m in result.metrics if m.metric == "false_block_rate")
    assert fbr.challenger > fbr.champion and not fbr.passed and not result.passed


def test_without_positives_nothing_can_be_judged() -> None:
    risk = np.linspace(0, 1, 20)
    result = compare(Scored(risk, 0.9, 0.5), Scored(risk, 0.9, 0.5), np.zeros(20, bool))
    assert not result.passed and result.reasons()


def tiny_checkpoint(seed: int) -> Checkpoint:
    torch.manual_seed(seed)
    return Checkpoint.from_model(build_model(4, pretrained=False), LABELS)


def test_base_set_round_trip_and_backbone_check(tmp_path: Path) -> None:
    ckpt = tiny_checkpoint(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 6, (50, 1280)).astype(np.float32)
    base = BaseSet(
        x=x,
        y=rng.integers(0, 4, 50),
        val=rng.uniform(size=50) < 0.3,
        real=rng.uniform(size=50) < 0.5,
        meta={"backbone": backbone_digest(ckpt), "labels": list(LABELS), "synth_seed": 0},
    )
    path = save_base(tmp_path / "base.npz", base)
    back = load_base(path, ckpt)
    assert np.abs(back.x - x).max() <= 6 / 255 / 2 + 1e-6  # uint8 rounding, per dimension
    assert (
        (back.y == base.y).all() and (back.val == base.val).all() and back.meta["synth_seed"] == 0
    )
    # Same head, other backbone: refused. Other head, same backbone: accepted.
    with pytest.raises(BaseSetError, match="another backbone"):
        load_base(path, tiny_checkpoint(1))
    state = dict(ckpt.state_dict)
    state["classifier.1.bias"] = torch.ones(4)
    assert load_base(path, ckpt.with_updates(state_dict=state)).size == 50


def test_lineage_round_trip_and_promotion(tmp_path: Path) -> None:
    assert read_lineage(tmp_path) is None
    assert content_digest(["b", "a", "a"]) == content_digest(["a", "b"])
    write_lineage(tmp_path, Lineage("v2", parent_version="v1", parent_path="/m/v1"))
    marked = mark_promoted(
        tmp_path / "model.pt", "ml-eng", "2026-12-06T10:00:00+00:00", forced=False
    )
    again = read_lineage(tmp_path)
    assert again == marked and again.promoted and again.promoted_by == "ml-eng"
    assert again.parent_version == "v1"
