"""The contract every inference backend must pass, parametrised over the backends.

Torch eager (the reference), the ONNX fp32 export, the plain int8 export and int8 with its
fp32 fallback band, all built here from one small checkpoint (the ImageNet backbone, a random
head, 64x64 inputs): the same interface (``name``, ``logits`` of shape ``(N, labels)`` in
float32), the same labels through a classifier, the same decisions as torch (fp32 and the
guarded int8; plain int8 only promises risks within a tolerance: the close calls it flips are
what the fallback band exists for), and a typed :class:`InvalidBatch` on input that is not a
batch of images.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from imagegen import textured
from serve.servekit import jpeg

from karung.training.export_job import ExportJob, run_export
from karung.training.fallback_fit import FallbackOptions
from karung.vision.backends import InferenceBackend, TorchBackend
from karung.vision.checkpoint import Checkpoint
from karung.vision.classifier import Classifier
from karung.vision.errors import InvalidBatch
from karung.vision.fallback import FallbackBackend
from karung.vision.labels import LABELS, Thresholds
from karung.vision.model import build_model
from karung.vision.modeldir import FP32_ONNX_FILE, INT8_ONNX_FILE
from karung.vision.onnx_backend import OnnxBackend, load_onnx
from karung.vision.preprocess import Preprocessing

pytestmark = pytest.mark.slow

# Plain int8 moved these risks by at most 0.07 when this test was written.
INT8_RISK_TOLERANCE = 0.1


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Checkpoint, Path]:
    """A tiny checkpoint and its fp32 and int8 exports (int8 guarded by a band over [0, 1])."""
    root = tmp_path_factory.mktemp("contract")
    images = root / "images"
    for i, label in enumerate(LABELS):
        (images / label).mkdir(parents=True)
        for j in range(3):
            (images / label / f"{j}.jpg").write_bytes(jpeg(10 * i + j))
    model = root / "model"
    torch.manual_seed(7)
    net = build_model(len(LABELS), pretrained=True)
    with torch.no_grad():
        head = net.get_submodule("classifier.1")
        head.weight.normal_(0, 0.05)
        head.bias.zero_()
    ckpt = Checkpoint.from_model(net, LABELS, preprocessing=Preprocessing(input_size=64))
    # Thresholds at the tertiles of torch's risks: the batch spans all three decisions.
    risks = ckpt.risk_head.risk_of_logits(_torch(ckpt, model).logits(_batch(ckpt)))
    low, high = np.quantile(risks, [1 / 3, 2 / 3])
    ckpt = ckpt.with_updates(thresholds=Thresholds(block=float(high), review=float(low)))
    ckpt.save(model / "model.pt")
    run_export(
        ExportJob(
            checkpoint=model / "model.pt",
            out_dir=model,
            calibration=(str(images),),
            parity_data=(str(images),),
            min_agreement=0.0,  # the contract below is the check here
            fallback_options=FallbackOptions(floor=50.0),
            workers=0,
        )
    )
    return ckpt, model


def _torch(ckpt: Checkpoint, _: Path) -> InferenceBackend:
    return TorchBackend(ckpt.build_model())


def _fp32(_: Checkpoint, model: Path) -> InferenceBackend:
    return OnnxBackend(model / FP32_ONNX_FILE, threads=1)


def _int8(_: Checkpoint, model: Path) -> InferenceBackend:
    return OnnxBackend(model / INT8_ONNX_FILE, threads=1)


def _int8_fallback(ckpt: Checkpoint, model: Path) -> InferenceBackend:
    backend = load_onnx(model / INT8_ONNX_FILE, ckpt.risk_head, threads=1)
    assert isinstance(backend, FallbackBackend)
    return backend


Maker = Callable[[Checkpoint, Path], InferenceBackend]
BACKENDS: dict[str, tuple[Maker, bool]] = {  # name -> (maker, decisions exactly torch's)
    "torch": (_torch, True),
    "onnx-fp32": (_fp32, True),
    "onnx-int8": (_int8, False),
    "onnx-int8+fallback": (_int8_fallback, True),
}


def _batch(ckpt: Checkpoint, n: int = 12) -> np.ndarray:
    images = [textured(80, 60, seed) for seed in range(n)]
    return ckpt.preprocessing.to_array(images)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_same_interface_and_labels(name: str, exported: tuple[Checkpoint, Path]) -> None:
    ckpt, model = exported
    backend = BACKENDS[name][0](ckpt, model)
    assert isinstance(backend.name, str) and backend.name
    out = backend.logits(_batch(ckpt, 5))
    assert out.shape == (5, len(LABELS)) and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    clf = Classifier(ckpt, backend)
    assert clf.labels == LABELS
    probs = clf.predict_proba([textured(70, 50, 3)])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_decisions_agree_with_torch(name: str, exported: tuple[Checkpoint, Path]) -> None:
    ckpt, model = exported
    maker, exact = BACKENDS[name]
    batch = _batch(ckpt)
    head, cut = ckpt.risk_head, ckpt.thresholds
    want = head.risk_of_logits(_torch(ckpt, model).logits(batch))
    got = head.risk_of_logits(maker(ckpt, model).logits(batch))
    assert len(set(head.decisions(want, cut))) == 3, "the batch must span the decisions"
    if exact:
        np.testing.assert_allclose(got, want, atol=1e-4)
        assert head.decisions(got, cut) == head.decisions(want, cut)
    else:
        np.testing.assert_allclose(got, want, atol=INT8_RISK_TOLERANCE)


@pytest.mark.parametrize("name", list(BACKENDS))
@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 3, 64), dtype=np.float32),  # not 4-d
        np.zeros((2, 4, 64, 64), dtype=np.float32),  # four channels
        np.zeros((0, 3, 64, 64), dtype=np.float32),  # empty
        np.array([["a"]]),  # not numbers
    ],
    ids=["3d", "channels", "empty", "strings"],
)
def test_bad_input_is_a_typed_error(
    name: str, bad: np.ndarray, exported: tuple[Checkpoint, Path]
) -> None:
    ckpt, model = exported
    backend = BACKENDS[name][0](ckpt, model)
    with pytest.raises(InvalidBatch) as info:
        backend.logits(bad)
    assert info.value.code == "invalid_batch"


def test_every_backend_name_loads_a_backend_of_the_contract(
    exported: tuple[Checkpoint, Path], tmp_path: Path
) -> None:
    """The names a user passes (``--backend``) land on the backends tested above."""
    _, model = exported
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    names = {n: Classifier.from_path(copy, n).backend.name for n in ("torch", "onnx-fp32")}
    names["onnx-int8"] = Classifier.from_path(copy, "onnx-int8").backend.name
    assert names == {"torch": "torch", "onnx-fp32": "onnx", "onnx-int8": "onnx-int8+fallback"}
