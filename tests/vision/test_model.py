"""Checkpoint round trip, pretrained weights, and the Classifier contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from imagegen import textured

from karung.vision.checkpoint import Checkpoint
from karung.vision.classifier import Classifier, softmax
from karung.vision.errors import CheckpointError
from karung.vision.labels import LABELS, Decision, Thresholds
from karung.vision.model import build_model
from karung.vision.modeldir import ModelDir
from karung.vision.preprocess import Preprocessing
from karung.vision.pretrained import imagenet_weights_path
from karung.vision.training_record import TrainingRecord


@pytest.fixture(scope="module")
def checkpoint() -> Checkpoint:
    torch.manual_seed(0)
    model = build_model(len(LABELS), pretrained=True)
    return Checkpoint.from_model(
        model,
        LABELS,
        preprocessing=Preprocessing(input_size=64),
        temperature=1.5,
        thresholds=Thresholds(block=0.8, review=0.4),
        training=TrainingRecord(data=("data/x",), epochs_run=0, extra={"note": "test"}),
    )


def test_pretrained_weights_verified_and_loaded() -> None:
    path = imagenet_weights_path()
    assert path.name == "mobilenet_v2-b0353104.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(4, pretrained=True)
    first = "features.0.0.weight"
    assert torch.equal(model.state_dict()[first], state[first])
    assert model.state_dict()["classifier.1.weight"].shape == (4, 1280)


def test_checkpoint_round_trip(tmp_path: Path, checkpoint: Checkpoint) -> None:
    path = checkpoint.save(tmp_path / "run" / "model.pt")
    loaded = Checkpoint.load(tmp_path / "run")  # a directory resolves to model.pt
    assert loaded.labels == LABELS
    assert loaded.preprocessing == Preprocessing(input_size=64)
    assert loaded.temperature == 1.5
    assert loaded.thresholds == Thresholds(block=0.8, review=0.4)
    assert loaded.training == checkpoint.training
    assert loaded.training.val_fraction == 0.2 and loaded.training.extra == {"note": "test"}
    assert loaded.model_version == checkpoint.model_version
    assert loaded.model_version.startswith("mobilenet_v2-")
    for key, value in checkpoint.state_dict.items():
        assert torch.equal(loaded.state_dict[key], value)
    # Plain data only: loads under weights_only=True, no pickled classes.
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "karung-checkpoint" and raw["arch"] == "mobilenet_v2"


def test_version_tracks_weights(checkpoint: Checkpoint) -> None:
    state = {k: v.clone() for k, v in checkpoint.state_dict.items()}
    state["classifier.1.bias"] += 1.0
    other = Checkpoint(labels=LABELS, state_dict=state)
    assert other.model_version != checkpoint.model_version


@pytest.mark.parametrize("content", [b"", b"not a checkpoint"])
def test_bad_checkpoint_files(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError):
        Checkpoint.load(bad)


def test_foreign_dict_rejected(tmp_path: Path) -> None:
    torch.save({"state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a karung checkpoint"):
        Checkpoint.load(tmp_path / "x.pt")


def test_missing_path() -> None:
    with pytest.raises(CheckpointError):
        ModelDir.find("/nonexistent/model.pt")


def test_classifier_shapes_sum_and_determinism(checkpoint: Checkpoint) -> None:
    clf = Classifier(checkpoint, batch_size=3)
    images = [textured(80 + i * 10, 60, seed=i) for i in range(7)]
    probs = clf.predict_proba(images)
    assert probs.shape == (7, len(LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs, clf.predict_proba(images))
    # Batching does not change results.
    single = np.concatenate([clf.predict_proba([im]) for im in images])
    np.testing.assert_allclose(single, probs, atol=1e-5)


def test_score_risk_label_decision(checkpoint: Checkpoint) -> None:
    clf = Classifier(checkpoint)
    [result] = clf.score([textured(seed=3)])
    assert result.risk == pytest.approx(result.scores["bale"] + result.scores["sack"], abs=1e-6)
    assert result.label == max(result.scores, key=lambda k: result.scores[k])
    assert result.decision == checkpoint.thresholds.decide(result.risk)
    [forced] = clf.score([textured(seed=3)], thresholds=Thresholds(block=0.0, review=0.0))
    assert forced.decision is Decision.BLOCK


def test_softmax_temperature() -> None:
    logits = np.array([[2.0, 0.0, 0.0, 0.0]])
    sharp, flat = softmax(logits, 1.0), softmax(logits, 4.0)
    assert sharp[0, 0] > flat[0, 0] > 0.25
    np.testing.assert_allclose(softmax(logits * 3, 3.0), sharp, rtol=1e-6)


@pytest.mark.parametrize(
    ("risk", "expected"),
    [(0.95, Decision.BLOCK), (0.9, Decision.BLOCK), (0.6, Decision.REVIEW), (0.1, Decision.ALLOW)],
)
def test_thresholds_decide(risk: float, expected: Decision) -> None:
    assert Thresholds(block=0.9, review=0.5).decide(risk) is expected


def test_thresholds_validated() -> None:
    with pytest.raises(ValueError):
        Thresholds(block=0.3, review=0.5)


def test_preprocessing_uses_checkpoint_values() -> None:
    prep = Preprocessing(input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    from PIL import Image

    arr = prep.to_array([Image.new("RGB", (100, 50), (255, 0, 128))])
    assert arr.shape == (1, 3, 32, 32) and arr.dtype == np.float32
    np.testing.assert_allclose(arr[0, :, 5, 5], [1.0, -1.0, 128 / 127.5 - 1.0], atol=1e-5)
    assert Preprocessing.from_dict(prep.to_dict()) == prep


@pytest.mark.parametrize(
    ("mean", "std"),
    [((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), ((0.1, 0.9, 0.3), (2.0, 0.05, 1))],
)
def test_table_normalisation_is_bit_identical_to_float_arithmetic(
    mean: tuple[float, float, float], std: tuple[float, float, float]
) -> None:
    """normalize() looks values up in per-channel tables; the reference converts and scales
    every pixel. Every byte value of every channel must give the same float32, bit for bit."""
    prep = Preprocessing(input_size=16, mean=mean, std=std)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    pixels[1].reshape(-1, 3)[:256] = np.arange(256, dtype=np.uint8)[:, None]  # all 256 values
    scaled_mean = np.asarray(mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(std, dtype=np.float32) * 255.0)
    want = ((pixels.astype(np.float32) - scaled_mean) * inv_std).transpose(0, 3, 1, 2)
    got = prep.normalize(pixels)
    assert got.dtype == np.float32 and got.shape == (5, 3, 16, 16) and got.flags.c_contiguous
    assert np.array_equal(got.view(np.uint32), np.ascontiguousarray(want).view(np.uint32))


def test_to_array_against_hand_computed_pixels() -> None:
    """Solid colours survive any resize filter, and a half-red, half-blue image keeps pure
    columns away from the seam, so the expected floats are ``(v / 255 - mean) / std``
    computed here by hand, independently of the library's tables."""
    from PIL import Image

    prep = Preprocessing(input_size=24)
    halves = Image.new("RGB", (96, 48), (255, 0, 0))
    halves.paste((0, 0, 255), (48, 0, 96, 48))
    images = [Image.new("RGB", (60, 40), (10 * i, 200, 30)) for i in range(3)] + [halves]
    pixels = prep.to_pixels(images)
    assert pixels.shape == (4, 24, 24, 3) and pixels.dtype == np.uint8
    arr = prep.to_array(images)
    assert arr.shape == (4, 3, 24, 24) and arr.dtype == np.float32

    def expected(rgb: tuple[int, int, int]) -> list[float]:
        return [(v / 255 - m) / s for v, m, s in zip(rgb, prep.mean, prep.std, strict=True)]

    for i in range(3):
        want = np.array(expected((10 * i, 200, 30)), dtype=np.float64)[:, None, None]
        np.testing.assert_allclose(arr[i], np.broadcast_to(want, (3, 24, 24)), atol=1e-5)
    np.testing.assert_allclose(
        arr[3][:, :, :8],
        np.broadcast_to(np.array(expected((255, 0, 0)))[:, None, None], (3, 24, 8)),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        arr[3][:, :, -8:],
        np.broadcast_to(np.array(expected((0, 0, 255)))[:, None, None], (3, 24, 8)),
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="uint8"):
        prep.normalize(pixels.astype(np.float32))
    with pytest.raises(ValueError, match="empty"):
        prep.to_pixels([])
