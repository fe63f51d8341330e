"""The audit log is append-only: the database refuses UPDATE, DELETE and (PostgreSQL) TRUNCATE."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DatabaseError

from karung.serve.db import session_factory
from karung.serve.review import audit
from karung.serve.review.claims import claim_batch
from karung.serve.review.decisions import NoEffects, Policy, decide
from karung.serve.review.models import AuditEntry

AddItems = Callable[..., list[int]]


def _one_decision(engine: Engine, add_items: AddItems) -> int:
    factory = session_factory(engine)
    (item_id,) = add_items(factory, 1)
    with factory.begin() as s:
        claim_batch(s, "ana", limit=1, lease_seconds=60)
    with factory.begin() as s:
        decide(s, item_id, "ana", "sack", "visual", policy=Policy(0.0), effects=NoEffects())
    return item_id


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE review_audit SET actor = 'mallory'",
        "UPDATE review_audit SET after = NULL WHERE action = 'decide'",
        "DELETE FROM review_audit",
    ],
)
def test_raw_sql_cannot_change_the_log(any_engine: Engine, add_items: AddItems, sql: str) -> None:
    item_id = _one_decision(any_engine, add_items)
    with pytest.raises(DatabaseError, match="append-only"), any_engine.begin() as conn:
        conn.execute(text(sql))
    with session_factory(any_engine)() as s:
        (line,) = audit.entries(s, item_id=item_id)
        assert (line.actor, line.action, line.after["label"]) == ("ana", "decide", "sack")


def test_truncate_refused_on_postgres(pg_engine: Engine, add_items: AddItems) -> None:
    _one_decision(pg_engine, add_items)
    with pytest.raises(DatabaseError, match="append-only"), pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE review_audit"))
    with pg_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_orm_updates_are_refused_too(any_engine: Engine, add_items: AddItems) -> None:
    _one_decision(any_engine, add_items)
    factory = session_factory(any_engine)
    with pytest.raises(DatabaseError, match="append-only"), factory.begin() as s:
        line = s.scalars(select(AuditEntry)).one()
        line.actor = "mallory"
    with pytest.raises(DatabaseError, match="append-only"), factory.begin() as s:
        s.delete(s.scalars(select(AuditEntry)).one())


def test_inserts_still_work_and_paging(any_engine: Engine) -> None:
    factory = session_factory(any_engine)
    with factory.begin() as s:
        for n in range(5):
            audit.record(s, actor="cli", action="note", after={"n": n})
    with factory() as s:
        first = audit.entries(s, limit=2)
        assert [e.after["n"] for e in first] == [4, 3]
        rest = audit.entries(s, before_id=first[-1].id, limit=10)
        assert [e.after["n"] for e in rest] == [2, 1, 0]
        assert all(e.at.tzinfo is not None for e in rest)
