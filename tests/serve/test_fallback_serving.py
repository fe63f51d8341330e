"""The service on an int8 export with an fp32 fallback band, end to end."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest
from serve.servekit import jpeg

from karung.training.export_job import ExportJob, run_export
from karung.training.fallback_fit import FallbackOptions
from karung.vision.labels import LABELS


def image_folder(root: Path, per_label: int = 4) -> Path:
    """An ImageFolder of small generated JPEGs (calibration and parity images)."""
    for i, label in enumerate(LABELS):
        (root / label).mkdir(parents=True)
        for j in range(per_label):
            (root / label / f"{j}.jpg").write_bytes(jpeg(10 * i + j))
    return root


def scored_risks(service: Any, images: list[bytes]) -> list[float]:
    items = [{"image_base64": base64.b64encode(b).decode()} for b in images]
    with service.client() as client:
        response = client.post("/v1/score", json={"items": items})
    assert response.status_code == 200, response.text
    return [item["risk"] for item in response.json()["items"]]


def test_service_rechecks_in_band_images_on_fp32(
    make_service: Any, model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(model_dirs[0], model)
    folder = str(image_folder(tmp_path / "images"))
    # A band over all of [0, 1]: every image is re-run on fp32, whatever int8 says.
    run_export(
        ExportJob(
            checkpoint=model / "model.pt",
            out_dir=model,
            calibration=(folder,),
            parity_data=(folder,),
            min_agreement=1.0,
            fallback_options=FallbackOptions(floor=50.0),
            workers=0,
        )
    )
    guarded = make_service(model=model, backend="onnx")
    reference = make_service(model=model, backend="torch")
    with guarded.client() as client:
        assert client.get("/v1/admin/model").json()["model"]["backend"] == "onnx-int8+fallback"
    images = [jpeg(100 + i) for i in range(5)]
    risks = scored_risks(guarded, images)
    assert risks == pytest.approx(scored_risks(reference, images), abs=1e-4)
    with guarded.client(key=None) as anon:
        metrics = anon.get("/metrics").text
    assert "karung_model_fallback_share 1.0" in metrics
