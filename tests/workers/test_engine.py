"""The engine on in-process fakeredis: applying, deciding, revising, rebuilding, rescuing.

The same promises are tested against a real redis-server and real worker
processes in tests/integration; here each one is pinned down exactly.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

from core.queue import events_queue
from core.settings import Settings
from core.store import (
    PARTITIONS,
    TENANTS_KEY,
    Store,
    call_key,
    partition_of,
    pending_key,
)
from statemachine.event_log import to_record
from statemachine.events import ExtensionAnswered, HangupCall, InboundCall, Party, QueueEntered
from statemachine.primevox import EVENTS
from tests.conftest import API_KEY, TOKEN
from workers.engine import Engine
from workers.housekeeper import Housekeeper

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, params=["tenant tags", "partition tags"])
def layout(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs with keys tagged by tenant (one Redis) and by partition
    (a Redis Cluster's layout: a tenant's indexes are eight keys, read fanned out)."""
    if request.param == "partition tags":
        original = Store.__init__

        def spread(self: Store, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **{**kwargs, "spread": True})

        monkeypatch.setattr(Store, "__init__", spread)
    return str(request.param)
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def envelope(event: Any, fields: dict[str, str] | None = None) -> dict[str, Any]:
    """A log record for ``event``; distinct fields make distinct events."""
    event_type = next(d.event_type for d in EVENTS.declared if d.event_class is type(event))
    sent = fields or {"eventType": event_type, "at": str(event.received_at)}
    return to_record(event, sent, event_type)


def inbound(s: float, uuid: str = "c1") -> dict[str, Any]:
    return envelope(InboundCall("t1", "box", at(s), call_uuid=uuid, caller=Party("+1555")))


def answered(s: float, uuid: str = "c1", ext: str = "101") -> dict[str, Any]:
    return envelope(ExtensionAnswered("t1", "box", at(s), call_uuid=uuid, extension=Party(ext)))


def hangup(s: float, uuid: str = "c1", ext: str = "") -> dict[str, Any]:
    return envelope(HangupCall("t1", "box", at(s), call_uuid=uuid, extension=Party(ext)))


def apply(engine: Engine, *envelopes: dict[str, Any]) -> None:
    """Apply envelopes as a drain job would: grouped in their partitions."""
    engine.store.backend.redis.sadd(TENANTS_KEY, "t1")  # as intake would have
    for record in envelopes:
        field = f"{record['id']}@x"
        engine.apply_batch("t1", partition_of(record), [(field, record)])


def outcomes(store: Store) -> list[dict[str, Any]]:
    return store.outcomes.read_outcomes(["t1"], after=None, limit=1000)[0]


def decide_all(engine: Engine, now: float) -> list[str]:
    engine.clock = lambda: now
    return [
        engine.decide("t1", uuid) for uuid in engine.store.calls.claim_timers("t1", now, now + 15)
    ]


def test_duplicates_and_any_order_store_each_event_once(engine: Engine, store: Store) -> None:
    """The same events, shuffled and repeated, leave one copy each, in received order."""
    events = [inbound(0), answered(5), hangup(60, ext="101")]
    apply(engine, events[2], events[0], events[2], events[1], events[0])
    log = store.calls.load_call("t1", "c1")
    assert [r["event_type"] for r in log.records] == [
        "InboundCall",
        "ExtensionAnswered",
        "HangupCall",
    ]


def test_a_duplicate_keeps_its_earliest_receipt(engine: Engine, store: Store) -> None:
    """Two receipts of one event: the log keeps the earlier, whichever came first."""
    first, retry = inbound(0), inbound(3)
    retry["id"] = first["id"]  # same content, received again later
    apply(engine, retry, first)
    [record] = store.calls.load_call("t1", "c1").records
    assert record["received_at"] == first["received_at"]


def test_outcome_is_decided_after_the_grace_and_once(engine: Engine, store: Store) -> None:
    """An ended call gets one outcome record after its grace; deciding again adds none."""
    engine.settings = Settings(outcome_grace_seconds=5)
    apply(engine, inbound(0), answered(5), hangup(60, ext="101"))
    assert decide_all(engine, at(62).timestamp()) == []  # grace not over
    assert decide_all(engine, at(66).timestamp()) == ["published"]
    assert engine.decide("t1", "c1") == "unchanged"
    [record] = outcomes(store)
    assert (record["outcome"], record["revision"], record["talk_seconds"]) == ("answered", 1, 55)


