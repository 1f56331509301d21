"""What the store reads of RQ's Redis: a job in one of RQ's lists, whether it answers."""

from __future__ import annotations

import fakeredis

from core.queue import enqueue_drain, events_queue
from core.store import Store


def test_a_job_in_rqs_intermediate_list_is_found_there(store: Store) -> None:
    """job_in_rq_list finds a job id in the list RQ's API names, and not another id."""
    queue = events_queue(store.backend.queues)
    store.backend.queues.rpush(queue.intermediate_queue_key, "job-1")
    assert store.workers.job_in_rq_list(queue.intermediate_queue_key, "job-1")
    assert not store.workers.job_in_rq_list(queue.intermediate_queue_key, "job-2")


def test_rqs_own_redis_is_asked_only_when_it_is_another() -> None:
    """ping_queues is True without asking when RQ shares the call-state Redis, and False
    when RQ's own Redis does not answer."""
    state = fakeredis.FakeRedis()
    assert Store(state).health.ping_queues()
    assert Store(
        state, queues=fakeredis.FakeRedis(server=fakeredis.FakeServer())
    ).health.ping_queues()
    down = fakeredis.FakeServer()
    down.connected = False  # fakeredis's stand-in for a Redis that does not answer
    assert not Store(state, queues=fakeredis.FakeRedis(server=down)).health.ping_queues()


def test_a_jobs_status_is_read_from_rqs_job_hash(store: Store) -> None:
    """job_status gives RQ's status of a queued drain job and no worker; (None, None) once gone."""
    queue = events_queue(store.backend.queues)
    enqueue_drain(queue, "t1", 0, "job-9")
    status, worker = store.workers.job_status("job-9")
    assert status == "queued" and not worker
    job = queue.fetch_job("job-9")
    assert job is not None
    job.delete()
    assert store.workers.job_status("job-9") == (None, None)
