"""Fixtures of the hash bank tests: an engine on SQLite and on PostgreSQL (fresh database)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit.pg import fresh_database
from sqlalchemy import Engine, text

from karung.serve.bank.service import BankService
from karung.serve.db import make_engine, migrate

BANK_TABLES = ("bank_match_events", "bank_changes", "bank_entries", "bank_banks")


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    """One PostgreSQL database for the bank tests of the session, migrated once."""
    with fresh_database() as url:
        engine = make_engine(url)
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
    pg: Engine = request.getfixturevalue("pg_engine")
    with pg.begin() as conn:
        for table in BANK_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE bank_state SET version = 0"))
    yield pg


@pytest.fixture
def service(engine: Engine) -> BankService:
    """A bank service on the engine (indexes built, empty)."""
    return BankService(engine)
