"""Capture over real HTTP: every PrimeVOX event is accepted, logged once, in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from callstate_harness import TENANT_A, Api, Launcher, post_at_once, wait_until
from primevox_bodies import ALICE, BOB, Call, Ext, Fields, message, new_uuid

# Every test here runs on one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

# How long an accepted event may take to show in its call's log. The service
# takes milliseconds; the bound is generous for a loaded CI machine but still
# far below anything that would mean "lost until a reaper found it".
VISIBLE_WITHIN = 2.0

CALL_EXAMPLES: dict[str, Callable[[Call], Fields]] = {
    "InboundCall": lambda c: c.inbound(),
    "HangupCall (answered)": lambda c: c.hangup(ALICE),
    "HangupCall (unanswered)": lambda c: c.hangup(),
    "ringAttempt extension": lambda c: c.ring(ALICE),
    "ringAttempt ringGroup": lambda c: c.ring_group("600"),
    "queueEntered": lambda c: c.queue("700"),
    "ExtensionAnswered": lambda c: c.answered(BOB),
    "inboundCallCompleted": lambda c: c.completed(BOB),
    "voicemailHangup": lambda c: c.voicemail(ALICE),
    "outboundCall": lambda c: c.outbound(BOB, "+15559876543"),
    "unknown type with callUuid": lambda c: c.unknown("callParked"),
}


def logged(api: Api, call_uuid: str, fields: Fields) -> list[dict[str, Any]]:
    """The entries of the call's log whose fields are exactly ``fields``."""
    call = api.call(call_uuid)
    if call is None:
        return []
    return [e for e in call["events"] if e["fields"] == fields]


def wait_logged(api: Api, call_uuid: str, fields: Fields) -> dict[str, Any]:
    found = wait_until(
        lambda: logged(api, call_uuid, fields),
        VISIBLE_WITHIN,
        f"{fields['eventType']} to show in the log of call {call_uuid}",
        interval=0.02,
    )
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("as_json", [False, True], ids=["form", "json"])
def test_every_call_event_is_accepted_and_logged(service: Api, as_json: bool) -> None:
    """Every PrimeVOX call event, form- or JSON-encoded, answers 202 and shows in its call's log."""
    for name, build in CALL_EXAMPLES.items():
        call = Call(TENANT_A)
        fields = build(call)
        answer = service.post_event(fields, as_json=as_json)
        assert answer.status == 202, f"{name}: {answer.status} {answer.text}"
        body = answer.json()
        assert body["status"] == "accepted"
        assert body["call_uuid"] == call.uuid
        assert body["event_type"] == fields["eventType"]
        entry = wait_logged(service, call.uuid, fields)
        assert entry["event_type"] == fields["eventType"], name
        assert entry["received_at"] == body["received_at"], name


def test_every_shared_example_body_is_accepted_and_logged(service: Api) -> None:
    """Every body of tests/kit/examples.py, POSTed byte for byte, is 202 and readable back."""
    try:
        from tests.kit import examples
    except ImportError as exc:  # pragma: no cover - the corpus lives in the shared kit
        pytest.fail(f"tests/kit/examples.py is not importable: {exc}")
    for name, (encoding, body) in examples.EXAMPLES.items():
        answer = service.request(
            "POST",
            f"/webhooks/primevox/{service.token}",
            body.encode("utf-8"),
            {"Content-Type": examples.CONTENT_TYPES[encoding]},
        )
        assert answer.status == 202, f"{name}: {answer.status} {answer.text}"
        accepted = answer.json()
        fields = examples.FIELDS[name]
        if "call_uuid" in accepted:
            entry = wait_logged(service, accepted["call_uuid"], fields)
            assert entry["received_at"] == accepted["received_at"], name
            continue
        conversation = accepted["conversation_id"]

        def message_there(text: str = fields["messageText"], conv: str = conversation) -> bool:
            answer = service.get(f"/v1/conversations/{conv}/messages")
            return answer.status == 200 and text in [m["text"] for m in answer.json()["messages"]]

        wait_until(message_there, VISIBLE_WITHIN, f"{name} in conversation {conversation}")


