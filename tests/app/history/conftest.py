"""A fresh history database per test, on SQLite and on PostgreSQL: every fixture of
tests/kit/history_db.py."""

from tests.kit.history_db import *  # noqa: F403
