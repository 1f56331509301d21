"""Past its Redis connection budget a web process answers 503 with Retry-After,
after a short wait, and queues nothing; a freed connection serves the next request."""

from __future__ import annotations

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from core.settings import Settings
from core.store import BudgetedPool, Store
from tests.conftest import API_KEY, TOKEN

EVENT = "eventType=InboundCall&tenantId=t1&callUuid=b1&callerIdNum=%2B15551234567"


@pytest.fixture
def pool() -> BudgetedPool:
    return BudgetedPool(
        connection_class=fakeredis.FakeRedisConnection,
        server=fakeredis.FakeServer(),
        max_connections=1,
        timeout=0.1,
    )


@pytest.fixture
def budgeted_app(pool: BudgetedPool, settings: Settings) -> Flask:
    client = redis.Redis(connection_pool=pool)
    return create_app({"TESTING": True, "REDIS_CLIENT": client, "CALLSTATE_SETTINGS": settings})


def test_webhook_past_the_budget_gets_503_with_retry_after(
    budgeted_app: Flask, pool: BudgetedPool
) -> None:
    """A webhook finding every connection busy is told to retry and nothing is kept."""
    web: FlaskClient = budgeted_app.test_client()
    held = pool.get_connection()
    answer = web.post(f"/webhooks/primevox/{TOKEN}", data=EVENT)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "busy" in answer.get_json()["error"]
    pool.release(held)
    store = Store(redis.Redis(connection_pool=pool))
    assert store.tenants.all() == []
    assert web.post(f"/webhooks/primevox/{TOKEN}", data=EVENT).status_code == 202
    assert store.tenants.all() == ["t1"]


def test_reads_past_the_budget_get_503_with_retry_after(
    budgeted_app: Flask, pool: BudgetedPool
) -> None:
    """The read API answers the same way, through the app-wide error handler."""
    web: FlaskClient = budgeted_app.test_client()
    held = pool.get_connection()
    answer = web.get("/v1/calls/live", headers={"Authorization": f"Bearer {API_KEY}"})
    assert (answer.status_code, answer.headers.get("Retry-After")) == (503, "1")
    assert "busy" in answer.get_json()["error"]
    pool.release(held)
    answer = web.get("/v1/calls/live", headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 200
