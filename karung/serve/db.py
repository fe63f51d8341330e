"""Database plumbing shared by the bank, the service and the review queue.

SQLite (a file under the user's data dir, WAL mode) is the embedded default; PostgreSQL is the
production backend. The schema is owned by Alembic migrations in ``karung/serve/migrations``: one
branch per area (``bank``, ``service``, ``review``), all applied by :func:`migrate`.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase, sessionmaker

DB_ENV: Final = "KARUNG_DB"
DATA_DIR_ENV: Final = "KARUNG_DATA_DIR"
# pg_advisory_lock key of schema changes (any fixed 64-bit number; "karung" in ASCII).
SCHEMA_LOCK_KEY: Final = 0x6B6172756E67
_held = threading.local()  # schema locks this thread holds (they are re-entrant)


class Base(DeclarativeBase):
    """Declarative base of every ORM model of karung."""


def data_dir() -> Path:
    """``$KARUNG_DATA_DIR`` or the platform's per-user data directory (created on demand)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env)
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("karung", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_db_url() -> str:
    """``$KARUNG_DB`` or a SQLite file ``karung.db`` in :func:`data_dir`."""
    return os.environ.get(DB_ENV) or f"sqlite:///{data_dir() / 'karung.db'}"


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgresql://`` URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    url = normalise_url(url or default_db_url())
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (the service) run beside a writer (the CLI); the timeout waits out locks.
    # The timeout first: switching a new file to WAL takes a lock that a process started at
    # the same moment may hold.
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory whose objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's schema lock: processes started at once on a new database (CLI
    commands, ``karung serve`` and its workers, replicas) create and migrate the schema one
    after the other instead of racing to ``CREATE TABLE``.

    SQLite: an exclusive ``flock`` on ``<database>.schema.lock`` beside the file. PostgreSQL:
    a session-level advisory lock. Re-entrant within a thread.
    """
    url = engine.url
    held: set[str] = getattr(_held, "urls", set())
    _held.urls = held
    name = url.render_as_string(hide_password=True)
    if name in held:
        yield
        return
    held.add(name)
    try:
        if url.get_backend_name() == "postgresql":
            with _advisory_lock(engine):
                yield
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            with _file_lock(Path(f"{url.database}.schema.lock")):
                yield
        else:
            yield
    finally:
        held.discard(name)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(engine: Engine) -> Iterator[None]:
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({SCHEMA_LOCK_KEY})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({SCHEMA_LOCK_KEY})")
            conn.commit()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch (``alembic upgrade heads``),
    under :func:`schema_lock`."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "karung.serve:migrations")
    with schema_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
