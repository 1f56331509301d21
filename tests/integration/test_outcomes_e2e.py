"""Outcomes end to end: web + a worker process of 2 RQ workers, OUTCOME_GRACE_SECONDS=1."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from callstate_harness import (
    KEY_A,
    KEY_B,
    TENANT_A,
    TENANT_B,
    TOKEN_A,
    TOKEN_B,
    Api,
    Launcher,
    post_at_once,
    wait_until,
)
from primevox_bodies import ALICE, BOB, CAROL, EXPECTED, Call, Ext, Fields, message, scenario

# Every test here runs on one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

# Bounded waits, not performance claims: the grace is 1 s and a worker decides
# within a housekeeper tick (0.25 s) after it, so 15 s means something is wrong.
DECIDED_WITHIN = 15.0
LIVE_WITHIN = 2.0


@pytest.fixture
def service(launcher: Launcher) -> Api:
    """web and one Procfile worker process running 2 RQ workers."""
    return launcher.start_service(workers=2)


def party(ext: Ext) -> dict[str, str]:
    return {"number": ext.number, "name": ext.name}


def records_of(api: Api, tenant: str, call_uuid: str | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in api.outcomes(query=f"tenant_id={tenant}")
        if call_uuid is None or r["call_uuid"] == call_uuid
    ]


def settle(launcher: Launcher, tenant: str = TENANT_A) -> None:
    """Wait until nothing is left to happen: every event applied, every timer decided."""
    wait_until(
        lambda: launcher.quiet(tenant),
        DECIDED_WITHIN,
        f"tenant {tenant} to settle (no pending event, timer or queued job)",
        interval=0.1,
        detail=lambda: {
            "pending": launcher.pending(tenant),
            "timers": launcher.timers(tenant),
            "queued": launcher.queued(),
        },
    )


def wait_revision(
    api: Api, call_uuid: str, revision: int, tenant: str = TENANT_A
) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for record in records_of(api, tenant, call_uuid):
            if record["revision"] == revision:
                return record
        return None

    return wait_until(found, DECIDED_WITHIN, f"revision {revision} of {call_uuid}", interval=0.1)


def post_in_order(api: Api, bodies: list[Fields]) -> None:
    for fields in bodies:
        api.accept(fields)


def test_answered_call_has_exactly_one_outcome(service: Api, launcher: Launcher) -> None:
    """A full answered call gives exactly one record: answered, revision 1, with its facts."""
    call = Call(TENANT_A)
    post_in_order(service, scenario("answered", call))
    record = wait_revision(service, call.uuid, 1)
    settle(launcher)

    assert records_of(service, TENANT_A) == [record]
    assert record["outcome"] == "answered"
    assert record["missed_reason"] is None
    assert record["answered_by"] == party(BOB)
    assert record["ended_by"] == "hangup"
    assert record["direction"] == "inbound"
    assert record["tenant_id"] == TENANT_A
    assert record["container_id"] == call.container
    assert record["caller"] == {"number": call.caller_number, "name": call.caller_name}
    assert record["did"]["number"] == call.did
    assert record["queue"] == "700"
    assert record["rang"] == [party(ALICE), party(BOB)]
    assert record["started_at"] <= record["answered_at"] <= record["ended_at"]
    assert record["wait_seconds"] >= 0 and record["talk_seconds"] >= 0

    found = service.call(call.uuid)
    assert found is not None
    assert found["outcome"] == record
    assert found["ended_at"] == record["ended_at"]
    assert call.uuid not in {c["call_uuid"] for c in service.live()}


def test_racing_end_events_give_one_correct_outcome(service: Api, launcher: Launcher) -> None:
    """A call's end events posted at the same instant give one outcome, the right one."""
    inbound = [Call(TENANT_A) for _ in range(6)]
    extension_only = [Call(TENANT_A) for _ in range(3)]
    outbound = [Call(TENANT_A) for _ in range(3)]
    for call in inbound + extension_only:
        post_in_order(service, [*([call.inbound()] if call in inbound else []), call.ring(ALICE)])
    racing: list[Fields] = []
    for index, call in enumerate(inbound):
        # Half the PBXes name the answerer on HangupCall, half leave it empty.
        hangup = call.hangup(ALICE) if index % 2 else call.hangup()
        racing += [hangup, call.answered(ALICE), call.completed(ALICE)]
    for call in extension_only:
        racing += [call.answered(ALICE), call.completed(ALICE)]
    for call in outbound:
        racing += [call.outbound(BOB), call.completed(BOB)]
    answers = post_at_once(service, racing)
    assert [a.status for a in answers] == [202] * len(racing)

    everyone = inbound + extension_only + outbound
    wait_until(
        lambda: len(records_of(service, TENANT_A)) >= len(everyone), DECIDED_WITHIN, "outcomes"
    )
    settle(launcher)
    records = {r["call_uuid"]: r for r in records_of(service, TENANT_A)}
    assert len(records) == len(records_of(service, TENANT_A)) == len(everyone)
    for call in everyone:
        record = records[call.uuid]
        expected = "outbound" if call in outbound else "answered"
        assert (record["outcome"], record["revision"], record["ended_by"]) == (
            expected, 1, "hangup"
        ), record
        if call in outbound:
            assert record["number_dialed"] == "+15559876543"
        else:
            assert record["answered_by"] == party(ALICE)


