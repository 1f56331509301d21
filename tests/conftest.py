"""Shared fixtures: an app on in-process fakeredis, and a test client.

Tests that need a real redis-server and real processes live in
``tests/integration`` and use the fixtures of its own conftest.
"""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from app import create_app
from core.queue import events_queue
from core.settings import Settings
from core.store import Store
from tests.kit.history_db import report_skips
from workers import jobs
from workers.engine import Engine

TOKEN = "tok-test"
TENANT_TOKEN = "tok-t1"
API_KEY = "key-admin"
TENANT_KEY = "key-t1"


@pytest.fixture
def redis_client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        webhook_tokens={TOKEN: "*", TENANT_TOKEN: "t1"},
        api_keys={API_KEY: "*", TENANT_KEY: "t1"},
        outcome_grace_seconds=0.0,
    )


@pytest.fixture
def app(redis_client: fakeredis.FakeRedis, settings: Settings) -> Flask:
    return create_app(
        {"TESTING": True, "REDIS_CLIENT": redis_client, "CALLSTATE_SETTINGS": settings}
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(redis_client: fakeredis.FakeRedis, settings: Settings) -> Store:
    return Store(redis_client, retention_seconds=settings.retention_seconds)


@pytest.fixture
def engine(store: Store, settings: Settings) -> Engine:
    return Engine(store, settings)


@pytest.fixture
def drain(redis_client: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Call ``drain()`` to run every queued job in-process (RQ SimpleWorker, burst);
    a drain job ends as soon as it finds nothing to do instead of waiting for more."""
    monkeypatch.setattr(jobs, "IDLE_LINGER_SECONDS", 0.0)

    def run() -> None:
        worker = SimpleWorker(
            [events_queue(redis_client)], connection=redis_client, serializer=JSONSerializer
        )
        worker.work(burst=True, logging_level="WARNING")

    yield run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_skips(terminalreporter)
