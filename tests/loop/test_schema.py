"""The loop's tables: the migration (branch ``loop``) matches the models on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from kit.pg import fresh_database

from karung.serve import drift, retrain_jobs
from karung.serve.db import Base, make_engine, migrate

TABLES = (drift.RISK_DAILY.name, retrain_jobs.RetrainJobRecord.__tablename__)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_migration_matches_the_models(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        check(f"sqlite:///{tmp_path / 'schema.db'}")
    else:
        with fresh_database() as url:
            check(url)


def check(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    ours = [d for d in diffs if any(t in repr(d) for t in TABLES)]
    assert ours == []
