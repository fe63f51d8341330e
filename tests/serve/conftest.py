"""Fixtures of the service tests (support code lives in ``servekit.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve.servekit import (
    ImageServer,
    LiveService,
    make_checkpoint,
    serve_images,
    service_settings,
    start_service,
)

from karung.serve.app import create_app


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two model directories holding different tiny checkpoints (for swap tests)."""
    root = tmp_path_factory.mktemp("models")
    dirs = []
    for seed in (1, 2):
        path = root / f"m{seed}"
        make_checkpoint(seed).save(path / "model.pt")
        dirs.append(path)
    return dirs[0], dirs[1]


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """The image server, shared by every test of the session."""
    state, stop = serve_images()
    yield state
    stop()


@pytest.fixture
def make_service(
    tmp_path: Path, model_dirs: tuple[Path, Path]
) -> Iterator[Callable[..., LiveService]]:
    """Start services with setting overrides; all are stopped after the test."""
    stops: list[Callable[[], None]] = []

    def factory(**overrides: Any) -> LiveService:
        resolver = overrides.pop("resolver", None)
        sub = tmp_path / f"svc{len(stops)}"
        settings = service_settings(sub, overrides.pop("model", model_dirs[0]), **overrides)
        service, stop = start_service(create_app(settings, resolver=resolver))
        stops.append(stop)
        return service

    yield factory
    for stop in reversed(stops):
        stop()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: tuple[Path, Path]
) -> Iterator[LiveService]:
    """One shared service per test module (private networks allowed for the image server)."""
    settings = service_settings(tmp_path_factory.mktemp("svc"), model_dirs[0])
    live, stop = start_service(create_app(settings))
    yield live
    stop()
