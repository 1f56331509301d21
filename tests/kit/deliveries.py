"""In-process helpers: make outcomes through intake, engine and queue; run deliveries.

With the fixtures of the tests that deliver (the conftest.py of core/deliveries,
app/subscriptions, app/outcomes and workers/deliveries imports them). Outcomes
are made the way the service makes them: PrimeVOX events posted to the intake
over the Flask test client, applied by an RQ SimpleWorker, then decided by the
engine (grace 0). Deliveries go through ``Deliveries.dispatch`` and the delivery
process's runner (workers/deliveries.py), in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from core.deliveries.dispatch import Deliveries
from core.settings import Settings
from core.store import Store
from tests.kit.webhooks import Receiver
from workers.deliveries import DeliveryRunner
from workers.engine import Engine

TOKEN = "tok-test"  # webhook token for every tenant (root conftest)
ADMIN = {"Authorization": "Bearer key-admin"}
T1 = {"Authorization": "Bearer key-t1"}
T2 = {"Authorization": "Bearer key-t2"}
RETRY_SCHEDULE = (0, 0)


def events_for(kind: str, tenant: str, call_uuid: str) -> list[dict[str, str]]:
    """The PrimeVOX events of one call ending as ``kind``."""
    ids = {"tenantId": tenant, "containerId": "c1", "callUuid": call_uuid}
    caller = {"callerIdNum": "+15551230000", "callerIdName": "Zoë"}
    inbound = {"eventType": "InboundCall", **ids, **caller, "didNumber": "+15550001000"}
    alice = {"extNumber": "101", "extName": "Alice"}
    if kind == "missed":
        return [inbound, {"eventType": "HangupCall", **ids, "extNumber": "", "extName": ""}]
    if kind == "answered":
        return [
            inbound,
            {"eventType": "ExtensionAnswered", **ids, **caller,
             "extensionNumber": "101", "extensionName": "Alice"},
            {"eventType": "HangupCall", **ids, **alice},
        ]
    if kind == "voicemail":
        return [
            inbound,
            {"eventType": "ringAttempt", "eventTarget": "extension", **ids, **alice},
            {"eventType": "voicemailHangup", **ids, **alice, **caller},
            {"eventType": "HangupCall", **ids, "extNumber": "", "extName": ""},
        ]
    if kind == "outbound":
        return [
            {"eventType": "outboundCall", **ids, **alice, "numberDialed": "+15559876543"},
            {"eventType": "inboundCallCompleted", **ids, **alice, **caller},
        ]
    raise ValueError(kind)


def subscribe(
    client: FlaskClient, url: str, auth: dict[str, str] = ADMIN, **extra: Any
) -> dict[str, Any]:
    answer = client.post("/v1/subscriptions", json={"url": url, **extra}, headers=auth)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    made: dict[str, Any] = answer.get_json()
    return made


def deliveries(
    client: FlaskClient, sub_id: str, status: str | None = None, auth: dict[str, str] = ADMIN
) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    answer = client.get(f"/v1/subscriptions/{sub_id}/deliveries{query}", headers=auth)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    found: list[dict[str, Any]] = answer.get_json()["deliveries"]
    return found


class Calls:
    """Makes outcome records through intake, the events queue and the engine."""

    def __init__(
        self, client: FlaskClient, drain: Callable[[], None], engine: Engine, store: Store
    ) -> None:
        self.client = client
        self.drain = drain
        self.engine = engine
        self.store = store

    def post(self, fields: dict[str, str]) -> None:
        answer = self.client.post(f"/webhooks/primevox/{TOKEN}", data=fields)
        assert answer.status_code == 202, answer.get_data(as_text=True)

    def decide(self, tenant: str, call_uuid: str) -> dict[str, Any]:
        """Decide the call now; returns its newest outcome record (with ``id``)."""
        self.drain()
        assert self.engine.decide(tenant, call_uuid) == "published"
        return self.latest(tenant, call_uuid)

    def latest(self, tenant: str, call_uuid: str) -> dict[str, Any]:
        records, _ = self.store.outcomes.read_outcomes([tenant], after=None, limit=10_000)
        mine = [r for r in records if r["call_uuid"] == call_uuid]
        assert mine, f"no outcome for {call_uuid}"
        return mine[-1]

    def end(self, kind: str = "missed", tenant: str = "t1") -> dict[str, Any]:
        """A whole call of ``kind``, decided; returns its outcome record."""
        call_uuid = str(uuid.uuid4())
        for fields in events_for(kind, tenant, call_uuid):
            self.post(fields)
        record = self.decide(tenant, call_uuid)
        assert record["outcome"] == kind, record
        return record

    def late_answer(self, record: dict[str, Any]) -> dict[str, Any]:
        """A straggling ExtensionAnswered for a decided call: the next revision."""
        tenant, call_uuid = record["tenant_id"], record["call_uuid"]
        self.post({
            "eventType": "ExtensionAnswered", "tenantId": tenant, "containerId": "c1",
            "callUuid": call_uuid, "callerIdNum": "+15551230000",
            "extensionNumber": "102", "extensionName": "Bob",
        })
        return self.decide(tenant, call_uuid)


class Pump:
    """Runs the delivery machinery in-process (the delivery process's runner) until idle."""

    def __init__(self, store: Store, settings: Settings, redis: fakeredis.FakeRedis) -> None:
        self.store = store
        self.redis = redis
        self.deliveries = Deliveries(store, settings)
        self.runner = DeliveryRunner(store, settings, threads=8)

    def dispatch(self) -> int:
        return sum(self.deliveries.dispatch(t) for t in self.store.tenants.all())

    def __call__(self) -> int:
        """Dispatch, then attempt until nothing is due or under way; returns attempts made."""
        self.dispatch()
        return self.runner.run_until_idle()


# -- fixtures ----------------------------------------------------------------------


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