def test_sms_messages_are_readable_by_conversation(service: Api, launcher: Launcher) -> None:
    """SMS events (JSON) answer 202 and are listed oldest first under their conversation."""
    conversation = f"conv-{new_uuid()}"
    sent = [
        message("inbound", TENANT_A, conversation, "Hi, are you open today? — Zoë"),
        message("outbound", TENANT_A, conversation, "Yes, until 6 pm. 😀"),
        message("inbound", TENANT_A, conversation, "Great, see you at 5 & thanks!"),
    ]
    receipts = []
    for fields in sent:
        body = service.accept(fields)
        assert body["conversation_id"] == conversation
        receipts.append(body["received_at"])

    path = f"/v1/conversations/{conversation}/messages"

    def all_there() -> list[dict[str, Any]] | None:
        answer = service.get(path)
        if answer.status != 200:
            return None
        messages: list[dict[str, Any]] = answer.json()["messages"]
        return messages if len(messages) >= len(sent) else None

    messages = wait_until(all_there, VISIBLE_WITHIN, "3 messages in the conversation")
    assert [m["direction"] for m in messages] == ["inbound", "outbound", "inbound"]
    assert [m["text"] for m in messages] == [f["messageText"] for f in sent]
    assert [m["from"] for m in messages] == [f["fromNumber"] for f in sent]
    assert [m["to"] for m in messages] == [f["toNumber"] for f in sent]
    assert [m["received_at"] for m in messages] == receipts

    # Unknown event types without a callUuid are accepted and applied (kept for inspection).
    service.accept({"eventType": "faxReceived", "tenantId": TENANT_A, "containerId": "c1"})
    wait_until(lambda: launcher.pending(TENANT_A) == 0, VISIBLE_WITHIN, "pending events to drain")


def test_same_event_posted_five_times_is_stored_once(service: Api, launcher: Launcher) -> None:
    """A sender's retries (the same event posted 5 times) are stored once, at the first receipt."""
    call = Call(TENANT_A)
    fields = call.inbound()
    bodies = [service.accept(fields) for _ in range(5)]
    assert len({b["event_id"] for b in bodies}) == 1
    wait_until(lambda: launcher.pending(TENANT_A) == 0, 5, "all 5 deliveries to be applied")
    entries = logged(service, call.uuid, fields)
    assert len(entries) == 1, entries
    assert entries[0]["received_at"] == bodies[0]["received_at"]
    assert len(service.call(call.uuid)["events"]) == 1  # type: ignore[index]


def test_same_event_posted_from_8_threads_at_once_is_stored_once(
    service: Api, launcher: Launcher
) -> None:
    """The same event posted concurrently from 8 threads is stored exactly once."""
    call = Call(TENANT_A)
    fields = call.ring(ALICE)
    answers = post_at_once(service, [fields] * 8)
    assert [a.status for a in answers] == [202] * 8, [a.text for a in answers]
    bodies = [a.json() for a in answers]
    assert len({b["event_id"] for b in bodies}) == 1
    wait_until(lambda: launcher.pending(TENANT_A) == 0, 5, "all 8 deliveries to be applied")
    call_now = service.call(call.uuid)
    assert call_now is not None
    assert len(call_now["events"]) == 1, call_now["events"]
    assert call_now["events"][0]["received_at"] == min(b["received_at"] for b in bodies)


def test_one_calls_events_posted_concurrently_are_each_stored_once_in_received_order(
    service: Api, launcher: Launcher
) -> None:
    """32 events of one call posted at once from 32 threads: each stored once, in received order."""
    call = Call(TENANT_A)
    sent = [call.inbound(), call.queue()] + [
        call.ring(Ext(str(200 + i), f"Agent {i}")) for i in range(30)
    ]
    answers = post_at_once(service, sent)
    assert [a.status for a in answers] == [202] * len(sent), [a.text for a in answers]
    receipts = {a.json()["event_id"]: a.json()["received_at"] for a in answers}
    assert len(receipts) == len(sent)

    wait_until(lambda: launcher.pending(TENANT_A) == 0, 5, "all events to be applied")
    found = service.call(call.uuid)
    assert found is not None
    events = found["events"]
    assert len(events) == len(sent)
    for fields, answer in zip(sent, answers, strict=True):
        matching = [e for e in events if e["fields"] == fields]
        assert len(matching) == 1, (fields, matching)
        assert matching[0]["received_at"] == answer.json()["received_at"]
    times = [e["received_at"] for e in events]
    assert times == sorted(times), "the log is not in received order"
    assert found["state"] == "ringing"
