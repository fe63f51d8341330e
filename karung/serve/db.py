"""Database plumbing shared by the bank, the service and the review queue.

SQLite (a file under the user's data dir, WAL mode) is the embedded default; PostgreSQL is the
production backend. The schema is owned by Alembic migrations in ``karung/serve/migrations``: one
branch per area (``bank``, ``service``, ``review``), all applied by :func:`migrate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase, sessionmaker

DB_ENV: Final = "KARUNG_DB"
DATA_DIR_ENV: Final = "KARUNG_DATA_DIR"


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
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def session_factory(engine: Engine) -> sessionmaker[Any]:
    """A session factory whose objects stay usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision of every branch (``alembic upgrade heads``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "karung.serve:migrations")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
