"""The worker's background duties: decide due outcomes and rescue lost events.

Runs as a thread beside each RQ worker. Every tick it
  * refreshes this worker's heartbeat (a key with a few seconds' TTL), which is
    how the reaper tells a busy worker from one that was killed;
  * claims the calls whose timer fell due (outcome grace over, or silent past
    CALL_TIMEOUT_SECONDS) and decides them;
  * (one worker at a time) re-enqueues accepted events whose job was lost:
    a worker killed mid-job, a job stuck between RQ's lists. Applying is
    idempotent, so re-enqueueing an event that was in fact applied is harmless.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from rq import Queue

from statemachine.events import parse_time
from workers.delivery import Deliveries, deliveries_queue
from workers.engine import Engine
from workers.jobs import enqueue_event, job_id_for
from workers.observability import OUTCOME_BUCKETS, get_logger, histogram_increments
from workers.store import PendingEvent

log = get_logger("callstate.housekeeper")

HEARTBEAT_TTL = 5.0
TIMER_LEASE = 15.0
REAPER_LOCK = "cs:reaper-lock"
DISPATCH_LOCK = "cs:dispatch-lock"
WAITING_STATUSES = {"queued", "deferred", "scheduled"}


class Housekeeper(threading.Thread):
    def __init__(
        self, engine: Engine, queue: Queue, worker_name: str, interval: float = 0.25
    ) -> None:
        super().__init__(name="callstate-housekeeper", daemon=True)
        self.engine = engine
        self.store = engine.store
        self.queue = queue
        self.worker_name = worker_name
        self.interval = interval
        self.stopping = threading.Event()
        self._tenants: list[str] = []
        self._tenants_read = 0.0
        self._last_reap = 0.0
        self.deliveries = Deliveries(self.store, engine.settings)
        self.deliveries_queue = deliveries_queue(self.store.redis)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except redis.RedisError as exc:
                log.warning("housekeeping paused: redis unavailable", error=str(exc))
                self.stopping.wait(1.0)
            except Exception:
                log.exception("housekeeping tick failed")
            self.stopping.wait(self.interval)

    def tenants(self) -> list[str]:
        now = time.monotonic()
        if now - self._tenants_read > 2.0:
            self._tenants = self.store.tenants()
            self._tenants_read = now
        return self._tenants

    def tick(self) -> None:
        self.store.heartbeat(self.worker_name, HEARTBEAT_TTL)
        self.decide_due()
        self.dispatch()
        now = time.time()
        if now - self._last_reap >= 1.0:
            self._last_reap = now
            self.reap()

    def decide_due(self) -> int:
        """Decide every call whose timer is due; returns how many were looked at."""
        now = self.engine.clock()
        lease = now + TIMER_LEASE
        count = 0
        for tenant in self.tenants():
            for call_uuid in self.store.claim_timers(tenant, now, lease):
                count += 1
                try:
                    status = self.engine.decide(tenant, call_uuid, claimed_score=lease)
                except Exception:
                    # The lease runs out and the timer is claimed again later.
                    log.exception("deciding failed", tenant=tenant, call_uuid=call_uuid)
                    continue
                if status == "published":
                    self._count_outcome(tenant, call_uuid)
        return count

    def dispatch(self) -> int:
        """Turn new outcome records into deliveries (one dispatcher at a time),
        then due delivery attempts into jobs; returns how many jobs."""
        if self.store.redis.set(DISPATCH_LOCK, self.worker_name, nx=True, px=5000):
            try:
                for tenant in self.tenants():
                    self.deliveries.dispatch(tenant)
            finally:
                if self.store.redis.get(DISPATCH_LOCK) == self.worker_name.encode():
                    self.store.redis.delete(DISPATCH_LOCK)
        return sum(self.deliveries.enqueue_due(t, self.deliveries_queue) for t in self.tenants())

    def _count_outcome(self, tenant: str, call_uuid: str) -> None:
        call = self.store.load_call(tenant, call_uuid)
        if call.outcome:
            kind = call.outcome.get("outcome", "unknown")
            ended = parse_time(call.outcome["ended_at"]).timestamp()
            self.store.add_stats(
                {
                    f"outcomes:{kind}": 1,
                    **histogram_increments(
                        "end_to_outcome_seconds", time.time() - ended, OUTCOME_BUCKETS
                    ),
                }
            )
            log.info(
                "outcome published",
                tenant=tenant,
                call_uuid=call_uuid,
                outcome=call.outcome.get("outcome"),
                revision=call.outcome.get("revision"),
            )

    def reap(self) -> int:
        """Re-enqueue accepted events whose job is lost; returns how many."""
        if not self.store.redis.set(REAPER_LOCK, self.worker_name, nx=True, px=5000):
            return 0
        rescued = 0
        try:
            older_than = time.time() - self.engine.settings.pending_check_seconds
            for tenant in self.tenants():
                for event in self.store.overdue_pending(tenant, older_than):
                    rescued += self._check(event)
        finally:
            # Release only our own lock.
            if self.store.redis.get(REAPER_LOCK) == self.worker_name.encode():
                self.store.redis.delete(REAPER_LOCK)
        return rescued

    def _check(self, event: PendingEvent) -> int:
        status, worker = self.store.job_status(event.job_id)
        if status in WAITING_STATUSES and not self._stuck_in_transit(event.job_id):
            self.store.touch_pending(event)
            return 0
        if status == "started" and worker and self.store.is_alive(worker):
            self.store.touch_pending(event)
            return 0
        if status == "failed":
            # RQ gave up after its retries: the job waits in the failed
            # registry for an operator; we stop watching it.
            log.error("event failed for good", job_id=event.job_id, tenant=event.tenant_id)
            self.store.drop_pending(event)
            return 0
        attempt = _attempt_of(event.job_id) + 1
        new_id = job_id_for(event.envelope, attempt)
        enqueue_event(self.store, self.queue, event.envelope, job_id=new_id, pending=event)
        log.warning(
            "re-enqueued a lost event",
            old_job=event.job_id,
            new_job=new_id,
            job_status=status,
            tenant=event.tenant_id,
        )
        return 1

    def _stuck_in_transit(self, job_id: str) -> bool:
        """A job RQ moved off the queue but never started: its worker died in between."""
        position: Any = self.store.redis.lpos(self.queue.intermediate_queue_key, job_id)
        return position is not None


def _attempt_of(job_id: str) -> int:
    _, sep, tail = job_id.rpartition("-r")
    return int(tail) if sep and tail.isdigit() else 0
