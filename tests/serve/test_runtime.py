"""Model loading for the service: backend choice (int8 ONNX when exported), holder, failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imagegen import textured
from kit.models import INPUT_SIZE, tiny_checkpoint

from karung.serve.runtime import ModelHolder, build_classifier
from karung.vision.modeldir import INT8_ONNX_FILE


def test_auto_uses_torch_without_an_export(model_dirs: tuple[Path, Path]) -> None:
    clf = build_classifier(model_dirs[0], "auto", threads=0)
    assert clf.backend.name == "torch"
    with pytest.raises(ValueError):
        build_classifier(model_dirs[0], "tensorrt")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_auto_prefers_the_exported_onnx_model(tmp_path: Path) -> None:
    pytest.importorskip("karung.vision.onnx_backend")
    import torch

    checkpoint = tiny_checkpoint(9)
    checkpoint.save(tmp_path / "model.pt")
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    # An fp32 graph under the int8 file name: the backend choice is tested, not the quantiser.
    torch.onnx.export(
        checkpoint.build_model(),
        dummy,
        str(tmp_path / INT8_ONNX_FILE),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "n"}},
        dynamo=False,
    )
    onnx = build_classifier(tmp_path, "auto", threads=1)
    torch_clf = build_classifier(tmp_path, "torch", threads=0)
    assert onnx.backend.name.startswith("onnx") and torch_clf.backend.name == "torch"
    images = [textured(80, 60, s) for s in range(4)]
    np.testing.assert_allclose(
        onnx.predict_proba(images), torch_clf.predict_proba(images), rtol=1e-3, atol=1e-4
    )


def test_holder_keeps_the_old_model_when_a_load_fails(
    model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    holder = ModelHolder(tmp_path / "missing")
    holder.try_load()
    assert not holder.loaded and holder.error and "CheckpointError" in holder.error
    info = holder.load(model_dirs[0])
    assert holder.loaded and holder.info == info and holder.error is None
    with pytest.raises(Exception, match="checkpoint"):
        holder.load(tmp_path / "missing")
    assert holder.current is not None and holder.info.model_version == info.model_version
