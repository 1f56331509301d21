"""Fixtures of the subscription and stream tests (in-process, fakeredis).

Outcomes are made the way the service makes them: PrimeVOX events posted to
the intake over the Flask test client, applied by an RQ SimpleWorker, then
decided by the engine (grace 0). Deliveries go through ``Deliveries.dispatch``
and the delivery process's runner (workers/deliveries.py), in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import fakeredis
import pytest
from flask.testing import FlaskClient
from inproc_kit import RETRY_SCHEDULE, TOKEN, Calls, Pump
from webhook_kit import Receiver

from core.settings import Settings
from core.store import Store
from workers.engine import Engine


@pytest.fixture
def settings() -> Settings:
    """The root settings plus a t2 key, loopback subscriptions allowed, instant retries."""
    return Settings(
        webhook_tokens={TOKEN: "*", "tok-t1": "t1"},
        api_keys={"key-admin": "*", "key-t1": "t1", "key-t2": "t2"},
        outcome_grace_seconds=0.0,
        subscription_allow_private=True,
        delivery_retry_seconds=RETRY_SCHEDULE,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def calls(
    client: FlaskClient, drain: Callable[[], None], engine: Engine, store: Store
) -> Calls:
    return Calls(client, drain, engine, store)


@pytest.fixture
def pump(store: Store, settings: Settings, redis_client: fakeredis.FakeRedis) -> Pump:
    return Pump(store, settings, redis_client)
