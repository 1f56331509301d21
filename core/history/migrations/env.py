"""Alembic's environment for the history tables.

Only run through ``core.history.database.upgrade`` (``python -m
core.history upgrade``, the Procfile's ``release`` process), which hands
over an open connection: there is no alembic.ini, and no URL is read here.
"""

from __future__ import annotations

from alembic import context

from core.history.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the history migrations with: python -m core.history upgrade")
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters tables by copying them; Alembic's batch mode does that.
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="history_alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
