"""The supervisor's view end to end: real redis-server (and a Redis Cluster), the web
and a worker process of 2 RQ workers, realistic PrimeVOX bodies. The extension board,
a call's timeline and the callbacks (resolved by a call dialled in another format, and
by hand), tenant-sealed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from callstate_harness import (
    KEY_A,
    KEY_B,
    TENANT_A,
    TENANT_B,
    Api,
    Launcher,
    post_at_once,
    wait_until,
)
from primevox_bodies import ALICE, BOB, CAROL, Call, scenario

WITHIN = 15.0  # bounded waits, not performance claims
# Every test here runs on one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)


@pytest.fixture
def service(launcher: Launcher) -> Api:
    return launcher.start_service(workers=2)


def board(api: Api, key: str = KEY_A) -> dict[str, dict[str, Any]]:
    extensions = api.get_json("/v1/extensions/live", key)["extensions"]
    return {e["number"]: e for e in extensions}


def states(api: Api, key: str = KEY_A) -> dict[str, str]:
    return {number: e["state"] for number, e in board(api, key).items()}


def callbacks(api: Api, status: str, key: str = KEY_A) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get_json(f"/v1/callbacks?status={status}", key)["callbacks"]
    return found


def resolve(api: Api, callback_id: str, body: Any, key: str = KEY_A) -> Any:
    return api.request(
        "POST",
        f"/v1/callbacks/{callback_id}/resolve",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )


def test_the_board_follows_real_calls(service: Api) -> None:
    """Ringing, on a call, idle again, with today's figures; a call posted all at once
    (any arrival order) ends with the same board; tenant B sees nothing of it."""
    call = Call(TENANT_A)
    for body in (call.inbound(), call.queue(), call.ring(ALICE), call.ring(BOB)):
        service.accept(body)
    wait_until(lambda: states(service) == {"101": "ringing", "102": "ringing"}, WITHIN, "rings")
    service.accept(call.answered(BOB))
    wait_until(lambda: states(service) == {"101": "idle", "102": "on_call"}, WITHIN, "answer")
    assert board(service)["102"]["call_uuid"] == call.uuid
    service.accept(call.completed(BOB))
    service.accept(call.hangup(BOB))
    wait_until(lambda: states(service) == {"101": "idle", "102": "idle"}, WITHIN, "the end")

    again = Call(TENANT_A)
    post_at_once(service, scenario("answered", again))

    def settled() -> dict[str, dict[str, Any]] | None:
        now = board(service)
        done = {n: e["state"] for n, e in now.items()} == {"101": "idle", "102": "idle"}
        return now if done and now["102"]["answered"] == 2 else None

    final = wait_until(settled, WITHIN, "the second call answered and ended")
    assert final["102"]["missed"] == 0 and final["102"]["name"] == BOB.name
    assert board(service, KEY_B) == {}
    assert {e["tenant_id"] for e in service.get_json("/v1/extensions/live")["extensions"]} == {
        TENANT_A
    }


def test_a_calls_timeline(service: Api) -> None:
    """Every webhook in received order, the talk, and the outcome once decided; 404 for
    an unknown call and for another tenant's key."""
    call = Call(TENANT_A)
    for body in scenario("answered", call):
        service.accept(body)

    def told() -> list[dict[str, Any]] | None:
        answer = service.get(f"/v1/calls/{call.uuid}/timeline", KEY_A)
        if answer.status == 404:
            return None  # no event of the call applied yet
        assert answer.status == 200, answer.text
        steps: list[dict[str, Any]] = answer.json()["timeline"]
        return steps if any(s["kind"] == "outcome" for s in steps) else None

    steps = wait_until(told, WITHIN, "the outcome in the timeline")
    kinds = [s["kind"] for s in steps]
    assert kinds[:3] == ["call", "queue", "ring"] and "answer" in kinds and "talk" in kinds
    assert kinds[-1] == "outcome" and steps[-1]["text"].startswith("outcome: answered by 102")
    assert all(set(s) >= {"at", "kind", "text", "seconds"} for s in steps)
    assert service.get(f"/v1/calls/{call.uuid}/timeline", KEY_B).status == 404
    assert service.get("/v1/calls/nobody/timeline", KEY_A).status == 404


def test_callbacks_resolve_themselves_and_by_hand(service: Api) -> None:
    """A missed 5551230000 is resolved by an outbound call to "+1 555 123 0000"; a missed
    caller from abroad stays open until resolved by hand; tenant-sealed."""
    missed = Call(TENANT_A, caller_number="5551230000")
    for body in scenario("abandoned", missed):
        service.accept(body)
    abroad = Call(TENANT_A, caller_number="+44 20 7123 4567")
    for body in scenario("no_answer", abroad):
        service.accept(body)
    other = Call(TENANT_B, caller_number="5551230000")
    for body in scenario("abandoned", other):
        service.accept(body)

    opened = wait_until(
        lambda: (found := callbacks(service, "open")) and len(found) == 2 and found,
        WITHIN,
        "two open callbacks",
    )
    assert [i["number"] for i in opened] == ["+15551230000", "+442071234567"]
    assert opened[0]["missed_call_uuid"] == missed.uuid
    theirs = wait_until(lambda: callbacks(service, "open", KEY_B), WITHIN, "tenant B's item")
    assert [i["missed_call_uuid"] for i in theirs] == [other.uuid]

    back = Call(TENANT_A)
    service.accept(back.outbound(CAROL, dialed="+1 555 123 0000"))
    (done,) = wait_until(lambda: callbacks(service, "resolved"), WITHIN, "the call-back")
    assert done["id"] == opened[0]["id"] and done["resolved_by"] == back.uuid
    assert done["resolved_by_kind"] == "called_back" and done["resolved_at"]
    assert len(callbacks(service, "open", KEY_B)) == 1, "another tenant's miss stays open"

    item = opened[1]
    assert resolve(service, item["id"], {"note": "x"}, KEY_B).status == 404
    assert resolve(service, item["id"], {"nope": 1}).status == 400
    answer = resolve(service, item["id"], {"note": "emailed them, they'll call again"})
    assert answer.status == 200, answer.text
    assert answer.json()["resolved_by"] == "emailed them, they'll call again"
    assert callbacks(service, "open") == []
    assert {i["resolved_by_kind"] for i in callbacks(service, "resolved")} == {
        "called_back",
        "manual",
    }
    assert resolve(service, "cb_unknown", {"note": "x"}).status == 404
