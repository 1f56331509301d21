"""Fixtures of the history tests: a fresh database per test, on SQLite and on PostgreSQL
(and the app reading it: history_app, history_engine, api).

Imported by the conftest.py of core/history and app/history.

``database_url`` is parametrized: each test runs once on a SQLite file and
once on a database it creates (and drops) on the PostgreSQL server named by
``CALLSTATE_TEST_POSTGRES_URL`` (default: the local server,
``postgresql://postgres@127.0.0.1:5432/postgres``; bin/test makes sure one
runs). Without a reachable server the PostgreSQL runs are skipped, loudly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from core.history.database import create_engine, upgrade
from core.settings import Settings, database_url

ADMIN_URL = os.environ.get(
    "CALLSTATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SKIP_REASON = (
    "!!! POSTGRESQL HISTORY TESTS SKIPPED: no PostgreSQL server answered at "
    "CALLSTATE_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres). "
    "bin/test starts or installs one; start one to run them. !!!"
)


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()


POSTGRES_PROBLEM = _postgres_problem()


def report_skips(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly that the PostgreSQL runs were skipped, if any was (the root
    conftest's summary; skipped reports reach the controller under xdist too)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if any(SKIP_REASON in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_sep("!", "POSTGRESQL HISTORY TESTS WERE SKIPPED", red=True)
        terminalreporter.write_line(f"{SKIP_REASON}\n{POSTGRES_PROBLEM}", red=True, bold=True)


class PostgresDatabases:
    """Creates databases on the test server and drops them (and their connections)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def create(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"callstate_history_{uuid.uuid4().hex[:12]}"
        with self._admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = sa.make_url(database_url(self.admin_url) or "")
        return base.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin() as admin:
            for name in self.created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test)."""
    if POSTGRES_PROBLEM is not None:
        pytest.skip(SKIP_REASON)
    databases = PostgresDatabases(ADMIN_URL)
    try:
        yield databases.create()
    finally:
        databases.drop_all()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'history.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def history_url(request: pytest.FixtureRequest) -> str:
    """An empty database of each kind (not migrated)."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def empty_engine(history_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(history_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(empty_engine: sa.Engine) -> sa.Engine:
    """A migrated history database of each kind."""
    upgrade(empty_engine)
    return empty_engine


@pytest.fixture
def history_app(redis_client: fakeredis.FakeRedis, settings: Settings, history_url: str) -> Flask:
    """The app on fakeredis, its history in a database of each kind (not migrated)."""
    from dataclasses import replace

    return create_app(
        {
            "TESTING": True,
            "REDIS_CLIENT": redis_client,
            "CALLSTATE_SETTINGS": replace(settings, database_url=history_url),
        }
    )


@pytest.fixture
def history_engine(history_app: Flask) -> sa.Engine:
    """``history_app``'s history database, migrated."""
    from app.history.routes import EXTENSION

    engine: sa.Engine = history_app.extensions[EXTENSION]
    upgrade(engine)
    return engine


@pytest.fixture
def api(history_app: Flask) -> FlaskClient:
    """The app of ``history_app``, as a client."""
    return history_app.test_client()
