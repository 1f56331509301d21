"""RQ job functions and how events get onto the queue.

Jobs take JSON-serialisable arguments and find Redis through the job that runs
them (``rq.get_current_job().connection``): nothing is set up at import time.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import redis
from rq import Queue, Retry, get_current_job
from rq.serializers import JSONSerializer

from statemachine.events import parse_time
from workers.engine import Engine
from workers.observability import applied_increments, bind_event
from workers.settings import EVENTS_QUEUE, Settings
from workers.store import PendingEvent, Store, pending_field, to_micros

APPLY_EVENT = "workers.jobs.apply_event"
# A job that raises is tried again at once, twice; then it waits in RQ's
# FailedJobRegistry for an operator (`flask failed list|replay`).
APPLY_RETRY = Retry(max=2)
APPLY_TIMEOUT = 60


def events_queue(client: redis.Redis) -> Queue:
    """The queue of accepted events, JSON-serialised so any process can read it."""
    return Queue(EVENTS_QUEUE, connection=client, serializer=JSONSerializer)


def job_id_for(envelope: dict[str, Any], attempt: int = 0) -> str:
    """RQ job ids allow [A-Za-z0-9_-] only: event id, receipt time, attempt."""
    base = f"ev-{envelope['id']}-{to_micros(envelope['received_at'])}"
    return base if attempt == 0 else f"{base}-r{attempt}"


def enqueue_event(
    store: Store,
    queue: Queue,
    envelope: dict[str, Any],
    job_id: str | None = None,
    pending: PendingEvent | None = None,
) -> str:
    """Put an accepted event on the queue and mark it pending, in one transaction.

    When this returns, the event is in Redis twice over: as an RQ job, and in
    its tenant's pending set, which the reaper uses to re-enqueue it if the job
    is ever lost. Raises redis.RedisError if Redis did not take it.
    """
    job_id = job_id or job_id_for(envelope)
    field = pending_field(envelope)
    with store.redis.pipeline(transaction=True) as pipe:
        queue.enqueue_call(
            APPLY_EVENT,
            args=(envelope, field),
            job_id=job_id,
            timeout=APPLY_TIMEOUT,
            result_ttl=0,
            failure_ttl=int(store.retention_seconds),
            retry=APPLY_RETRY,
            pipeline=pipe,
        )
        if pending is None:
            store.mark_pending(pipe, envelope, job_id)
        else:
            store.repend(pipe, pending, job_id)
        pipe.execute()
    return job_id


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


def engine_for(client: redis.Redis) -> Engine:
    """The engine over ``client``, built once per connection."""
    cached: Engine | None = _engines.get(id(client))
    if cached is None or cached.store.redis is not client:
        settings = _settings()
        cached = Engine(Store(client, retention_seconds=settings.retention_seconds), settings)
        _engines[id(client)] = cached
    return cached


_engines: dict[int, Engine] = {}


def apply_event(envelope: dict[str, Any], pending: str) -> None:
    """Job: apply one accepted event to its call (or conversation)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("apply_event runs inside an RQ worker")
    started = time.perf_counter()
    engine = engine_for(job.connection)
    with bind_event(envelope):
        engine.apply(envelope, pending)
    age = time.time() - parse_time(envelope["received_at"]).timestamp()
    engine.store.add_stats(
        applied_increments(envelope["event_type"], time.perf_counter() - started, age)
    )
