"""Fixtures of the retraining-loop tests: a tiny champion and live replicas on one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.models import tiny_checkpoint
from loop.loopkit import PASSWORD
from serve.servekit import LiveService, service_settings, start_service

from karung.serve.app import create_app


@pytest.fixture
def champion(tmp_path: Path) -> Path:
    """A tiny random-weight model folder whose head calls nearly everything a garment: it blocks
    no honest seller and catches no bale (what a model that never saw the new style does)."""
    import torch

    folder = tmp_path / "champion"
    ckpt = tiny_checkpoint(3)
    state = dict(ckpt.state_dict)
    state["classifier.1.bias"] = torch.tensor([0.0, 0.0, 4.0, 0.0])
    ckpt.with_updates(state_dict=state, model_version="").save(folder / "model.pt")
    return folder


@pytest.fixture
def replicas(
    tmp_path: Path, champion: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., LiveService]]:
    """``replicas(db, **overrides)`` starts a service on ``db`` (moderators ana and budi exist
    once the first has started); all are stopped after the test."""
    monkeypatch.setenv("KARUNG_REVIEW_DOUBLE_REVIEW_SHARE", "0")
    stops: list[Callable[[], None]] = []

    def start(db: str, **overrides: Any) -> LiveService:
        from karung.serve.review import accounts

        values: dict[str, Any] = {
            "db": db,
            "model_poll_seconds": 0.1,
            "review_sample_allow": 1.0,  # every scored photo reaches the queue
            "review_sample_block": 1.0,
        }
        values.update(overrides)
        settings = service_settings(tmp_path / f"svc{len(stops)}", champion, **values)
        service, stop = start_service(create_app(settings))
        stops.append(stop)
        if len(stops) == 1:
            with service.app.state.sessions.begin() as session:
                for name in ("ana", "budi"):
                    accounts.add_moderator(session, name, PASSWORD)
        return service

    yield start
    for stop in reversed(stops):
        stop()
