"""``karung bench intake`` runs end to end on small images and reports every stage."""

from __future__ import annotations

import re

import pytest

from karung.cli.main import main


def test_intake_bench_reports_stages_and_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "bench",
        "intake",
        "--images",
        "3",
        "--width",
        "320",
        "--height",
        "240",
        "--repeat",
        "1",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for stage in ("sha256", "decode for hashing", "all hashes", "resize to model input"):
        assert re.search(rf"{stage}.*\d+\.\d+ ms/image", out), stage
    assert "binding (baseline), 1 thread" in out and "native, 2 threads" in out
    assert re.search(r"lookup tables \(karung\)\s+\d+\.\d+ ms/image\s+x\s*\d", out)
