"""Fixtures of the service tests (support code lives in ``servekit.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.models import tiny_checkpoint
from serve.servekit import (
    ImageServer,
    LiveService,
    serve_images,
    service_settings,
    start_local_service,
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
        tiny_checkpoint(seed).save(path / "model.pt")
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

    def factory(*, local: bool = False, **overrides: Any) -> LiveService:
        """``local=True`` runs the app in process (no socket); otherwise under uvicorn."""
        resolver = overrides.pop("resolver", None)
        sub = tmp_path / f"svc{len(stops)}"
        settings = service_settings(sub, overrides.pop("model", model_dirs[0]), **overrides)
        start = start_local_service if local else start_service
        service, stop = start(create_app(settings, resolver=resolver))
        stops.append(stop)
        return service

    yield factory
    for stop in reversed(stops):
        stop()


def _module_service(
    tmp_path_factory: pytest.TempPathFactory,
    model: Path,
    start: Callable[..., tuple[LiveService, Callable[[], None]]],
) -> Iterator[LiveService]:
    settings = service_settings(tmp_path_factory.mktemp("svc"), model)
    running, stop = start(create_app(settings))
    yield running
    stop()


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: tuple[Path, Path]
) -> Iterator[LiveService]:
    """One shared in-process service per test module (TestClient: no socket needed)."""
    yield from _module_service(tmp_path_factory, model_dirs[0], start_local_service)


@pytest.fixture(scope="module")
def live_service(
    tmp_path_factory: pytest.TempPathFactory, model_dirs: tuple[Path, Path]
) -> Iterator[LiveService]:
    """One shared service per test module under uvicorn on a real loopback socket."""
    yield from _module_service(tmp_path_factory, model_dirs[0], start_service)