def test_duplicates_of_every_event_posted_concurrently_give_one_outcome_per_call(
    service: Api, launcher: Launcher
) -> None:
    """Each event of a call of every kind posted 3 times at once: one outcome per call."""
    kinds = list(EXPECTED)
    calls = {kind: Call(TENANT_A) for kind in kinds}
    events = {kind: scenario(kind, call) for kind, call in calls.items()}
    for step in range(max(len(e) for e in events.values())):
        batch = [e[step] for e in events.values() if step < len(e)]
        answers = post_at_once(service, [fields for fields in batch for _ in range(3)])
        assert [a.status for a in answers] == [202] * len(batch) * 3
        assert len({a.json()["event_id"] for a in answers}) == len(batch)

    wait_until(
        lambda: len(records_of(service, TENANT_A)) >= len(kinds), DECIDED_WITHIN, "outcomes"
    )
    settle(launcher)
    records = {r["call_uuid"]: r for r in records_of(service, TENANT_A)}
    assert len(records) == len(records_of(service, TENANT_A)) == len(kinds)
    for kind, call in calls.items():
        record = records[call.uuid]
        assert (record["outcome"], record["missed_reason"]) == EXPECTED[kind], (kind, record)
        assert record["revision"] == 1
        found = service.call(call.uuid)
        assert found is not None
        assert len(found["events"]) == len(events[kind]), kind


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        (lambda c: c.answered(ALICE), ("answered", None)),
        (lambda c: c.voicemail(ALICE), ("voicemail", None)),
    ],
    ids=["ExtensionAnswered", "voicemailHangup"],
)
def test_late_event_after_the_decision_publishes_revision_2(
    service: Api, launcher: Launcher, late: Any, expected: tuple[str, str | None]
) -> None:
    """A late event changing a 'missed' decision gives revision 2; late no-ops give nothing new."""
    call = Call(TENANT_A)
    post_in_order(service, [call.inbound(), call.ring(ALICE), call.hangup()])
    first = wait_revision(service, call.uuid, 1)
    settle(launcher)
    assert (first["outcome"], first["missed_reason"]) == ("missed", "no_answer")

    late_fields: Fields = late(call)
    service.accept(late_fields)
    second = wait_revision(service, call.uuid, 2)
    settle(launcher)
    assert (second["outcome"], second["missed_reason"]) == expected
    assert second["call_uuid"] == call.uuid
    assert int(second["id"].split("-")[0]) > int(first["id"].split("-")[0])
    if expected[0] == "answered":
        assert second["answered_by"] == party(ALICE)
    else:
        assert second["voicemail_box"] == party(ALICE)

    # Stragglers that change nothing: a duplicate of the late event and of the
    # hangup, and an extension's end event (HangupCall already ended the call).
    service.accept(late_fields)
    service.accept(call.hangup())
    service.accept(call.completed(BOB))
    settle(launcher)
    assert [r["revision"] for r in records_of(service, TENANT_A, call.uuid)] == [1, 2]
    found = service.call(call.uuid)
    assert found is not None
    assert found["outcome"] == second


