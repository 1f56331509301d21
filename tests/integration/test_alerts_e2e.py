"""A long wait told as an alert, through the real web and worker.

The tenant's threshold is set the way an operator sets it (the admin key's
PATCH /v1/tenants/<id>), a webhook subscription asks for ``alert.long_wait``,
and a caller waits in a queue past it: the alert goes out once; the call is
answered: it goes out once more with ``resolved: true``; a second caller who
waits too long and hangs up is a second episode. The housekeeper looks
every 5 s, so the waits below are hang detectors, not timings.
"""

from __future__ import annotations

import json
from typing import Any

from callstate_harness import ADMIN_KEY, TOKEN_ALL, Launcher, subscribe, wait_until
from callstate_harness import load_webhook_kit as load_kit
from primevox_bodies import ALICE, Call

from tests.integration.test_tenants_e2e import send

kit = load_kit()
TENANT = "waiting-room"
THRESHOLD = 2


def test_a_long_wait_alerts_once_and_resolves_once(launcher: Launcher) -> None:
    """alert.long_wait once when a queued caller passes the tenant's threshold,
    once with resolved: true after the call is answered, nothing in between or
    after: the next caller who waits too long (and hangs up) is a new episode."""
    with kit.Receiver() as receiver:
        api = launcher.start_service(SUBSCRIPTION_ALLOW_PRIVATE="1")
        assert send(api, "POST", "/v1/tenants", {"id": TENANT})[0] == 201
        status, changed = send(
            api, "PATCH", f"/v1/tenants/{TENANT}", {"alert_wait_seconds": THRESHOLD}
        )
        assert status == 200, changed
        assert changed["tenant"]["alert_wait_seconds"] == THRESHOLD, changed
        made = subscribe(
            api,
            ADMIN_KEY,
            {"url": receiver.url("/alerts"), "tenant_id": TENANT, "outcomes": [],
             "events": ["alert.long_wait"]},
        )  # fmt: skip

        def alerts() -> list[dict[str, Any]]:
            return [json.loads(r.body) for r in receiver.successes("/alerts")]

        def post(*events: dict[str, str]) -> None:
            for event in events:
                assert api.post_event(event, token=TOKEN_ALL).status == 202

        answered, abandoned = Call(TENANT), Call(TENANT)
        post(answered.inbound(), answered.queue())
        [started] = wait_until(alerts, 30, "alert.long_wait for the waiting caller")
        [first] = receiver.successes("/alerts")
        kit.verify(made["secret"], first.headers, first.body)
        assert started["type"] == "alert.long_wait" and started["tenant_id"] == TENANT
        assert started["resolved"] is False and started["threshold"] == THRESHOLD
        assert started["count"] == 1 and started["value"] > THRESHOLD

        post(answered.ring(ALICE), answered.answered(ALICE))
        wait_until(lambda: len(alerts()) >= 2, 30, "the alert resolved", detail=alerts)
        # Several of the housekeeper's looks pass before the next episode ends:
        # a repeated alert or resolution would arrive among them.
        post(abandoned.inbound(), abandoned.queue())
        wait_until(lambda: len(alerts()) >= 3, 30, "the next caller's alert", detail=alerts)
        post(abandoned.hangup())
        wait_until(lambda: len(alerts()) >= 4, 30, "that alert resolved", detail=alerts)
        got = alerts()
    assert [(a["type"], a["resolved"]) for a in got] == [
        ("alert.long_wait", False),
        ("alert.long_wait", True),
    ] * 2, got
    assert {a["tenant_id"] for a in got} == {TENANT}
    assert len({a["id"] for a in got}) == 4
