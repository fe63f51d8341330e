"""The bank schema: the migration matches the ORM models, identically on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from karung.serve.bank import models
from karung.serve.db import Base

TABLES = ("bank_banks", "bank_entries", "bank_state", "bank_changes", "bank_match_events")


def test_migration_matches_the_models(engine: Engine) -> None:
    assert models.EntryRow.__tablename__ in TABLES
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    ours = [d for d in diffs if any(t in repr(d) for t in TABLES)]
    assert ours == []


def describe(engine: Engine) -> dict[str, Any]:
    """Columns (name, generic type, length, nullable), unique constraints and indexes per table."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in TABLES:
        cols = [
            (
                c["name"],
                type(c["type"].as_generic()).__name__,
                getattr(c["type"], "length", None),
                c["nullable"],
            )
            for c in insp.get_columns(table)
        ]
        uniques = sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table))
        indexes = sorted(
            (i["name"], tuple(i["column_names"]))
            for i in insp.get_indexes(table)
            if not i.get("duplicates_constraint")  # PostgreSQL lists unique constraints too
        )
        out[table] = (cols, uniques, indexes)
    return out


def test_schema_is_the_same_in_sqlite_and_postgres(engine: Engine, tmp_path: object) -> None:
    from karung.serve.db import make_engine, migrate

    reference = make_engine(f"sqlite:///{tmp_path}/reference.db")
    migrate(reference)
    try:
        assert describe(engine) == describe(reference)
    finally:
        reference.dispose()
