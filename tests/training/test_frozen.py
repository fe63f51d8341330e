"""The default recipe end to end: cached frozen features, linear head, real-negative thresholds."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from karung.training.features import FeatureCache, backbone_key, extract
from karung.training.head import fit_linear_head
from karung.training.headtrain import checkpoint_for
from karung.vision.model import build_model
from karung.vision.preprocess import Preprocessing

SIZE = 64


def _write_sets(root: Path, gen: Any) -> tuple[Path, Path]:
    """A 'synthetic' manifest (variant column) and a 'real' negatives manifest (none)."""
    synth, real = root / "synth", root / "real"
    synth.mkdir(parents=True)
    real.mkdir(parents=True)
    rows = []
    for li, label in enumerate(gen.labels):
        for i in range(14):
            name = f"{label}_{i:02d}.jpg"
            gen.make_image(label, 500 + li * 100 + i).save(synth / name, quality=90)
            split = "val" if i % 3 == 0 else "train"
            rows.append(
                {"file": name, "label": label, "split": split, "variant": f"{label}-v{i % 2}"}
            )
    _manifest(synth, rows, ["file", "label", "split", "variant"])
    real_rows = []
    for i in range(24):
        name = f"photo_{i:02d}.jpg"
        gen.make_image("garment", 9000 + i).save(real / name, quality=85)
        real_rows.append({"file": name, "label": "garment", "split": "val" if i % 2 else "train"})
    _manifest(real, real_rows, ["file", "label", "split"])
    return synth, real


def _manifest(folder: Path, rows: list[dict[str, str]], columns: list[str]) -> None:
    with (folder / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory: pytest.TempPathFactory, gen: Any) -> dict[str, Any]:
    from karung.training.trainer import train

    root = tmp_path_factory.mktemp("frozen")
    synth, real = _write_sets(root, gen)
    cache = root / "cache"
    cfg = gen.tiny_config(
        synth, root / "run", recipe="frozen", input_size=SIZE, feature_cache=str(cache)
    )
    cfg = type(cfg).from_dict({**cfg.to_dict(), "data": [str(synth), str(real)]})
    first = train(cfg)
    again = train(type(cfg).from_dict({**cfg.to_dict(), "out": str(root / "run2")}))
    return {"cfg": cfg, "first": first, "again": again, "cache": cache, "synth": synth}


def test_default_recipe_is_frozen_at_224() -> None:
    from karung.training.config import TrainConfig

    cfg = TrainConfig(data=("x",), out="y")
    assert cfg.recipe == "frozen" and cfg.input_size == 224


def test_frozen_run_writes_a_calibrated_checkpoint(frozen_run: dict[str, Any]) -> None:
    from karung.vision.checkpoint import Checkpoint

    first = frozen_run["first"]
    ckpt = Checkpoint.load(first.checkpoint)
    assert ckpt.preprocessing.input_size == SIZE
    assert ckpt.training.recipe == "frozen-imagenet-linear-head"
    assert ckpt.thresholds_calibrated
    cal = ckpt.training.calibration
    assert cal["thresholds_from"] == "real negatives"
    # The cuts were chosen on the 12 real val negatives: at most floor(rate * n) reach block.
    assert cal["thresholds"]["at_block"]["n"] == 12
    metrics = json.loads((first.checkpoint.parent / "metrics.json").read_text())
    assert metrics["real_val"]["n"] == 12
    assert {"real_false_alarms", "domain_gap", "leave_one_variant_out"} <= set(metrics["proxies"])
    lovo = metrics["proxies"]["leave_one_variant_out"]
    assert "skipped" in lovo or len(lovo["variants"]) >= 1
    # The backbone is ImageNet's, untouched: only the classifier differs from the pretrained net.
    pretrained = build_model(len(ckpt.labels), pretrained=True).state_dict()
    for name, tensor in ckpt.state_dict.items():
        if not name.startswith("classifier"):
            assert torch.equal(tensor, pretrained[name]), name


def test_retrain_reads_every_feature_from_the_cache(frozen_run: dict[str, Any]) -> None:
    first, again = frozen_run["first"], frozen_run["again"]
    assert first.metrics["timings"]["features_s"] >= 0
    cfg_first = json.loads((first.checkpoint.parent / "config.json").read_text())
    cfg_again = json.loads((again.checkpoint.parent / "config.json").read_text())
    assert cfg_first["resolved"]["features"]["computed"] == 80
    assert cfg_again["resolved"]["features"]["computed"] == 0
    assert cfg_again["resolved"]["features"]["cached"] == 80
    # Same data, same cache: the same model, bit for bit.
    from karung.vision.checkpoint import Checkpoint

    a, b = Checkpoint.load(first.checkpoint), Checkpoint.load(again.checkpoint)
    assert torch.equal(a.state_dict["classifier.1.weight"], b.state_dict["classifier.1.weight"])


def _pooled_reference(paths: list[Path], prep: Preprocessing) -> np.ndarray:
    """Pooled features by eager torch: the plain MobileNetV2 forward up to the pooling."""
    from karung.vision.decode import decode_image

    model = build_model(2, pretrained=True).eval()
    images = [
        decode_image(p.read_bytes(), max_bytes=1 << 24, max_pixels=1 << 26, target_size=SIZE)
        for p in paths
    ]
    with torch.no_grad():
        fmap = model.features(torch.from_numpy(prep.to_array(images)))
        return torch.nn.functional.adaptive_avg_pool2d(fmap, 1).flatten(1).numpy()


def test_cached_features_equal_the_eager_backbone(tmp_path: Path, gen: Any) -> None:
    prep = Preprocessing(input_size=SIZE)
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.jpg")
        gen.make_image("bale", 70 + i).save(paths[-1], quality=90)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    files = [str(p) for p in paths] + [str(tmp_path / "broken.jpg"), str(tmp_path / "gone.jpg")]
    cache = FeatureCache(tmp_path / "cache", backbone_key(prep))
    feats = extract(files, cache, prep, threads=2, progress=False)
    assert feats.ok.tolist() == [True] * 5 + [False, False]
    assert np.allclose(feats.x[:5], _pooled_reference(paths, prep), atol=1e-4)
    # A fresh cache object reads the shards back; another input size is another namespace.
    reread = extract(
        files, FeatureCache(tmp_path / "cache", backbone_key(prep)), prep, progress=False
    )
    assert reread.computed == 0 and reread.cached == 5
    assert np.array_equal(reread.x, feats.x)
    other = Preprocessing(input_size=SIZE + 32)
    assert backbone_key(other) != backbone_key(prep)
    assert len(FeatureCache(tmp_path / "cache", backbone_key(other))) == 0


def test_checkpoint_logits_equal_the_head_on_cached_features(tmp_path: Path, gen: Any) -> None:
    """The head folded into MobileNetV2's classifier scores images as it scored the features."""
    prep = Preprocessing(input_size=SIZE)
    paths = []
    for i, label in enumerate(gen.labels * 2):
        paths.append(tmp_path / f"{i}.jpg")
        gen.make_image(label, 300 + i).save(paths[-1], quality=90)
    feats = extract(
        [str(p) for p in paths],
        FeatureCache(tmp_path / "c", backbone_key(prep)),
        prep,
        progress=False,
    )
    head = fit_linear_head(feats.x, np.arange(8) % 4, 4, l2=0.1)
    ckpt = checkpoint_for(head, tuple(gen.labels), preprocessing=prep)
    from karung.vision.decode import decode_image

    images = [
        decode_image(p.read_bytes(), max_bytes=1 << 24, max_pixels=1 << 26, target_size=SIZE)
        for p in paths
    ]
    with torch.no_grad():
        logits = ckpt.build_model()(torch.from_numpy(prep.to_array(images))).numpy()
    assert np.allclose(logits, head.logits(feats.x), atol=1e-3)


