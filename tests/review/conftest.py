"""Fixtures of the review-area tests: real databases (SQLite file, PostgreSQL), queue factories."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from karung.serve.db import make_engine, session_factory
from karung.serve.review.queue import QueueItemIn, enqueue

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def migrate_review(engine: Engine) -> None:
    """Apply the ``review`` branch only (other areas' tables are not needed here)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "karung.serve:migrations")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "review@head")


def _pg_admin() -> Any:
    import psycopg

    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    name = f"karung_t_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'review.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
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
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory on the SQLite engine."""
    return session_factory(engine)


def tiny_image(seed: int, size: int = 48) -> Image.Image:
    """A deterministic textured RGB image (different seeds give perceptually different images)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 6, 3), dtype=np.uint8)
    img = Image.fromarray(blocks, "RGB").resize((size, size), Image.Resampling.BILINEAR)
    noise = rng.integers(-12, 12, size=(size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img) + noise, 0, 255).astype(np.uint8), "RGB")


EnqueueFn = Callable[..., int]


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


def queue_item(seed: int, **overrides: Any) -> QueueItemIn:
    """A review-band queue item built from :func:`tiny_image`."""
    image = overrides.pop("image", None) or tiny_image(seed)
    risk = float(overrides.pop("risk", 0.7))
    fields: dict[str, Any] = {
        "sha256": hashlib.sha256(f"img-{seed}".encode()).hexdigest(),
        "image": image,
        "scores": {"bale": risk / 2, "sack": risk / 2, "garment": 1 - risk, "other": 0.0},
        "risk": risk,
        "model_decision": "review",
        "model_version": "test-model",
        "block_threshold": 0.9,
        "listing_id": f"listing-{seed}",
        "seller_id": f"seller-{seed % 7}",
        "url": f"https://cdn.example/{seed}.jpg",
    }
    fields.update(overrides)
    return QueueItemIn(**fields)
