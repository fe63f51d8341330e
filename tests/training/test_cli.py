"""The command lines: score decisions follow stored thresholds; evaluate reports."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from karung.cli.main import main
from karung.vision.checkpoint import Checkpoint
from karung.vision.classifier import Classifier
from karung.vision.labels import Thresholds

KARUNG = str(Path(sys.executable).parent / "karung")


def _blend(gen: Any, a: str, b: str, share: float, seed: int) -> Image.Image:
    return Image.blend(gen.make_image(a, seed), gen.make_image(b, seed + 1), share)


def test_score_decisions_follow_the_stored_thresholds(
    tiny_run: Path, gen: Any, tmp_path: Path
) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    for i, share in enumerate(np.linspace(0.0, 1.0, 9)):
        _blend(gen, "bale", "garment", float(share), 300 + i).save(images / f"{i}.png")
    clf = Classifier.from_path(tiny_run)
    risks = np.sort([s.risk for s in clf.score([Image.open(p) for p in sorted(images.iterdir())])])
    gaps = [(risks[i + 1] - risks[i], i) for i in range(len(risks) - 1)]
    wide = sorted(i for gap, i in gaps if gap > 1e-3)
    assert len(wide) >= 2, f"need three separable risk levels, got {risks}"
    # Cut in the middle of the widest-apart gaps, far from any image's risk.
    low, high = wide[0], wide[-1]
    cut = Thresholds(
        block=float((risks[high] + risks[high + 1]) / 2),
        review=float((risks[low] + risks[low + 1]) / 2),
    )
    custom = tmp_path / "custom.pt"
    Checkpoint.load(tiny_run).with_updates(thresholds=cut, thresholds_calibrated=True).save(custom)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")

    result = subprocess.run(
        [KARUNG, "score", str(images), "--model", str(custom), "--backend", "torch"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr  # one bad file, the rest scored
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    scored = [line for line in lines if "error" not in line]
    assert len(scored) == 9
    assert [line["error"]["code"] for line in lines if "error" in line] == ["corrupt_image"]
    for line in scored:
        assert line["decision"] == cut.decide(line["risk"])
    assert {line["decision"] for line in scored} == {"block", "review", "allow"}


def test_evaluate_garment_only_manifest_with_absolute_paths(
    tiny_run: Path, gen: Any, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = []
    for i in range(10):
        gen.make_image("garment", 500 + i).save(photos / f"g{i}.jpg")
        rows.append({"file": str(photos / f"g{i}.jpg"), "label": "garment"})
    manifest_dir = tmp_path / "heldout"
    manifest_dir.mkdir()
    with (manifest_dir / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["file", "label"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report"
    code = main(
        ["evaluate", "--model", str(tiny_run), "--data", str(manifest_dir), "--out", str(out),
         "--workers", "0", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())["models"][0]["metrics"]
    assert metrics["n"] == 10 and not metrics["both_classes"]
    assert "risk_roc_auc" not in metrics
    assert 0.0 <= metrics["safe_blocked_share"] <= metrics["safe_review_or_worse_share"] <= 1.0
    report = (out / "report.md").read_text()
    assert "safe images blocked" in report and not (out / "roc.png").exists()


def test_evaluate_compare_puts_two_models_side_by_side(
    tiny_run: Path, tiny_data: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.pt"
    ckpt = Checkpoint.load(tiny_run)
    ckpt.with_updates(temperature=ckpt.temperature * 2, model_version="other").save(other)
    out = tmp_path / "cmp"
    code = main(
        ["evaluate", "--model", str(tiny_run), "--compare", str(other), "--data", str(tiny_data),
         "--split", "val", "--out", str(out), "--workers", "0", "--no-progress"]
    )  # fmt: skip
    assert code == 0
    body = json.loads((out / "metrics.json").read_text())
    assert [m["model_version"] for m in body["models"]] == [ckpt.model_version, "other"]
    assert body["images"] == 24
    first, second = (m["metrics"] for m in body["models"])
    # Temperature changes calibration, never the ranking.
    assert first["risk_roc_auc"] == second["risk_roc_auc"]
    assert first["ece"] != second["ece"]
    plots = ["roc", "pr", "confusion", "per_label", "reliability", "risk_hist"]
    plots += ["worst_false_positives_0", "worst_false_negatives_1"]
    for name in (f"{p}.png" for p in plots):
        assert (out / name).stat().st_size > 1000, name
    assert "| risk ROC AUC |" in (out / "report.md").read_text()
