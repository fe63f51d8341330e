"""Fresh PostgreSQL databases on 127.0.0.1, one per test (or per session), dropped afterwards.

The ``pg_url`` fixture (tests/conftest.py) wraps :func:`fresh_database`; every test that uses it is
marked ``postgres`` automatically, so ``-m "not postgres"`` deselects them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Fixtures that hand out a PostgreSQL database; a test using any of them gets the marker.
PG_FIXTURES = frozenset({"pg_url", "pg_engine"})


@contextmanager
def fresh_database(prefix: str = "karung_t") -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards (even when in use).

    Skips the test when psycopg is missing or PostgreSQL is unreachable.
    """
    psycopg = pytest.importorskip("psycopg")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is unreachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
