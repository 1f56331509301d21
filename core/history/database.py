"""Engines and migrations for the history database.

Alembic is configured here, in code: its scripts live in this package
(``migrations/``), so the repository needs no ``alembic.ini``. The Procfile's
``release`` process runs ``python -m core.history upgrade`` on every
deploy, and ``bin/start`` does the same before starting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = "core.history:migrations"
VERSION_TABLE = "history_alembic_version"
# Any constant: PostgreSQL advisory lock held while migrating, so two deploys
# (or bin/start and a release) never migrate at once.
MIGRATION_LOCK = 0x63616C6C  # "call"

# Per-process connection budgets. A web process answers searches from its
# threads; a worker needs one connection for its archiver.
POOLS = {"web": {"pool_size": 3, "max_overflow": 2}, "worker": {"pool_size": 1, "max_overflow": 1}}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the web read while the archiver writes; waits for a busy writer instead
    of failing at once."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_engine(url: str, role: str = "web") -> sa.Engine:
    """An engine for ``url`` (a URL from ``Settings.database_url``).

    Connecting is lazy. A database that does not answer fails a connection in
    a few seconds (never a worker's event path: only the archiver's thread and
    history requests wait on it). A web statement may run 30 s at most.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    options = "-c statement_timeout=30000" if role == "web" else ""
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=5,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "options": options, "application_name": role},
        **POOLS.get(role, POOLS["web"]),
    )


def _config(connection: sa.Connection | None = None) -> Config:
    # Alembic is imported only to migrate: web and worker processes never load it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest). Idempotent."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            lock = sa.text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": MIGRATION_LOCK})
        from alembic import command

        command.upgrade(_config(connection), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Take the schema back to ``revision`` (``base`` drops every history table)."""
    from alembic import command

    with engine.begin() as connection:
        command.downgrade(_config(connection), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The schema's revision, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()
