"""``karung backfill`` refuses bad set-ups before starting Ray (exit 1, one clear line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from batch.batchkit import photo

from karung.batch.shards import Manifest, open_output
from karung.cli.main import main


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.jpg").write_bytes(photo(1))
    return tmp_path / "pics"


def test_another_job_in_the_output_folder_is_refused(
    folder: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    open_output(out, Manifest(inputs="0" * 64, rows=1, shard_size=1000, model_version="x"))
    args = ["backfill", str(folder), "--out", str(out), "--model", str(tiny_model)]
    assert main([*args, "--db", "none", "--backend", "torch"]) == 1
    err = capsys.readouterr().err
    assert "error: job_mismatch: " in err
    assert "holds another backfill (differs in inputs, model_version)" in err
    assert not (out / "shards" / "part-000000.parquet").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--add-to-bank", "b"], "--add-to-bank needs --min-risk"),
        (["--shard-size", "0"], "--shard-size must be >= 1"),
        (["--allow-network", "not-a-cidr"], "does not appear to be an IPv4 or IPv6 network"),
    ],
)
def test_bad_options_are_setup_errors(
    folder: Path, tmp_path: Path, extra: list[str], message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert main(["backfill", str(folder), "--out", str(tmp_path / "o"), *extra]) == 1
    err = capsys.readouterr().err
    assert message in err and "error: backfill_config_invalid: " in err


def test_an_empty_input_is_a_setup_error(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "empty").mkdir()
    args = ["backfill", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    assert main([*args, "--model", str(tiny_model), "--db", "none"]) == 1


def test_a_backend_without_its_export_is_a_setup_error(
    folder: Path, tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["backfill", str(folder), "--out", str(tmp_path / "o"), "--model", str(tiny_model)]
    assert main([*args, "--db", "none"]) == 1  # the default backend is onnx; no export here
    assert "--backend onnx needs model.int8.onnx or model.fp32.onnx" in capsys.readouterr().err
