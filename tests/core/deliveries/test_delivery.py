"""Outcome records reach subscribers: dispatch, signed POSTs, retries, failures, replay.

In-process: fakeredis, a real HTTP receiver on loopback, the delivery process's
runner (retry schedule 0,0: three attempts at most).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import fakeredis
from flask.testing import FlaskClient

from core.settings import Settings
from core.store import Store, call_key, dispatch_cursor_key, outcomes_key, partition_for
from tests.kit.deliveries import ADMIN, RETRY_SCHEDULE, T1, Calls, Pump, deliveries, subscribe
from tests.kit.webhooks import Receiver, always, failing_first, verifies, verify
from workers.engine import Engine

MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1


def bodies(receiver: Receiver, path: str | None = None) -> list[dict[str, Any]]:
    """The JSON bodies of the successful requests, in arrival order."""
    return [json.loads(r.body) for r in receiver.successes(path)]


def canonical(records: Iterable[dict[str, Any]]) -> list[str]:
    """Records as sorted JSON texts: compare collections regardless of order."""
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def test_body_is_the_record_and_signature_verifies(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """One POST whose JSON body is the outcome record, signed with the subscription's secret."""
    sub = subscribe(client, receiver.url())
    record = calls.end("missed")
    pump()
    [request] = receiver.received()
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.body) == record
    verify(sub["secret"], request.headers, request.body)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 30
    assert request.webhook_id.startswith("msg_")

    [delivery] = deliveries(client, sub["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 1
    assert delivery["last_status"] == 200
    assert delivery["webhook_id"] == request.webhook_id
    assert delivery["outcome_id"] == record["id"]
    assert delivery["payload"] == record


def test_retries_until_success_with_the_same_webhook_id(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """A receiver failing twice then answering 200 gets 3 attempts, one webhook-id, one success."""
    receiver.plan = failing_first(2)
    sub = subscribe(client, receiver.url())
    record = calls.end("answered")
    pump()
    got = receiver.received()
    assert [r.status for r in got] == [500, 500, 200]
    assert len({r.webhook_id for r in got}) == 1
    for request in got:
        assert json.loads(request.body) == record
        verify(sub["secret"], request.headers, request.body)
    [delivery] = deliveries(client, sub["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3
    assert delivery["webhook_id"] == got[0].webhook_id


def test_failed_delivery_is_listed_and_replayed(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """After len(schedule)+1 failures the delivery is failed, listed by status, and replay works."""
    receiver.plan = always(503)
    sub = subscribe(client, receiver.url())
    record = calls.end("voicemail")
    pump()
    assert [r.status for r in receiver.received()] == [503] * MAX_ATTEMPTS
    webhook_id = receiver.received()[0].webhook_id

    [failed] = deliveries(client, sub["id"], status="failed")
    assert failed["attempts"] == MAX_ATTEMPTS
    assert failed["last_status"] == 503
    assert failed["payload"] == record
    assert deliveries(client, sub["id"], status="succeeded") == []
    assert pump() == 0  # nothing more is tried on its own

    receiver.plan = always(200)
    answer = client.post(
        f"/v1/subscriptions/{sub['id']}/deliveries/{failed['id']}/replay", headers=ADMIN
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)
    assert answer.get_json()["delivery"]["status"] == "pending"
    pump()
    last = receiver.received()[-1]
    assert len(receiver.received()) == MAX_ATTEMPTS + 1
    assert last.ok and last.webhook_id == webhook_id
    assert json.loads(last.body) == record
    verify(sub["secret"], last.headers, last.body)
    assert deliveries(client, sub["id"], status="failed") == []
    [done] = deliveries(client, sub["id"], status="succeeded")
    assert done["id"] == failed["id"]


def test_unreachable_receiver_fails_with_an_error(
    client: FlaskClient, calls: Calls, pump: Pump
) -> None:
    """Connection refused counts as a failed attempt: no status, an error, then failed."""
    with Receiver() as closed:
        url = closed.url()
    sub = subscribe(client, url)
    calls.end("missed")
    pump()
    [delivery] = deliveries(client, sub["id"])
    assert delivery["status"] == "failed"
    assert delivery["attempts"] == MAX_ATTEMPTS
    assert delivery["last_status"] is None
    assert delivery["last_error"]


def test_410_disables_the_subscription(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """A 410 answer fails the delivery at once and disables the subscription: nothing more comes."""
    receiver.plan = always(410)
    sub = subscribe(client, receiver.url())
    calls.end("missed")
    pump()
    assert [r.status for r in receiver.received()] == [410]
    [delivery] = deliveries(client, sub["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    shown = client.get(f"/v1/subscriptions/{sub['id']}", headers=ADMIN).get_json()
    assert shown["enabled"] is False

    receiver.plan = always(200)
    calls.end("answered")
    pump()
    assert len(receiver.received()) == 1
    assert len(deliveries(client, sub["id"])) == 1


def test_outcome_filter(client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver) -> None:
    """A subscription for ["missed"] gets only missed outcomes; one without a filter gets all."""
    subscribe(client, receiver.url("/missed"), outcomes=["missed"])
    subscribe(client, receiver.url("/all"))
    made = [calls.end(kind) for kind in ("answered", "missed", "voicemail", "outbound", "missed")]
    pump()
    assert canonical(bodies(receiver, "/missed")) == canonical(
        r for r in made if r["outcome"] == "missed"
    )
    assert canonical(bodies(receiver, "/all")) == canonical(made)


def test_tenant_bound_subscription_gets_only_its_tenant(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """A tenant's subscription never receives another tenant's outcomes."""
    own = subscribe(client, receiver.url("/t1"), auth=T1)
    theirs = subscribe(client, receiver.url("/t2"), tenant_id="t2")
    assert (own["tenant_id"], theirs["tenant_id"]) == ("t1", "t2")
    made = [calls.end("missed", tenant) for tenant in ("t1", "t2", "t3", "t1", "t2")]
    pump()
    for tenant in ("t1", "t2"):
        got = bodies(receiver, f"/{tenant}")
        assert sorted(r["id"] for r in got) == sorted(
            r["id"] for r in made if r["tenant_id"] == tenant
        )
    assert len(receiver.received()) == 4
    assert {d["tenant_id"] for d in deliveries(client, own["id"], auth=T1)} == {"t1"}


def test_every_revision_is_delivered(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """A late event's revision 2 is delivered too, as its own delivery (its own webhook-id)."""
    sub = subscribe(client, receiver.url())
    first = calls.end("missed")
    pump()
    second = calls.late_answer(first)
    assert (first["revision"], second["revision"]) == (1, 2)
    assert second["outcome"] == "answered" and second["call_uuid"] == first["call_uuid"]
    pump()
    got = receiver.successes()
    assert [json.loads(r.body) for r in got] == [first, second]
    assert got[0].webhook_id != got[1].webhook_id
    for request in got:
        verify(sub["secret"], request.headers, request.body)


def test_outcomes_before_the_subscription_are_not_delivered(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """Only outcomes decided after the subscription was made are delivered to it."""
    calls.end("missed")
    calls.end("answered")
    subscribe(client, receiver.url())
    later = calls.end("voicemail")
    pump()
    assert bodies(receiver) == [later]


def test_dispatching_again_creates_each_delivery_once(
    client: FlaskClient,
    calls: Calls,
    pump: Pump,
    receiver: Receiver,
    redis_client: fakeredis.FakeRedis,
) -> None:
    """Dispatching twice, even from a lost cursor, makes one delivery and one POST per record."""
    sub = subscribe(client, receiver.url())
    made = [calls.end("missed"), calls.end("answered")]
    assert pump.dispatch() == 2
    assert pump.dispatch() == 0
    redis_client.delete(dispatch_cursor_key("t1"))
    assert pump.dispatch() == 2  # the same ids again: stored once
    assert len(deliveries(client, sub["id"])) == 2
    pump()
    assert sorted(r["id"] for r in bodies(receiver)) == sorted(r["id"] for r in made)
    # A dispatcher replaying after the deliveries succeeded posts nothing again.
    redis_client.delete(dispatch_cursor_key("t1"))
    pump()
    assert len(receiver.received()) == 2
    assert {d["status"] for d in deliveries(client, sub["id"])} == {"succeeded"}


def _lose_the_publication(redis_client: fakeredis.FakeRedis, record: dict[str, Any]) -> None:
    """What a master killed before its replica had the publication leaves on the
    promoted replica: the call decided but not published (stream and call hash)."""
    tenant, call_uuid = record["tenant_id"], record["call_uuid"]
    redis_client.xdel(outcomes_key(tenant, partition_for(call_uuid)), record["id"])
    redis_client.hdel(call_key(tenant, call_uuid), "outcome_body", "revision", "outcome_id")


def test_a_revision_published_again_after_a_lost_master_is_delivered_once(
    client: FlaskClient,
    calls: Calls,
    engine: Engine,
    pump: Pump,
    receiver: Receiver,
    redis_client: fakeredis.FakeRedis,
) -> None:
    """A revision whose record was lost with its master is published again under a
    new record id: its delivery is the same one (one per subscription, call and
    revision), so nothing is posted again; and where the delivery was lost too,
    the one made again has the same webhook-id, which receivers deduplicate by."""
    sub = subscribe(client, receiver.url())
    first = calls.end("missed")
    pump()
    _lose_the_publication(redis_client, first)
    assert engine.decide("t1", first["call_uuid"]) == "published"
    again = calls.latest("t1", first["call_uuid"])
    assert again["revision"] == first["revision"] and again["id"] != first["id"]
    pump()
    assert len(receiver.received()) == 1
    [delivery] = deliveries(client, sub["id"])
    assert delivery["outcome_id"] == first["id"]

    _lose_the_publication(redis_client, again)
    for key in redis_client.scan_iter(match="*deliver*"):
        redis_client.delete(key)
    assert engine.decide("t1", first["call_uuid"]) == "published"
    pump()
    posted = receiver.successes()
    assert len(posted) == 2 and posted[0].webhook_id == posted[1].webhook_id


def test_rotated_secret_signs_alongside_the_new_one(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver
) -> None:
    """After rotation both secrets verify during the grace; with no grace only the new one."""
    sub = subscribe(client, receiver.url())
    rotate = f"/v1/subscriptions/{sub['id']}/rotate-secret"
    second = client.post(rotate, json={"grace_seconds": 600}, headers=ADMIN).get_json()["secret"]
    calls.end("missed")
    pump()
    request = receiver.received()[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    verify(sub["secret"], request.headers, request.body)
    verify(second, request.headers, request.body)

    third = client.post(rotate, json={"grace_seconds": 0}, headers=ADMIN).get_json()["secret"]
    calls.end("answered")
    pump()
    request = receiver.received()[-1]
    verify(third, request.headers, request.body)
    assert not verifies(second, request.headers, request.body)
    assert not verifies(sub["secret"], request.headers, request.body)


def test_deleted_subscription_cancels_pending_deliveries(
    client: FlaskClient, calls: Calls, pump: Pump, receiver: Receiver, store: Store
) -> None:
    """A delivery still pending when its subscription is deleted is cancelled, never POSTed."""
    sub = subscribe(client, receiver.url())
    calls.end("missed")
    assert pump.dispatch() == 1
    assert client.delete(f"/v1/subscriptions/{sub['id']}", headers=ADMIN).status_code == 204
    pump()
    assert receiver.received() == []
    [delivery] = store.subscriptions.deliveries("t1", sub["id"])
    assert delivery["status"] == "cancelled"


def test_worker_refuses_private_url_unless_allowed(
    client: FlaskClient,
    calls: Calls,
    receiver: Receiver,
    store: Store,
    settings: Settings,
    redis_client: fakeredis.FakeRedis,
) -> None:
    """Each attempt re-checks the URL: without SUBSCRIPTION_ALLOW_PRIVATE nothing is POSTed."""
    sub = subscribe(client, receiver.url())
    calls.end("missed")
    Pump(store, replace(settings, subscription_allow_private=False), redis_client)()
    assert receiver.received() == []
    [delivery] = deliveries(client, sub["id"])
    assert delivery["status"] == "failed"
    assert "private" in delivery["last_error"]
