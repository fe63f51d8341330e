"""Fixtures of the review-area tests: real databases (SQLite file, PostgreSQL), queue factories."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.live import start_uvicorn
from kit.models import tiny_checkpoint
from review.reviewkit import (
    ADMIN_KEY,
    PASSWORD,
    Live,
    migrate_review,
    queue_item,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.db import make_engine, migrate, session_factory
from karung.serve.review.queue import enqueue


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'review.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_url(request: pytest.FixtureRequest) -> str:
    """Both backends: the test runs once on each."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    migrate_review(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite engine."""
    yield from _engine(sqlite_url)


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL engine."""
    yield from _engine(pg_url)


@pytest.fixture
def any_engine(any_url: str) -> Iterator[Engine]:
    """A migrated engine on each backend."""
    yield from _engine(any_url)


@pytest.fixture
def any_sessions(any_engine: Engine) -> sessionmaker[Session]:
    """Session factory on each backend."""
    return session_factory(any_engine)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory on the SQLite engine."""
    return session_factory(engine)


@pytest.fixture
def add_items() -> Callable[..., list[int]]:
    """``add_items(sessions, n, **overrides)`` enqueues ``n`` distinct items and returns ids."""

    def _add(factory: sessionmaker[Session], n: int, **overrides: Any) -> list[int]:
        ids = []
        with factory.begin() as session:
            for _ in range(n):
                seed = int(uuid.uuid4().int % 2**31)
                ids.append(enqueue(session, queue_item(seed, **overrides)))
        return ids

    return _add


@pytest.fixture
def live_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Live]]:
    """``live_factory(model=False, **review_env)`` starts the real service; stopped afterwards.

    ``review_env`` become ``KARUNG_REVIEW_*`` variables (read by the review area's ``install``).
    Moderators ana, budi and citra exist with :data:`PASSWORD`.
    """
    stops: list[Callable[[], None]] = []

    def start(model: bool = False, **review_env: Any) -> Live:
        from karung.serve.app import create_app
        from karung.serve.review import accounts
        from karung.serve.settings import Settings

        for key, value in review_env.items():
            monkeypatch.setenv(f"KARUNG_REVIEW_{key.upper()}", str(value))
        root = tmp_path / f"svc{len(stops)}"
        model_dir = root / "model"
        if model:
            tiny_checkpoint(bn_var=1e-2).save(model_dir / "model.pt")
        settings = Settings(
            data_dir=root,
            model=model_dir,
            backend="torch",
            admin_key=ADMIN_KEY,
            review_sample_allow=0.0,
            review_sample_block=0.0,
            bank_poll_seconds=0.2,
            decode_workers=1,
        )
        engine = make_engine(settings.db)
        migrate(engine)
        factory = session_factory(engine)
        with factory.begin() as s:
            for name in ("ana", "budi", "citra"):
                accounts.add_moderator(s, name, PASSWORD)
        app = create_app(settings)
        url, stop = start_uvicorn(app)
        stops.append(stop)
        stops.append(engine.dispose)
        return Live(url, app, factory)

    yield start
    for stop in reversed(stops):
        stop()
