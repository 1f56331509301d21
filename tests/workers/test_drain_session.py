"""workers.jobs.DrainSession on fakeredis: held partitions, wake tokens, take-over, hand-over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest

from core.queue import enqueue_drain, enqueue_event, events_queue
from core.store import Store, doorbell_key, partition_for, wake_key
from statemachine.event_log import to_record
from statemachine.events import InboundCall, Party
from workers import jobs
from workers.engine import Engine
from workers.jobs import DrainSession

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def inbound(uuid: str, tenant: str = "t1") -> dict[str, Any]:
    event = InboundCall(tenant, "box", T0, call_uuid=uuid, caller=Party("+1555"))
    return to_record(event, {"eventType": "InboundCall", "callUuid": uuid}, "InboundCall")


def uuid_in(partition: int, prefix: str = "c") -> str:
    return next(f"{prefix}{i}" for i in range(1000) if partition_for(f"{prefix}{i}") == partition)


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short slices, so a session that waits does not hold the test for a second."""
    monkeypatch.setattr(jobs, "DRAIN_SLICE_SECONDS", 0.3)
    monkeypatch.setattr(jobs, "IDLE_LINGER_SECONDS", 0.3)


def test_intake_wakes_a_worker_that_holds_the_partition_and_rings_otherwise(
    redis_client: fakeredis.FakeRedis, store: Store
) -> None:
    """A free doorbell rings (a job is enqueued); one a worker holds gets one wake token."""
    queue = events_queue(redis_client)
    assert enqueue_event(store, queue, inbound(uuid_in(3)))  # free: rung
    assert queue.count == 1
    store.pending.claim_doorbells(
        [("t1", 3)], "worker:w1", [redis_client.get(doorbell_key("t1", 3))]
    )
    for n in range(3):
        assert not enqueue_event(store, queue, inbound(uuid_in(3, f"d{n}-")))
    assert queue.count == 1
    assert redis_client.llen(wake_key("t1", 3)) == 1  # one token, however many events
    redis_client.delete(wake_key("t1", 3))
    redis_client.set(doorbell_key("t1", 3), "job:queued")
    assert not enqueue_event(store, queue, inbound(uuid_in(3, "e")))
    assert redis_client.llen(wake_key("t1", 3)) == 0  # a queued job looks anyway


def test_a_session_takes_over_queued_jobs_and_hands_everything_to_one_successor(
    redis_client: fakeredis.FakeRedis,
    store: Store,
    engine: Engine,
    quick: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two partitions rung for two jobs: the first job's session applies both and,
    having been busy, hands both to one successor job; the second job finds
    nothing left to claim."""
    # Busy means applied within the idle linger of the slice's end; with both
    # at 0.3 s a busy machine could make the session idle first and let go.
    monkeypatch.setattr(jobs, "IDLE_LINGER_SECONDS", 60.0)
    queue = events_queue(redis_client)
    first, second = inbound(uuid_in(1)), inbound(uuid_in(5))
    assert enqueue_event(store, queue, first) and enqueue_event(store, queue, second)
    job_ids = queue.get_job_ids()
    own = redis_client.get(doorbell_key("t1", 1)).decode().removeprefix("job:")
    queue.remove(own)  # the worker took this job off the queue
    session = DrainSession(engine, queue, "w1", own)
    assert session.run([("t1", 1)]) == 2
    assert store.pending.pending_count() == 0
    successor = [j for j in queue.get_job_ids() if j not in job_ids]
    assert len(successor) == 1
    for partition in (1, 5):
        assert redis_client.get(doorbell_key("t1", partition)) == f"job:{successor[0]}".encode()
    stale = next(j for j in job_ids if j != own)
    assert DrainSession(engine, queue, "w2", stale).run([("t1", 5)]) == 0


def test_an_idle_session_lets_go_of_empty_partitions(
    redis_client: fakeredis.FakeRedis, store: Store, engine: Engine, quick: None
) -> None:
    """A session that applied nothing frees every doorbell it held: the next event rings."""
    queue = events_queue(redis_client)
    enqueue_drain(queue, "t1", 2, "drain-x")
    redis_client.set(doorbell_key("t1", 2), "job:drain-x")
    assert DrainSession(engine, queue, "w1", "drain-x").run([("t1", 2)]) == 0
    assert redis_client.get(doorbell_key("t1", 2)) is None
    assert enqueue_event(store, queue, inbound(uuid_in(2)))


def test_a_held_partition_gets_new_events_applied_while_the_session_waits(
    redis_client: fakeredis.FakeRedis, store: Store, engine: Engine, quick: None
) -> None:
    """An event accepted while a session holds its partition is applied in that session."""
    import threading

    queue = events_queue(redis_client)
    assert enqueue_event(store, queue, inbound(uuid_in(4)))
    own = queue.get_job_ids()[0]
    queue.remove(own)
    session = DrainSession(engine, queue, "w1", own)
    later = threading.Timer(0.1, lambda: enqueue_event(store, queue, inbound(uuid_in(4, "z"))))
    later.start()
    assert session.run([("t1", 4)]) == 2
    later.join()
    assert queue.count == 1  # only the successor: the second event rang nothing


def test_a_wake_names_every_held_partition_with_a_token(
    redis_client: fakeredis.FakeRedis, store: Store
) -> None:
    """One wait takes every waiting token, not only the first partition's: under
    steady traffic the first partitions would otherwise always win and the
    others wait for the session's end."""
    held = [("t1", n) for n in range(8)]
    for n in (0, 3, 7):
        redis_client.rpush(wake_key("t1", n), "1")
    assert sorted(store.pending.wait_for_wake(held, 0.05)) == [("t1", 0), ("t1", 3), ("t1", 7)]
    assert all(redis_client.llen(wake_key("t1", n)) == 0 for n in range(8))
    assert store.pending.wait_for_wake(held, 0.01) == []


def test_a_session_counts_what_it_applied_once_traffic_pauses(
    redis_client: fakeredis.FakeRedis,
    store: Store,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The applied counters (/metrics) catch up within a quiet wait, not at the
    session's end an idle linger later."""
    import threading

    monkeypatch.setattr(jobs, "DRAIN_SLICE_SECONDS", 20.0)
    monkeypatch.setattr(jobs, "IDLE_LINGER_SECONDS", 20.0)
    stop = threading.Event()
    monkeypatch.setattr(jobs, "stopping", stop)
    queue = events_queue(redis_client)
    assert enqueue_event(store, queue, inbound(uuid_in(6)))
    own = queue.get_job_ids()[0]
    queue.remove(own)
    session = DrainSession(engine, queue, "w1", own)
    running = threading.Thread(target=session.run, args=([("t1", 6)],))
    running.start()
    try:
        while running.is_alive() and not store.stats.totals().get("applied:InboundCall"):
            stop.wait(0.01)
        assert running.is_alive(), "counted only when the session ended"
        assert store.stats.totals().get("applied:InboundCall") == 1
    finally:
        stop.set()
        running.join(30)
