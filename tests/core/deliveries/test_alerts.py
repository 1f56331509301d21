"""Alerts across a scripted episode: each fires once when its condition starts and
once, resolved, when it ends, to every subscription that asks (any kind)."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from core.deliveries.events import dispatch_events
from core.settings import Settings
from core.store import Store
from core.tenant_settings import TenantSettings
from statemachine.alerts import ALERT_TYPES
from tests.kit.deliveries import T1, Calls, Pump
from tests.kit.notification_shapes import check_slack
from tests.kit.webhooks import Receiver
from workers.alerts import AlertWatch

IDS = {"tenantId": "t1", "containerId": "c1"}


@pytest.fixture
def thresholds(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """t1 sets every alert: waits over 60 s, service level under 50 %, callbacks over 10 min."""
    original = store.tenants.settings_of

    def settings_of(tenant_id: str, defaults: TenantSettings) -> TenantSettings:
        found = original(tenant_id, defaults)
        if tenant_id != "t1":
            return found
        return dataclasses.replace(
            found, alert_wait_seconds=60.0, alert_service_level=0.5, alert_callback_minutes=10.0
        )

    monkeypatch.setattr(store.tenants, "settings_of", settings_of)


def alerts_sent(store: Store) -> list[tuple[str, bool]]:
    found, _ = store.live_events.read(["t1"], after=None, limit=1000)
    return [(e["type"], e["resolved"]) for e in found if e["type"].startswith("alert.")]


@pytest.mark.usefixtures("thresholds")
def test_each_alert_fires_once_and_resolves_once(
    client: FlaskClient, calls: Calls, drain: Callable[[], None], store: Store,
    settings: Settings, pump: Pump, receiver: Receiver,
) -> None:  # fmt: skip
    """A long wait, a bad half hour and overdue callbacks: each alert twice, no more."""
    for body in (
        {"url": receiver.url("/all"), "outcomes": [], "events": list(ALERT_TYPES)},
        {"kind": "slack", "url": receiver.url("/slack"), "outcomes": [],
         "events": ["alert.long_wait"]},
    ):  # fmt: skip
        assert client.post("/v1/subscriptions", headers=T1, json=body).status_code == 201
    offset = [0.0]
    watch = AlertWatch(store, settings, clock=lambda: time.time() + offset[0])

    def at(seconds: float) -> None:
        """Evaluate as if ``seconds`` had passed since the episode began, twice: the
        second look must send nothing new."""
        offset[0] = seconds
        watch._looked = float("-inf")
        watch.tick()
        watch._looked = float("-inf")
        watch.tick()

    # A caller waits in the queue past 60 s, then is answered.
    waiting = {**IDS, "callUuid": str(uuid.uuid4())}
    calls.post({"eventType": "InboundCall", **waiting, "callerIdNum": "+15557770000"})
    calls.post({"eventType": "queueEntered", **waiting, "queueNumber": "700"})
    drain()
    at(10)
    assert alerts_sent(store) == []
    at(90)
    assert alerts_sent(store) == [("alert.long_wait", False)]
    calls.post({"eventType": "ExtensionAnswered", **waiting, "extensionNumber": "101"})
    calls.post({"eventType": "HangupCall", **waiting, "extNumber": "101"})
    drain()
    at(100)
    assert alerts_sent(store) == [("alert.long_wait", False), ("alert.long_wait", True)]

    # Ten missed calls in the half hour: service level 0 % of 10 offered, under 50 %.
    # (Their callers are not the answered calls' below, which would count as called back.)
    for number in range(10):
        missed = {**IDS, "callUuid": str(uuid.uuid4())}
        calls.post({"eventType": "InboundCall", **missed, "callerIdNum": f"+1555888000{number}"})
        calls.post({"eventType": "queueEntered", **missed, "queueNumber": "700"})
        calls.post({"eventType": "HangupCall", **missed, "extNumber": ""})
        calls.decide("t1", missed["callUuid"])
    at(200)
    assert alerts_sent(store)[2:] == [("alert.service_level", False)]
    # Ten answered at once: 50 % of 20, no longer under.
    for _ in range(10):
        calls.end("answered")
    at(230)  # within the minute: not looked at again yet
    assert alerts_sent(store)[2:] == [("alert.service_level", False)]
    at(270)
    assert alerts_sent(store)[2:] == [
        ("alert.service_level", False), ("alert.service_level", True),
    ]  # fmt: skip

    # The missed caller is not called back within 10 minutes; then somebody does.
    at(12 * 60)
    assert alerts_sent(store)[4:] == [("alert.callback_overdue", False)]
    listed = client.get("/v1/callbacks?status=open", headers=T1).get_json()["callbacks"]
    assert listed
    for item in listed:
        answer = client.post(f"/v1/callbacks/{item['id']}/resolve", headers=T1,
                             json={"note": "called back"})  # fmt: skip
        assert answer.status_code == 200, answer.get_data(as_text=True)
    at(13 * 60)
    at(20 * 60)
    assert alerts_sent(store) == [
        ("alert.long_wait", False), ("alert.long_wait", True),
        ("alert.service_level", False), ("alert.service_level", True),
        ("alert.callback_overdue", False), ("alert.callback_overdue", True),
    ]  # fmt: skip

    # Delivered: every alert to the webhook, the long waits to Slack as messages.
    assert dispatch_events(store, "t1") == (8, False)
    pump()
    got: list[dict[str, Any]] = [json.loads(r.body) for r in receiver.successes("/all")]
    assert sorted((g["type"], g["resolved"]) for g in got) == sorted(alerts_sent(store))
    slack = [json.loads(r.body) for r in receiver.successes("/slack")]
    for message in slack:
        check_slack(message)
    assert [m["text"].split(" (")[0] for m in slack] == [
        "A caller is waiting too long", "Resolved: No caller waits too long any more",
    ]  # fmt: skip