def test_silent_call_times_out_as_missed(launcher: Launcher) -> None:
    """A call silent for CALL_TIMEOUT_SECONDS=2 is ended by the engine: missed, ended_by timeout."""
    api = launcher.start_service(workers=2, CALL_TIMEOUT_SECONDS="2")
    call = Call(TENANT_A)
    api.accept(call.inbound())
    ring = api.accept(call.ring(ALICE))
    wait_until(
        lambda: call.uuid in {c["call_uuid"] for c in api.live()}, LIVE_WITHIN, "the call live"
    )

    record = wait_revision(api, call.uuid, 1)
    assert (record["outcome"], record["missed_reason"]) == ("missed", "no_answer")
    assert record["ended_by"] == "timeout"
    assert record["ended_at"] == ring["received_at"], "a timed-out call ends at its last event"
    assert record["rang"] == [party(ALICE)]
    assert call.uuid not in {c["call_uuid"] for c in api.live()}
    settle(launcher)
    assert len(records_of(api, TENANT_A)) == 1


def test_live_view_follows_each_post(service: Api, launcher: Launcher) -> None:
    """GET /v1/calls/live shows a running call's state within moments of each post."""
    call = Call(TENANT_A)

    def live_call() -> dict[str, Any] | None:
        return next((c for c in service.live() if c["call_uuid"] == call.uuid), None)

    def after(fields: Fields, state: str) -> dict[str, Any]:
        service.accept(fields)
        return wait_until(
            lambda: (c := live_call()) is not None and c["state"] == state and c,
            LIVE_WITHIN,
            f"state {state!r} after {fields['eventType']}",
            interval=0.02,
            detail=live_call,
        )

    new = after(call.inbound(), "new")
    assert new["caller"] == {"number": call.caller_number, "name": call.caller_name}
    assert new["did"]["number"] == call.did
    assert new["direction"] == "inbound"
    queued = after(call.queue("700"), "queued")
    assert queued["queue"] == "700"
    ringing = after(call.ring(ALICE), "ringing")
    assert ringing["ringing"] == [party(ALICE)]
    answered = after(call.answered(ALICE), "answered")
    assert answered["answered_by"] == party(ALICE)
    assert answered["ringing"] == []
    assert answered["started_at"] <= answered["answered_at"]

    service.accept(call.hangup(ALICE))
    wait_until(lambda: live_call() is None, LIVE_WITHIN, "the call to leave /v1/calls/live")
    assert (wait_revision(service, call.uuid, 1))["outcome"] == "answered"


def test_fifty_concurrent_mixed_calls_each_get_their_one_outcome(
    service: Api, launcher: Launcher
) -> None:
    """50 mixed calls posted from 16 threads with duplicates: one right outcome per call."""
    rng = random.Random(20240601)
    kinds = [list(EXPECTED)[i % len(EXPECTED)] for i in range(50)]
    calls = [
        (kind, Call(TENANT_A, caller_number=f"+1555000{i:04d}")) for i, kind in enumerate(kinds)
    ]
    plans: list[list[Fields]] = []
    for kind, call in calls:
        plan: list[Fields] = []
        for fields in scenario(kind, call):
            plan.append(fields)
            if rng.random() < 0.3:
                plan.append(fields)  # the sender retried
        plans.append(plan)
    failures: list[str] = []
    lock = threading.Lock()

    def run(plan: list[Fields]) -> None:
        for fields in plan:
            answer = service.post_event(fields)
            if answer.status != 202:
                with lock:
                    failures.append(f"{fields['eventType']}: {answer.status} {answer.text}")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(run, plans))
    assert not failures, failures

    wait_until(
        lambda: len(records_of(service, TENANT_A)) >= len(calls), DECIDED_WITHIN, "50 outcomes"
    )
    settle(launcher)
    records = records_of(service, TENANT_A)
    by_call = {r["call_uuid"]: r for r in records}
    assert len(records) == len(by_call) == len(calls), "a call got more than one outcome"
    wrong = [
        (kind, by_call[call.uuid]["outcome"], by_call[call.uuid]["missed_reason"])
        for kind, call in calls
        if (by_call[call.uuid]["outcome"], by_call[call.uuid]["missed_reason"]) != EXPECTED[kind]
    ]
    assert not wrong, wrong
    assert {r["revision"] for r in records} == {1}
    assert service.live() == []
    per_outcome = Counter(EXPECTED[kind][0] for kind in kinds)
    voicemails = service.outcomes(query=f"tenant_id={TENANT_A}&outcome=voicemail")
    assert len(voicemails) == per_outcome["voicemail"]
    assert all(r["outcome"] == "voicemail" and r["voicemail_box"] for r in voicemails)
    published = service.metric_samples("callstate_outcomes_total")
    assert published == {outcome: float(n) for outcome, n in per_outcome.items()}, published


