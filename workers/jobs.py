"""RQ job functions, and how accepted events reach them.

An accepted event is kept in its partition's pending set (by call, so one
call's events stay together) and the partition's *doorbell* is rung: if no
drain job is queued or running for the partition, intake enqueues one. A
drain job applies the partition's pending events in batches until it finds
the partition empty, so under load one RQ job carries hundreds of events
(RQ's own bookkeeping costs ~60 Redis commands a job; ours, ~2 an event).

Jobs take JSON-serialisable arguments and find Redis through the job that runs
them (``rq.get_current_job().connection``): nothing is set up at import time.
"""

from __future__ import annotations

import functools
import time
import uuid
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.serializers import JSONSerializer

from statemachine.events import parse_time
from workers.engine import Engine
from workers.observability import applied_increments, get_logger
from workers.settings import EVENTS_QUEUE, Settings
from workers.store import Store, partition_of

log = get_logger("callstate.jobs")

DRAIN = "workers.jobs.drain"
DRAIN_TIMEOUT = 120
# A drain job hands over to a fresh job after this long, so a warm shutdown
# (SIGTERM) never waits long for the job in hand.
DRAIN_SLICE_SECONDS = 1.0
BATCH_SIZE = 200


def events_queue(client: redis.Redis) -> Queue:
    """The queue of drain jobs, JSON-serialised so any process can read it."""
    return Queue(EVENTS_QUEUE, connection=client, serializer=JSONSerializer)


def new_job_id() -> str:
    return f"drain-{uuid.uuid4().hex}"


def enqueue_drain(queue: Queue, tenant_id: str, partition: int, job_id: str) -> None:
    """Put a drain job for one partition on the queue. Raises redis.RedisError."""
    queue.enqueue_call(
        DRAIN,
        args=(tenant_id, partition),
        job_id=job_id,
        timeout=DRAIN_TIMEOUT,
        result_ttl=0,
        failure_ttl=24 * 3600,
    )


def enqueue_event(store: Store, queue: Queue, envelope: dict[str, Any]) -> bool:
    """Accept an event: keep it pending, and enqueue a drain job if none is coming.

    When this returns, the event is in Redis and a drain job for its partition
    is queued or running (or, if Redis failed between the two, the reaper will
    enqueue one). Returns whether a job was enqueued. Raises redis.RedisError if
    Redis did not take the event.
    """
    job_id = new_job_id()
    if store.accept(envelope, f"job:{job_id}"):
        enqueue_drain(queue, envelope["tenant_id"], partition_of(envelope), job_id)
        return True
    return False


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


_engines: dict[int, Engine] = {}


def engine_for(client: redis.Redis) -> Engine:
    """The engine over ``client``, built once per connection."""
    cached = _engines.get(id(client))
    if cached is None or cached.store.redis is not client:
        settings = _settings()
        cached = Engine(Store(client, retention_seconds=settings.retention_seconds), settings)
        _engines[id(client)] = cached
    return cached


def drain(tenant_id: str, partition: int) -> int:
    """Job: apply a partition's pending events until it is empty; returns how many.

    Holds the partition's doorbell while it works, so intake does not enqueue
    more jobs for it; lets go of it only when the partition is empty (checked
    atomically with letting go), hands it to a fresh job after a time slice,
    and frees it if anything goes wrong so the next event or the reaper rings
    again. Every event is applied or set aside as poisoned, never lost.
    """
    job = get_current_job()
    if job is None:
        raise RuntimeError("drain runs inside an RQ worker")
    engine = engine_for(job.connection)
    store = engine.store
    me = f"worker:{job.worker_name}"
    store.claim_doorbell(tenant_id, partition, me)
    applied = 0
    deadline = time.monotonic() + DRAIN_SLICE_SECONDS
    try:
        while True:
            batch = store.take_pending(tenant_id, partition, BATCH_SIZE)
            if not batch:
                if store.finish_drain(tenant_id, partition, me):
                    return applied
                continue
            started = time.perf_counter()
            result = engine.apply_batch(tenant_id, partition, batch)
            _count(store, result.applied, time.perf_counter() - started)
            applied += len(result.applied)
            if time.monotonic() > deadline:
                successor = new_job_id()
                if store.swap_doorbell(tenant_id, partition, me, f"job:{successor}"):
                    enqueue_drain(events_queue(store.redis), tenant_id, partition, successor)
                return applied
    except BaseException:
        store.swap_doorbell(tenant_id, partition, me, None)
        raise


def _count(store: Store, envelopes: list[dict[str, Any]], seconds: float) -> None:
    """Record applied events: counts, apply time (the batch's, shared), webhook-to-state age."""
    if not envelopes:
        return
    now = time.time()
    share = seconds / len(envelopes)
    totals: dict[str, float] = {}
    for envelope in envelopes:
        age = now - parse_time(envelope["received_at"]).timestamp()
        for name, amount in applied_increments(envelope["event_type"], share, age).items():
            totals[name] = totals.get(name, 0.0) + amount
    store.add_stats(totals)
