"""Same seed, same bytes: across runs and across worker counts (serial = reference)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from karung.training.synth.config import SynthConfig
from karung.training.synth.runner import generate


def _digest(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".jpg", ".csv", ".json", ".png"))
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _make(
    out: Path, seed: int, workers: int, source: Path | None = None, n: int = 12
) -> dict[str, str]:
    cfg = SynthConfig(
        out=out, n=n, seed=seed, source=source, size=96, workers=workers, contact_count=4
    )
    generate(cfg, quiet=True)
    return _digest(out)


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    serial = _make(tmp_path / "a", seed=5, workers=1)
    parallel = _make(tmp_path / "b", seed=5, workers=2)
    assert len(serial) == 12 + 2 + 4  # images, manifest, synth.json, contact sheets
    assert serial == parallel


def test_different_seed_different_images(tmp_path: Path) -> None:
    a = _make(tmp_path / "a", seed=1, workers=1, n=4)
    b = _make(tmp_path / "b", seed=2, workers=1, n=4)
    jpgs = [k for k in a if k.endswith(".jpg")]
    assert all(a[k] != b[k] for k in jpgs)


def test_photo_mode_is_deterministic_too(tmp_path: Path, fake_source: Path) -> None:
    serial = _make(tmp_path / "a", seed=3, workers=1, source=fake_source, n=8)
    parallel = _make(tmp_path / "b", seed=3, workers=2, source=fake_source, n=8)
    assert serial == parallel
