"""Outbound webhooks end to end: the web process, the worker process, a receiver on loopback.

The receiver fails the first attempt of every delivery and accepts the
second (DELIVERY_RETRY_SECONDS=1,1,1), so each outcome revision arrives twice
under one webhook-id and is accepted once; every request is checked with the
independent Standard Webhooks verifier of tests/kit/webhooks.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from callstate_harness import (
    ADMIN_KEY,
    KEY_B,
    TENANT_A,
    TENANT_B,
    Launcher,
    accept_calls,
    load_webhook_kit,
    subscribe,
    wait_until,
)
from primevox_bodies import ALICE, EXPECTED, Call, scenario

# Every test here runs on one Redis and on a Redis Cluster (conftest.py: backend).
pytestmark = pytest.mark.parametrize("backend", ["redis", "cluster"], indirect=True)

DELIVERED_WITHIN = 30.0


kit = load_webhook_kit()


@pytest.fixture
def receiver() -> Iterator[Any]:
    with kit.Receiver(kit.failing_first(1)) as running:
        yield running


def test_each_outcome_revision_is_delivered_once_signed(
    launcher: Launcher, receiver: Any
) -> None:
    """Every outcome revision reaches the receiver signed, retried under one webhook-id, once."""
    api = launcher.start_service(
        SUBSCRIPTION_ALLOW_PRIVATE="1", DELIVERY_RETRY_SECONDS="1,1,1", OUTCOME_GRACE_SECONDS="1"
    )
    everything = subscribe(api, ADMIN_KEY, {"url": receiver.url("/all")})
    b_missed = subscribe(api, KEY_B, {"url": receiver.url("/b"), "outcomes": ["missed"]})
    assert b_missed["tenant_id"] == TENANT_B

    kinds = list(EXPECTED)
    a_calls = {kind: Call(TENANT_A) for kind in kinds}
    b_calls = {kind: Call(TENANT_B) for kind in ("abandoned", "answered")}
    accept_calls(
        api,
        [scenario(k, c) for k, c in a_calls.items()] + [scenario(k, c) for k, c in b_calls.items()],
    )
    total_calls = len(a_calls) + len(b_calls)
    wait_until(lambda: len(api.outcomes()) >= total_calls, 15, f"{total_calls} outcomes")
    # A straggler after the decision: the unrouted call was answered after all (revision 2).
    late = a_calls["unrouted"]
    api.accept(late.answered(ALICE))

    def revised() -> list[dict[str, Any]] | None:
        records = api.outcomes()
        found = [r for r in records if r["call_uuid"] == late.uuid and r["revision"] == 2]
        return records if found else None

    records = wait_until(revised, 15, "revision 2 of the late-answered call")
    assert len(records) == total_calls + 1
    by_id = {r["id"]: r for r in records}

    def all_accepted() -> bool:
        accepted = {json.loads(r.body)["id"] for r in receiver.successes("/all")}
        return accepted >= set(by_id)

    wait_until(all_accepted, DELIVERED_WITHIN, "a 2xx delivery of every outcome revision",
               detail=lambda: [(r.status, r.webhook_id) for r in receiver.received()])
    time.sleep(1.5)  # room for any duplicate to show up

    groups = receiver.by_webhook_id("/all")
    assert len(groups) == len(records)  # one webhook-id per outcome revision
    delivered: dict[str, str] = {}
    for webhook_id, attempts in groups.items():
        bodies = {a.body for a in attempts}
        assert len(bodies) == 1, "one delivery, one body"
        record = json.loads(attempts[0].body)
        assert record == by_id[record["id"]]
        assert record["id"] not in delivered, "two webhook-ids for one revision"
        delivered[record["id"]] = webhook_id
        assert [a.status for a in attempts] == [500, 200], (webhook_id, attempts)
        for attempt in attempts:
            kit.verify(everything["secret"], attempt.headers, attempt.body)
            assert not kit.verifies(b_missed["secret"], attempt.headers, attempt.body)
    assert set(delivered) == set(by_id)
    revisions = sorted(r["revision"] for r in by_id.values() if r["call_uuid"] == late.uuid)
    assert revisions == [1, 2]

    b_records = [r for r in records if r["tenant_id"] == TENANT_B and r["outcome"] == "missed"]
    b_got = [json.loads(r.body) for r in receiver.successes("/b")]
    assert sorted(r["id"] for r in b_got) == sorted(r["id"] for r in b_records) != []
    for request in receiver.received("/b"):
        kit.verify(b_missed["secret"], request.headers, request.body)

    listing = api.get_json(f"/v1/subscriptions/{everything['id']}/deliveries")["deliveries"]
    assert len(listing) == len(records)
    assert {(d["status"], d["attempts"]) for d in listing} == {("succeeded", 2)}
    assert {d["webhook_id"] for d in listing} == set(groups)
    assert not launcher.crashed(), launcher.tails()
