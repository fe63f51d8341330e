"""The ``karung score`` / ``karung info`` command-line contract, run as real subprocesses."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from imagegen import encode, textured

from karung.vision.checkpoint import Checkpoint
from karung.vision.labels import LABELS, Thresholds
from karung.vision.model import build_model
from karung.vision.preprocess import Preprocessing

KARUNG = [sys.executable, "-m", "karung.cli.main"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    ckpt = Checkpoint.from_model(
        build_model(len(LABELS), pretrained=False),
        LABELS,
        preprocessing=Preprocessing(input_size=64),
        thresholds=Thresholds(block=0.0, review=0.0),  # everything blocks: checkable decision
    )
    return ckpt.save(path)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(encode(textured(90, 70, seed=1), "JPEG"))
    (folder / "nested" / "b.png").write_bytes(encode(textured(50, 80, seed=2), "PNG"))
    (folder / "c.webp").write_bytes(encode(textured(64, 64, seed=3), "WEBP"))
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KARUNG, *args], capture_output=True, text=True, check=False)


def test_scores_a_folder(image_dir: Path, model_path: Path) -> None:
    result = run("score", str(image_dir), "--model", str(model_path))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(x["source"]).name for x in lines] == ["a.jpg", "c.webp", "b.png"]
    for line in lines:
        assert set(line) >= {"source", "sha256", "scores", "risk", "label", "model_version"}
        assert set(line["scores"]) == set(LABELS)
        assert sum(line["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert line["risk"] == pytest.approx(
            line["scores"]["bale"] + line["scores"]["sack"], abs=1e-5
        )
        assert line["decision"] == "block"
        assert line["sha256"] == hashlib.sha256(Path(line["source"]).read_bytes()).hexdigest()


def test_bad_file_reported_others_scored(image_dir: Path, model_path: Path) -> None:
    (image_dir / "evil.jpg").write_bytes(b"<html><body>not found</body></html>")
    (image_dir / "cut.jpg").write_bytes(encode(textured(200, 200), "JPEG")[:300])
    result = run(
        "score", str(image_dir), str(image_dir / "missing.jpg"), "--model", str(model_path)
    )
    assert result.returncode == 2
    lines = {Path(x["source"]).name: x for x in map(json.loads, result.stdout.splitlines())}
    assert lines["evil.jpg"]["error"]["code"] == "unsupported_format"
    assert lines["cut.jpg"]["error"]["code"] == "corrupt_image"
    assert lines["missing.jpg"]["error"]["code"] == "file_unreadable"
    assert {"a.jpg", "b.png", "c.webp"} <= {k for k, v in lines.items() if "scores" in v}


def test_table_format(image_dir: Path, model_path: Path) -> None:
    result = run("score", str(image_dir / "a.jpg"), "--model", str(model_path), "--format", "table")
    assert result.returncode == 0
    header, row = result.stdout.splitlines()
    assert header.split()[:3] == ["decision", "risk", "label"]
    assert row.startswith("block") and row.endswith("a.jpg")


def test_missing_model_is_a_clear_error(image_dir: Path, tmp_path: Path) -> None:
    result = run("score", str(image_dir), "--model", str(tmp_path / "nope.pt"))
    assert result.returncode == 1
    assert "no checkpoint" in result.stderr


def test_info(model_path: Path) -> None:
    result = run("info", "--model", str(model_path), "--json")
    assert result.returncode == 0, result.stdout
    facts = json.loads(result.stdout)
    assert facts["labels"] == "bale, sack, garment, other"
    assert facts["torch"].startswith("2.14.1") and facts["input_size"] == 64