def test_evaluate_reports_the_proxies(frozen_run: dict[str, Any], tmp_path: Path) -> None:
    from karung.cli import main

    real = frozen_run["synth"].parent / "real"
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(frozen_run["first"].checkpoint), "--proxies"]
    args += ["--data", str(frozen_run["synth"]), "--data", str(real), "--split", "val"]
    assert main([*args, "--out", str(out), "--no-progress", "--workers", "0"]) == 0
    body = json.loads((out / "metrics.json").read_text())
    alarms = body["models"][0]["metrics"]["real_false_alarms"]
    assert alarms["at_block"]["n"] == 12  # the real val negatives, scored by the model itself
    assert {"domain_gap", "leave_one_variant_out"} <= set(body["proxies"])
    text = (out / "report.md").read_text()
    assert "## Proxies for real-photo accuracy" in text and "real negative photos blocked" in text


def test_model_card_of_a_frozen_run(frozen_run: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    from karung.training.model_card import write_model_card

    run = frozen_run["first"].checkpoint.parent
    model_dir = tmp_path / "models" / "default"
    model_dir.mkdir(parents=True)
    shutil.copyfile(run / "model.pt", model_dir / "model.pt")
    text = write_model_card(run, model_dir / "MODEL_CARD.md").read_text()
    assert "--recipe frozen --input-size 64 --head-l2 0.1" in text
    assert "chosen on: real negatives" in text
    assert "expected real false-block rate:" in text and "95% CI" in text
    assert "## Proxies for real-photo accuracy" in text
    assert "| domain gap: linear probe synthetic vs real garments" in text
    assert "leave-one-variant-out synthetic AUC" in text or "skipped leave_one" in text
    assert "| bale |" in text  # synthetic decisions per label at the cuts
    assert "training (frozen recipe):" in text and "80 computed" in text
