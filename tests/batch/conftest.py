"""Fixtures of the backfill tests: a tiny model, the loopback image server, a bank, and one real
local Ray cluster (2 CPUs) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kit.models import tiny_checkpoint
from serve.servekit import ImageServer, serve_images

from karung.vision.labels import Thresholds


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight checkpoint whose thresholds put every risk in the review band."""
    folder = tmp_path_factory.mktemp("batch-model")
    ckpt = replace(tiny_checkpoint(3), thresholds=Thresholds(block=0.999999, review=0.0))
    ckpt.save(folder / "model.pt")
    return folder


@pytest.fixture(scope="session")
def images() -> Iterator[ImageServer]:
    """The loopback image server (good, HTML, corrupt, redirecting and slow endpoints)."""
    state, stop = serve_images()
    yield state
    stop()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real local Ray cluster with 2 CPUs, started once; yields its GCS address so that
    subprocess drivers can join it with ``--address``."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 1024 * 1024,
        log_to_driver=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
