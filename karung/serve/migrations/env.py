"""Alembic environment: runs on the connection handed over by :func:`karung.serve.db.migrate`."""

from __future__ import annotations

from alembic import context

from karung.serve.db import make_engine

config = context.config
connection = config.attributes.get("connection")

if connection is None:
    # `alembic -x url=...` style use from a shell: open our own engine.
    url = context.get_x_argument(as_dictionary=True).get("url")
    engine = make_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