def test_a_late_event_that_changes_the_outcome_makes_revision_2(
    engine: Engine, store: Store
) -> None:
    """Missed, then the answer arrives after the decision: revision 2, answered."""
    engine.settings = Settings(outcome_grace_seconds=1)
    apply(engine, inbound(0), hangup(30))
    decide_all(engine, at(40).timestamp())
    engine.clock = lambda: at(50).timestamp()
    apply(engine, answered(10))  # arrives at 50: re-armed for 51, grace from now
    assert decide_all(engine, at(50.5).timestamp()) == []
    assert decide_all(engine, at(51).timestamp()) == ["published"]
    first, second = outcomes(store)
    assert (first["outcome"], first["revision"]) == ("missed", 1)
    assert (second["outcome"], second["revision"]) == ("answered", 2)
    stored = store.backend.redis.hget(call_key("t1", "c1", store.backend.spread), "outcome")
    assert json.loads(stored)["revision"] == 2


def test_a_late_event_that_changes_nothing_publishes_nothing(engine: Engine, store: Store) -> None:
    """A late duplicate after the decision re-checks the call and publishes nothing."""
    engine.settings = Settings(outcome_grace_seconds=1)
    apply(engine, inbound(0), hangup(30))
    decide_all(engine, at(40).timestamp())
    apply(engine, hangup(30))
    assert decide_all(engine, time.time() + 100) in ([], ["unchanged"])
    assert len(outcomes(store)) == 1


def test_a_silent_call_times_out_and_leaves_the_live_list(
    engine: Engine, store: Store, client: FlaskClient
) -> None:
    """A live call silent past CALL_TIMEOUT_SECONDS is ended by the engine: missed, timeout."""
    engine.settings = Settings(call_timeout_seconds=600)
    now = time.time()
    apply(
        engine, envelope(InboundCall("t1", "box", datetime.fromtimestamp(now, UTC), call_uuid="c1"))
    )
    assert [c["call_uuid"] for c in client.get("/v1/calls/live", headers=AUTH).json["calls"]] == [
        "c1"
    ]
    assert decide_all(engine, now + 599) == []
    assert decide_all(engine, now + 601) == ["published"]
    [record] = outcomes(store)
    assert (record["outcome"], record["missed_reason"], record["ended_by"]) == (
        "missed", "unrouted", "timeout")  # fmt: skip
    assert client.get("/v1/calls/live", headers=AUTH).json["calls"] == []


def test_an_event_that_breaks_the_fold_is_set_aside_not_blocking(
    engine: Engine, store: Store
) -> None:
    """A poisoned event goes to the poisoned list; the call's other events are applied."""
    bad = inbound(1)
    bad["data"]["caller"] = "not a party"  # unreadable by the fold
    good = answered(5)
    partition = partition_of(good)
    engine.apply_batch("t1", partition, [("bad@1", bad), ("good@1", good)])
    assert [r["event_type"] for r in store.calls.load_call("t1", "c1").records] == [
        "ExtensionAnswered"
    ]
    assert list(store.poisoned.read("t1")) == ["bad@1"]


