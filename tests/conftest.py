"""Shared pytest setup and the PostgreSQL fixture. Shared support code lives in ``tests/kit``;
area-specific fixtures in each tests/<area>/conftest.py."""

import os
import tempfile
from collections.abc import Iterator

import pytest
from kit.pg import PG_FIXTURES, fresh_database

# Two cores: keep torch from oversubscribing when tests run beside other work.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# Idle OpenMP threads sleep instead of spinning: the suite shares two cores with its servers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Diverse review sampling queues a random share of photos; tests that count queue items must not
# see them, so it is off unless a test turns it on (tests/loop/test_diverse.py).
os.environ.setdefault("KARUNG_REVIEW_DIVERSE_SHARE", "0")

# The frozen recipe caches backbone features; tests never touch the user's cache.
if "KARUNG_FEATURE_CACHE" not in os.environ:
    os.environ["KARUNG_FEATURE_CACHE"] = tempfile.mkdtemp(prefix="karung-test-features-")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database on 127.0.0.1, dropped after the test."""
    with fresh_database() as url:
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that takes a PostgreSQL database ``postgres`` (``-m "not postgres"``)."""
    for item in items:
        if PG_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
