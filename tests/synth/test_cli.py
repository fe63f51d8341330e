"""``karung synth`` exit codes, errors and the real-validation manifest."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from karung.cli.main import main
from karung.training.splits import sender_split


def test_bad_source_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        ["synth", "--out", str(tmp_path / "o"), "--n", "4", "--source", str(tmp_path / "nope")]
    )
    assert rc == 1
    assert "bad_source" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_source_without_csv_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    rc = main(
        ["synth", "--out", str(tmp_path / "o"), "--n", "4", "--source", str(tmp_path / "src")]
    )
    assert rc == 1
    assert "images.csv" in capsys.readouterr().err


def test_bad_options_exit_2(tmp_path: Path) -> None:
    assert main(["synth", "--out", str(tmp_path), "--n", "0", "--source", "none"]) == 2
    assert main(["synth", "--out", str(tmp_path), "--size", "8", "--source", "none"]) == 2
    assert main(["synth", "--source", "none"]) == 2  # neither --out nor --real-val-manifest


def test_refuses_to_overwrite_without_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "synth",
        "--out",
        str(tmp_path),
        "--n",
        "4",
        "--source",
        "none",
        "--size",
        "64",
        "--quiet",
    ]
    assert main(args) == 0
    assert main(args) == 1
    assert "bad_output" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_real_val_manifest(tmp_path: Path, fake_source: Path) -> None:
    path = tmp_path / "real_val.csv"
    assert main(["synth", "--source", str(fake_source), "--real-val-manifest", str(path)]) == 0
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "the fake source has validation senders"
    for r in rows:
        assert Path(r["file"]).is_absolute() and Path(r["file"]).is_file()
        assert (r["label"], r["split"]) == ("garment", "val")
        assert r["sender_id"] == r["sender_ids"] and sender_split(r["sender_id"]) == "val"
        assert r["category"] not in ("Not sure", "Skip", "Other")


def test_real_val_manifest_needs_photos(tmp_path: Path) -> None:
    assert main(["synth", "--source", "none", "--real-val-manifest", str(tmp_path / "x.csv")]) == 2