def test_tenant_bound_key_sees_only_its_tenants_calls_and_outcomes(
    service: Api, launcher: Launcher
) -> None:
    """A tenant-bound API key sees only its tenant's calls, outcomes and messages."""
    shared_uuid = Call(TENANT_A).uuid  # the PBX's callUuid space is shared by tenants
    ended = {TENANT_A: Call(TENANT_A, uuid=shared_uuid), TENANT_B: Call(TENANT_B, uuid=shared_uuid)}
    live = {TENANT_A: Call(TENANT_A), TENANT_B: Call(TENANT_B)}
    tokens = {TENANT_A: TOKEN_A, TENANT_B: TOKEN_B}
    keys = {TENANT_A: KEY_A, TENANT_B: KEY_B}
    kinds = {TENANT_A: "answered", TENANT_B: "unrouted"}
    for tenant in (TENANT_A, TENANT_B):
        for fields in [*scenario(kinds[tenant], ended[tenant]), live[tenant].inbound()]:
            service.accept(fields, token=tokens[tenant])
        service.accept(message("inbound", tenant, f"conv-{tenant}", "hello"), token=tokens[tenant])
    refused = service.post_event(live[TENANT_B].ring(CAROL), token=TOKEN_A)
    assert refused.status == 401, "a tenant's webhook token posted another tenant's event"

    for tenant in (TENANT_A, TENANT_B):
        wait_revision(service, shared_uuid, 1, tenant)
        # The live calls keep their timeout timers, so wait on pending events only.
        wait_until(lambda t=tenant: launcher.pending(t) == 0, DECIDED_WITHIN, "events applied")

    for tenant, other in ((TENANT_A, TENANT_B), (TENANT_B, TENANT_A)):
        key = keys[tenant]
        assert [c["call_uuid"] for c in service.live(key)] == [live[tenant].uuid]
        outcomes = service.outcomes(key)
        assert [(r["tenant_id"], r["call_uuid"]) for r in outcomes] == [(tenant, shared_uuid)]
        assert outcomes[0]["outcome"] == EXPECTED[kinds[tenant]][0]
        shared = service.call(shared_uuid, key)
        assert shared is not None and shared["tenant_id"] == tenant
        assert {e["fields"]["tenantId"] for e in shared["events"]} == {tenant}
        assert service.call(live[other].uuid, key) is None
        assert service.get(f"/v1/conversations/conv-{other}/messages", key).status == 404
        assert service.get(f"/v1/conversations/conv-{tenant}/messages", key).status == 200
        assert service.get(f"/v1/outcomes?tenant_id={other}", key).status == 403
        assert service.get(f"/v1/calls/live?tenant_id={other}", key).status == 403

    everyone = service.outcomes()
    assert sorted(r["tenant_id"] for r in everyone) == [TENANT_A, TENANT_B]
    assert {c["call_uuid"] for c in service.live()} == {c.uuid for c in live.values()}
    assert service.request("GET", "/v1/outcomes").status == 401
