"""A fresh history database per test, on SQLite and on PostgreSQL: tests/kit/history_db.py."""

from tests.kit.history_db import (  # noqa: F401
    empty_engine,
    engine,
    history_url,
    postgres_url,
    sqlite_url,
)
