"""Fixtures of the hash bank tests: an engine on SQLite and on PostgreSQL (fresh database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from karung.serve.bank.service import BankService
from karung.serve.db import make_engine, migrate

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BANK_TABLES = ("bank_match_events", "bank_changes", "bank_entries", "bank_banks")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A uniquely named PostgreSQL database for this test session, dropped afterwards."""
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError:
        admin.dispose()
        yield None
        return
    name = f"karung_t_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str | None) -> Iterator[Engine | None]:
    """The session's PostgreSQL database, migrated once."""
    if pg_url is None:
        yield None
        return
    engine = make_engine(pg_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    """A migrated, empty bank: a SQLite file in tmp_path, or the session's PostgreSQL database
    with the bank tables emptied."""
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path}/bank.db")
        migrate(eng)
        yield eng
        eng.dispose()
        return
    pg: Engine | None = request.getfixturevalue("pg_engine")
    if pg is None:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with pg.begin() as conn:
        for table in BANK_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE bank_state SET version = 0"))
    yield pg


@pytest.fixture
def service(engine: Engine) -> BankService:
    """A bank service on the engine (indexes built, empty)."""
    return BankService(engine)
