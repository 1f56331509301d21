"""A long wait told as an alert, through the real web and worker.

The tenant's threshold is set the way an operator sets it (the admin key's
PATCH /v1/tenants/<id>), a webhook subscription asks for ``alert.long_wait``,
and a caller waits in a queue past it: the alert goes out once; the call is
answered: it goes out once more with ``resolved: true``. The housekeeper looks
every 5 s, so the waits below are hang detectors, not timings.
"""

from __future__ import annotations

import json
from typing import Any

from callstate_harness import ADMIN_KEY, TOKEN_ALL, Api, Launcher, subscribe, wait_until
from callstate_harness import load_webhook_kit as load_kit
from primevox_bodies import ALICE, Call

kit = load_kit()
TENANT = "waiting-room"
THRESHOLD = 2


def send(api: Api, method: str, path: str, body: Any) -> tuple[int, Any]:
    answer = api.request(
        method,
        path,
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    return answer.status, (answer.json() if answer.body else None)


def test_a_long_wait_alerts_once_and_resolves_once_when_answered(launcher: Launcher) -> None:
    """alert.long_wait once when a queued caller passes the tenant's threshold,
    once with resolved: true after the call is answered, nothing else."""
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

        call = Call(TENANT)
        for event in (call.inbound(), call.queue()):
            assert api.post_event(event, token=TOKEN_ALL).status == 202
        [started] = wait_until(alerts, 30, "alert.long_wait for the waiting caller")
        kit.verify(made["secret"], receiver.successes("/alerts")[0].headers,
                   receiver.successes("/alerts")[0].body)  # fmt: skip
        assert started["type"] == "alert.long_wait" and started["tenant_id"] == TENANT
        assert started["resolved"] is False and started["threshold"] == THRESHOLD
        assert started["count"] == 1 and started["value"] > THRESHOLD

        for event in (call.ring(ALICE), call.answered(ALICE)):
            assert api.post_event(event, token=TOKEN_ALL).status == 202
        wait_until(lambda: len(alerts()) >= 2, 30, "the alert resolved", detail=alerts)
        got = alerts()
    assert [(a["type"], a["resolved"]) for a in got] == [
        ("alert.long_wait", False),
        ("alert.long_wait", True),
    ], got
    assert got[1]["tenant_id"] == TENANT and got[1]["id"] != got[0]["id"]
