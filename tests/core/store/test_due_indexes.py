"""The cross-tenant due indexes: a mark is never later than the work it names.

Writers mark with ZADD LT after the tenant's own write; a reader takes a due
tenant for a lease and hands the mark back unless a writer moved it; the
sweep puts back a mark that was lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import fakeredis
from flask.testing import FlaskClient

from core.store import (
    CALL_INDEX_COMPLETE_KEY,
    PENDING_DUE_KEY,
    TIMERS_DUE_KEY,
    Store,
    call_tenants_key,
    timers_key,
)
from tests.conftest import API_KEY, TOKEN


def score(client: fakeredis.FakeRedis, index: str, tenant: str) -> float | None:
    value = client.zscore(index, tenant)
    return None if value is None else float(value)


def test_a_marked_tenant_is_taken_once_and_handed_back_with_what_is_left(
    redis_client: fakeredis.FakeRedis, store: Store
) -> None:
    """take() returns a due tenant and hides it for the lease; release() sets the
    mark to the next due time, or drops it when nothing is left."""
    due = store.due
    due.mark(TIMERS_DUE_KEY, "t1", 100.0)
    due.mark(TIMERS_DUE_KEY, "t2", 500.0)
    [(tenant, lease)] = due.take(TIMERS_DUE_KEY, until=200.0, now=200.0)
    assert tenant == "t1"
    assert due.take(TIMERS_DUE_KEY, until=200.0, now=200.0) == []  # leased
    due.release(TIMERS_DUE_KEY, "t1", lease, 300.0)
    assert score(redis_client, TIMERS_DUE_KEY, "t1") == 300.0
    [(_, lease)] = due.take(TIMERS_DUE_KEY, until=300.0, now=300.0)
    due.release(TIMERS_DUE_KEY, "t1", lease, None)
    assert score(redis_client, TIMERS_DUE_KEY, "t1") is None
    assert score(redis_client, TIMERS_DUE_KEY, "t2") == 500.0


def test_a_mark_moved_earlier_during_the_lease_is_kept(
    redis_client: fakeredis.FakeRedis, store: Store
) -> None:
    """Work armed while a reader holds the tenant (ZADD LT below the lease) is not
    overwritten by the reader's hand-back, nor dropped."""
    due = store.due
    due.mark(PENDING_DUE_KEY, "t1", 100.0)
    [(_, lease)] = due.take(PENDING_DUE_KEY, until=100.0, now=100.0)
    due.mark(PENDING_DUE_KEY, "t1", 105.0)  # a writer, meanwhile
    due.release(PENDING_DUE_KEY, "t1", lease, None)
    assert score(redis_client, PENDING_DUE_KEY, "t1") == 105.0
    due.release(PENDING_DUE_KEY, "t1", lease, 900.0)
    assert score(redis_client, PENDING_DUE_KEY, "t1") == 105.0


def test_marks_only_move_earlier(redis_client: fakeredis.FakeRedis, store: Store) -> None:
    """A later mark never hides an earlier one."""
    due = store.due
    due.mark(TIMERS_DUE_KEY, "t1", 100.0)
    due.mark(TIMERS_DUE_KEY, "t1", 400.0)
    assert score(redis_client, TIMERS_DUE_KEY, "t1") == 100.0


def test_the_sweep_puts_back_a_lost_mark(redis_client: fakeredis.FakeRedis, store: Store) -> None:
    """A tenant with a timer but no mark (a crash between script and mark) is
    marked again by the sweep, at its earliest timer."""
    redis_client.sadd("cs:tenants", "t1", "t2")
    redis_client.zadd(timers_key("t1"), {"c1": 250.0, "c2": 120.0})
    assert store.due.sweep() == 1
    assert score(redis_client, TIMERS_DUE_KEY, "t1") == 120.0
    assert score(redis_client, TIMERS_DUE_KEY, "t2") is None


def test_accepting_an_event_marks_pending_and_the_calls_tenant(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """Intake marks the pending index and the call -> tenants index (expiring)."""
    answer = client.post(
        f"/webhooks/primevox/{TOKEN}", data="eventType=InboundCall&tenantId=t7&callUuid=c77"
    )
    assert answer.status_code == 202
    assert score(redis_client, PENDING_DUE_KEY, "t7") is not None
    assert Store(redis_client).tenants.of_call("c77") == ["t7"]
    assert redis_client.pttl("cs:call-tenants:c77") > 0


def test_an_every_tenant_key_reads_a_conversation_through_its_index(
    client: FlaskClient, redis_client: fakeredis.FakeRedis
) -> None:
    """SMS posted once: the every-tenant key finds the conversation by the index;
    an unknown conversation is 404 without asking any tenant."""
    body = (
        '{"eventType": "inboundMessage", "tenantID": "t8", "containerID": "c",'
        ' "conversationID": "conv-8", "from": "+15551230000", "to": "+15550001000",'
        ' "text": "hello"}'
    )
    answer = client.post(f"/webhooks/primevox/{TOKEN}", data=body, content_type="application/json")
    assert answer.status_code == 202
    assert Store(redis_client).tenants.of_conversation("conv-8") == ["t8"]
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert client.get("/v1/conversations/nope/messages", headers=headers).status_code == 404


def test_after_an_upgrade_an_every_tenant_key_still_finds_calls_older_than_the_index(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, store: Store, drain: Callable[[], None]
) -> None:
    """A call accepted before the call index existed is found by asking each tenant,
    for one retention period after the upgrade; after it, only the index is read."""
    for event in ("InboundCall", "HangupCall"):
        answer = client.post(
            f"/webhooks/primevox/{TOKEN}", data=f"eventType={event}&tenantId=t1&callUuid=old"
        )
        assert answer.status_code == 202
    drain()
    redis_client.delete(call_tenants_key("old"))  # as if accepted by an older release
    store.tenants.start_call_index(time.time())  # tenants have data: complete one retention later
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert client.get("/v1/calls/old", headers=headers).status_code == 200
    redis_client.set(CALL_INDEX_COMPLETE_KEY, "0")  # that retention period is over
    assert client.get("/v1/calls/old", headers=headers).status_code == 404
