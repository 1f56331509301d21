"""Live call events: each step of a call sent once, in order; late and repeated
webhooks send nothing; webhook subscriptions get them as deliveries."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from test_stream import parse_sse

import app.web.sse as sse
from core.deliveries.events import dispatch_events
from core.store import Store
from statemachine.live_events import LIVE_EVENT_TYPES
from tests.kit.deliveries import T1, Calls, Pump
from tests.kit.webhooks import Receiver

IDS = {"tenantId": "t1", "containerId": "c1"}
CALLER = {"callerIdNum": "+15551230000", "callerIdName": "Zoë"}


def events(call: str) -> dict[str, dict[str, str]]:
    ids = {**IDS, "callUuid": call}
    return {
        "inbound": {"eventType": "InboundCall", **ids, **CALLER, "didNumber": "+15550001000"},
        "queued": {"eventType": "queueEntered", **ids, "queueNumber": "700", **CALLER},
        "ring_101": {"eventType": "ringAttempt", "eventTarget": "extension", **ids,
                     "extNumber": "101", "extName": "Ana"},
        "ring_102": {"eventType": "ringAttempt", "eventTarget": "extension", **ids,
                     "extNumber": "102", "extName": "Bo"},
        "answered": {"eventType": "ExtensionAnswered", **ids, **CALLER,
                     "extensionNumber": "102", "extensionName": "Bo"},
        "hangup": {"eventType": "HangupCall", **ids, "extNumber": "102", "extName": "Bo"},
    }  # fmt: skip


def sent(store: Store, call: str) -> list[tuple[str, str | None]]:
    found, _ = store.live_events.read(["t1"], after=None, limit=1000)
    return [
        (e["type"], (e.get("extension") or e.get("answered_by") or {}).get("number"))
        for e in found
        if e["call_uuid"] == call
    ]


def test_each_step_is_sent_once_in_order(
    calls: Calls, drain: Callable[[], None], store: Store
) -> None:
    """Steps go out as the call passes them, each once, whatever repeats."""
    call = str(uuid.uuid4())
    steps = events(call)
    for name in ("inbound", "queued", "ring_101"):
        calls.post(steps[name])
    drain()
    assert sent(store, call) == [
        ("call.started", None), ("call.queued", None), ("call.ringing", "101"),
    ]  # fmt: skip
    calls.post(steps["ring_101"])  # the PBX's retry
    calls.post(steps["ring_102"])
    drain()
    calls.post(steps["answered"])
    calls.post(steps["hangup"])
    calls.post(steps["hangup"])
    drain()
    assert sent(store, call) == [
        ("call.started", None), ("call.queued", None), ("call.ringing", "101"),
        ("call.ringing", "102"), ("call.answered", "102"), ("call.ended", None),
    ]  # fmt: skip
    ids = [e["id"] for e in store.live_events.read(["t1"], after=None, limit=100)[0]]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


def test_a_late_webhook_sends_nothing_the_call_has_passed(
    calls: Calls, drain: Callable[[], None], store: Store
) -> None:
    """A queueEntered or ringAttempt arriving after the answer sends no step."""
    call = str(uuid.uuid4())
    steps = events(call)
    calls.post(steps["inbound"])
    calls.post(steps["answered"])
    drain()
    calls.post(steps["queued"])
    calls.post(steps["ring_101"])
    drain()
    assert sent(store, call) == [("call.started", None), ("call.answered", "102")]


def test_webhook_subscriptions_get_the_events_they_ask_for(
    client: FlaskClient, calls: Calls, drain: Callable[[], None], pump: Pump,
    receiver: Receiver, store: Store,
) -> None:  # fmt: skip
    """A webhook subscription of call.ringing gets each ringing, with its extension, signed."""
    made = client.post("/v1/subscriptions", headers=T1, json={
        "url": receiver.url("/pop"), "outcomes": [], "events": ["call.ringing", "call.ended"]})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["events"] == ["call.ended", "call.ringing"]
    assert client.post("/v1/subscriptions", headers=T1, json={
        "kind": "slack", "url": receiver.url("/s"), "events": ["call.ringing"]}).status_code == 400
    call = str(uuid.uuid4())
    for name in ("inbound", "ring_101", "ring_102", "hangup"):
        calls.post(events(call)[name])
    drain()
    calls.decide("t1", call)
    assert dispatch_events(store, "t1") == (3, False)
    deadline = time.monotonic() + 10
    # One call's events go one at a time: the next is put back while one is out.
    while len(receiver.successes("/pop")) < 3 and time.monotonic() < deadline:
        pump()
        time.sleep(0.05)
    got = [json.loads(r.body) for r in receiver.successes("/pop")]
    assert [(g["type"], (g.get("extension") or {}).get("number")) for g in got] == [
        ("call.ringing", "101"), ("call.ringing", "102"), ("call.ended", None),
    ]  # fmt: skip
    assert all(g["caller"]["number"] == "+15551230000" for g in got)
    listed = client.get(f"/v1/subscriptions/{made.get_json()['id']}/deliveries", headers=T1)
    types = sorted(d["type"] for d in listed.get_json()["deliveries"])
    assert types == ["call.ended", "call.ringing", "call.ringing"]
    assert set(LIVE_EVENT_TYPES) >= set(types)


def read_stream(client: FlaskClient, query: str = "", headers: dict[str, str] | None = None,
                ) -> list[dict[str, str]]:  # fmt: skip
    with client.get("/v1/events/stream" + query, headers={**T1, **(headers or {})}) as answer:
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return parse_sse(answer.get_data(as_text=True))


def test_the_event_stream_resumes_and_filters(
    client: FlaskClient, calls: Calls, drain: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """/v1/events/stream: each event with its id and type; resumed after Last-Event-ID."""
    monkeypatch.setattr(sse, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(sse, "STREAM_MAX_SECONDS", 0.15)
    call = str(uuid.uuid4())
    for name in ("inbound", "ring_101", "answered"):
        calls.post(events(call)[name])
    drain()
    got = read_stream(client)
    assert [e["event"] for e in got] == ["call.started", "call.ringing", "call.answered"]
    bodies = [json.loads(e["data"]) for e in got]
    assert [b["id"] for b in bodies] == [e["id"] for e in got]
    assert bodies[1]["extension"] == {"number": "101", "name": "Ana"}
    assert bodies[2]["answered_by"] == {"number": "102", "name": "Bo"}
    resumed = read_stream(client, headers={"Last-Event-ID": got[0]["id"]})
    assert [e["id"] for e in resumed] == [e["id"] for e in got[1:]]
    only = read_stream(client, "?type=call.answered")
    assert [e["event"] for e in only] == ["call.answered"]
    with client.get("/v1/events/stream?after=nope", headers=T1) as answer:
        assert answer.status_code == 400
    with client.get("/v1/events/stream?tenant_id=t2", headers=T1) as answer:
        assert answer.status_code == 403


def test_a_tenant_nobody_asks_events_of_is_skipped_and_later_subscribers_miss_nothing(
    client: FlaskClient, calls: Calls, drain: Callable[[], None], store: Store,
) -> None:  # fmt: skip
    """Without event subscriptions the cursor moves to now; a subscription made then
    gets every event from its creation on."""
    first = str(uuid.uuid4())
    calls.post(events(first)["inbound"])
    drain()
    assert dispatch_events(store, "t1") == (0, False)
    made = client.post("/v1/subscriptions", headers=T1, json={
        "url": "https://example.com/pop", "outcomes": [], "events": ["call.ringing"]})
    assert made.status_code == 201
    calls.post(events(first)["ring_101"])
    drain()
    created, more = dispatch_events(store, "t1")
    assert (created, more) == (1, False)
    listed = client.get(f"/v1/subscriptions/{made.get_json()['id']}/deliveries", headers=T1)
    [delivery] = listed.get_json()["deliveries"]
    assert delivery["event"]["extension"]["number"] == "101" and delivery["payload"] is None
