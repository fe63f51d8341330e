"""The split forward pass and the stage freezing rules."""

from __future__ import annotations

import pytest
import torch

from karung.training.config import TrainConfig
from karung.training.frozen import FrozenPrefix
from karung.training.stages import forward, freeze_for, plan_stages, set_train_mode
from karung.vision.model import backbone_blocks, build_model, head


def test_split_forward_equals_model_forward() -> None:
    torch.manual_seed(0)
    model = build_model(4, pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    for frozen in (0, 7, 14, 19):
        out = forward(model, x, frozen)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        assert out.requires_grad  # the head is always trainable


@pytest.mark.parametrize("frozen", [14, 19])
def test_onnx_prefix_matches_torch(frozen: int) -> None:
    torch.manual_seed(1)
    model = build_model(4, pretrained=False).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, as after pre-training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 3, 64, 64)
    prefix = FrozenPrefix(model, frozen, 64, threads=1)
    with torch.no_grad():
        torch.testing.assert_close(
            forward(model, x, frozen, prefix), model(x), rtol=1e-4, atol=1e-4
        )
    with pytest.raises(ValueError, match="prefix covers"):
        forward(model, x, 11, prefix)


def test_stages_freeze_and_unfreeze() -> None:
    cfg = TrainConfig(data=("-",), out="-", epochs=5, head_epochs=2, unfreeze_from=14)
    stage1, stage2 = plan_stages(cfg)
    assert (stage1.epochs, stage1.frozen_blocks, stage2.epochs, stage2.frozen_blocks) == (
        2,
        19,
        3,
        14,
    )
    model = build_model(4, pretrained=False)
    groups = freeze_for(model, stage1)
    assert len(groups) == 1 and all(p.requires_grad for p in head(model).parameters())
    assert not any(p.requires_grad for b in backbone_blocks(model) for p in b.parameters())
    groups = freeze_for(model, stage2)
    blocks = backbone_blocks(model)
    assert all(p.requires_grad for b in blocks[14:] for p in b.parameters())
    assert not any(p.requires_grad for b in blocks[:14] for p in b.parameters())
    assert [g["lr"] for g in groups] == [cfg.lr_head / 3, cfg.lr_backbone]
    set_train_mode(model, 14)
    assert not blocks[13].training and blocks[14].training and head(model).training


def test_frozen_blocks_get_no_gradient() -> None:
    model = build_model(4, pretrained=False)
    freeze_for(model, plan_stages(TrainConfig(data=("-",), out="-"))[1])
    set_train_mode(model, 14)
    out = forward(model, torch.randn(2, 3, 64, 64), 14)
    out.sum().backward()
    blocks = backbone_blocks(model)
    assert all(p.grad is None for p in blocks[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in blocks[18].parameters())
