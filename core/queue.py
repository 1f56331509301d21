"""The hand-over from intake to the workers: the RQ queue of drain jobs, and
accepting an event (kept pending in the store, a drain job queued for its
partition unless one is coming). The job itself is ``workers.jobs.drain``; it
is named here, not imported, so the web never loads the worker side.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from core.settings import EVENTS_QUEUE
from core.store import Store, partition_of
from statemachine.envelope import Envelope

DRAIN = "workers.jobs.drain"
DRAIN_TIMEOUT = 120


def events_queue(client: redis.Redis) -> Queue:
    """The queue of drain jobs, JSON-serialised so any process can read it."""
    return Queue(EVENTS_QUEUE, connection=client, serializer=JSONSerializer)


def new_job_id() -> str:
    return f"drain-{uuid.uuid4().hex}"


def enqueue_drain(
    queue: Queue,
    tenant_id: str,
    partition: int,
    job_id: str,
    more: Sequence[tuple[str, int]] = (),
) -> None:
    """Put a drain job for one partition (and ``more``) on the queue. Raises redis.RedisError."""
    queue.enqueue_call(
        DRAIN,
        args=(tenant_id, partition, [list(part) for part in more])
        if more
        else (
            tenant_id,
            partition,
        ),
        job_id=job_id,
        timeout=DRAIN_TIMEOUT,
        result_ttl=0,
        failure_ttl=24 * 3600,
    )


def enqueue_event(store: Store, queue: Queue, envelope: Envelope) -> bool:
    """Accept an event: keep it pending, and enqueue a drain job if none is coming.

    When this returns, the event is in Redis and a drain job for its partition
    is queued or running (or, if Redis failed between the two, the reaper will
    enqueue one). Returns whether a job was enqueued. Raises redis.RedisError if
    Redis did not take the event.
    """
    job_id = new_job_id()
    if store.pending.accept(envelope, f"job:{job_id}"):
        enqueue_drain(queue, envelope["tenant_id"], partition_of(envelope), job_id)
        return True
    return False