def test_a_concurrent_commit_is_retried_not_overwritten(
    engine: Engine, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If another worker commits between our read and our commit, we fold again."""
    apply(engine, inbound(0))
    real_load = store.calls.load_heads
    raced = []

    def load_then_race(tenant: str, new_ids: Any) -> Any:
        heads = real_load(tenant, new_ids)
        if not raced:
            raced.append(True)
            apply(engine, hangup(60))  # another worker gets there first
        return heads

    monkeypatch.setattr(store.calls, "load_heads", load_then_race)
    result = engine.apply_batch("t1", partition_of(answered(5)), [("f@1", answered(5))])
    assert result.conflicts == 1
    types = [r["event_type"] for r in store.calls.load_call("t1", "c1").records]
    assert types == ["InboundCall", "ExtensionAnswered", "HangupCall"]
    view = json.loads(store.backend.redis.hget(call_key("t1", "c1", store.backend.spread), "view"))
    assert view["state"] == "ended" and view["answered_by"]["number"] == "101"


def test_rebuild_finds_and_fixes_a_view_that_disagrees_with_the_log(
    engine: Engine, store: Store
) -> None:
    """A tampered stored view is reported by rebuild, and put right with fix."""
    apply(engine, inbound(0), answered(5))
    store.calls.replace_view("t1", "c1", {"state": "queued"})
    problems = engine.rebuild_call("t1", "c1", fix=True)
    assert problems and "view differs" in problems[0]
    assert engine.rebuild_call("t1", "c1", fix=False) == []


def test_reaper_rings_again_for_a_partition_whose_drainer_died(
    client: FlaskClient, redis_client: fakeredis.FakeRedis, engine: Engine, store: Store
) -> None:
    """Events waiting behind a dead worker's doorbell get a new drain job."""
    answer = client.post(
        f"/webhooks/primevox/{TOKEN}", data="eventType=InboundCall&tenantId=t1&callUuid=c9"
    )
    assert answer.status_code == 202
    queue = events_queue(redis_client)
    queue.empty()  # the drain job is lost...
    partition = next(
        p
        for p in range(PARTITIONS)
        if redis_client.zcard(pending_key("t1", p, store.backend.spread))
    )
    store.pending.claim_doorbell("t1", partition, "worker:dead-worker")  # ...held by a dead worker
    redis_client.zadd(pending_key("t1", partition, store.backend.spread), {b"x": 0}, xx=True)
    for field in redis_client.zrange(pending_key("t1", partition, store.backend.spread), 0, -1):
        redis_client.zadd(
            pending_key("t1", partition, store.backend.spread), {field: time.time() - 60}
        )
    keeper = Housekeeper(engine, queue, "live-worker")
    assert keeper.reap() == 1
    assert queue.count == 1
    assert store.pending.doorbell("t1", partition).startswith("job:")
    assert keeper.reap() == 0  # the new job is queued: nothing more to do


def test_no_outcome_while_events_accepted_in_time_still_wait(
    client: FlaskClient, engine: Engine, store: Store, drain: Any
) -> None:
    """A backlog longer than the grace delays the decision instead of publishing a wrong one."""
    engine.settings = Settings(outcome_grace_seconds=0)
    for event in ("InboundCall", "HangupCall"):
        body = f"eventType={event}&tenantId=t1&callUuid=slow&callerIdNum=1"
        assert client.post(f"/webhooks/primevox/{TOKEN}", data=body).status_code == 202
    drain()
    late = "eventType=ExtensionAnswered&tenantId=t1&callUuid=slow&extensionNumber=101"
    assert client.post(f"/webhooks/primevox/{TOKEN}", data=late).status_code == 202
    # Pretend the straggler was accepted before the call's end: a backlog.
    partition = partition_of({"data": {"call_uuid": "slow"}})
    for field in store.backend.redis.zrange(
        pending_key("t1", partition, store.backend.spread), 0, -1
    ):
        store.backend.redis.zadd(pending_key("t1", partition, store.backend.spread), {field: 0})
    assert engine.decide("t1", "slow") == "waiting"
    assert outcomes(store) == []
    drain()
    assert engine.decide("t1", "slow") == "published"
    assert [r["outcome"] for r in outcomes(store)] == ["answered"]


@pytest.mark.parametrize(("threshold", "short"), [(5.0, False), (7.0, True)])
def test_a_decided_abandon_is_short_by_its_tenants_threshold(
    engine: Engine, store: Store, threshold: float, short: bool
) -> None:
    """The worker measures short abandons with the tenant's short_abandon_seconds."""
    engine.settings = Settings(outcome_grace_seconds=5, short_abandon_seconds=threshold)
    queued = envelope(QueueEntered("t1", "box", at(1), call_uuid="c1", queue="600"))
    apply(engine, inbound(0), queued, hangup(7))
    assert decide_all(engine, at(20).timestamp()) == ["published"]
    [record] = outcomes(store)
    assert (record["missed_reason"], record["short_abandon"]) == ("abandoned", short)
    assert engine.rebuild_call("t1", "c1", fix=False) == []
