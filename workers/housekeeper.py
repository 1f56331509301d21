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

import redis
from rq import Queue

from core.deliveries.dispatch import Deliveries
from core.deliveries.events import dispatch_events
from core.observability import get_logger
from core.queue import enqueue_drain, new_job_id
from core.store import (
    DISPATCH_LOCK_KEY,
    EVENTS_DUE_KEY,
    OUTCOMES_DUE_KEY,
    PENDING_DUE_KEY,
    REAPER_LOCK_KEY,
    TIMERS_DUE_KEY,
    Partition,
)
from workers.alerts import AlertWatch
from workers.engine import Engine

log = get_logger("callstate.housekeeper")

HEARTBEAT_TTL = 5.0
TIMER_LEASE = 15.0
# How long one reaper or dispatcher pass may hold its lock (a pass takes far less).
LOCK_SECONDS = 5.0
# How often the reaper marks every tenant's work afresh: it heals a mark lost
# between a script and its index write (a crash), at a few commands a tenant.
SWEEP_SECONDS = 300.0
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
        self.due = self.store.due
        self._last_reap = 0.0
        # Mark every tenant afresh at start (indexes written by an older version
        # may lack some) and then every SWEEP_SECONDS.
        self._last_sweep = 0.0
        self._call_index_started = False
        self._bells: dict[tuple[str, int], tuple[str | None, float]] = {}
        self.deliveries = Deliveries(self.store, engine.settings)
        self.alerts = AlertWatch(self.store, engine.settings)

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

    def tick(self) -> None:
        self.store.workers.heartbeat(self.worker_name, HEARTBEAT_TTL)
        if not self._call_index_started:
            self.store.tenants.start_call_index(time.time())
            self._call_index_started = True
        self.decide_due()
        self.alerts.tick()
        self.dispatch()
        now = time.time()
        if now - self._last_reap >= 1.0:
            self._last_reap = now
            self.reap()

    def decide_due(self) -> int:
        """Decide every call whose timer is due, in the tenants the timers index
        names (not every tenant); returns how many were looked at."""
        now = self.engine.clock()
        lease = now + TIMER_LEASE
        count = 0
        for tenant, taken in self.due.take(TIMERS_DUE_KEY, now, now):
            for call_uuid in self.store.calls.claim_timers(tenant, now, lease):
                count += 1
                try:
                    self.engine.decide(tenant, call_uuid, claimed_score=lease)
                except Exception:
                    # The lease runs out and the timer is claimed again later.
                    log.exception("deciding failed", tenant=tenant, call_uuid=call_uuid)
            next_due = self.due.earliest_timers([tenant])[tenant]
            self.due.release(TIMERS_DUE_KEY, tenant, taken, next_due)
        return count

    def dispatch(self) -> int:
        """Turn new outcome records into deliveries (one dispatcher at a time; the
        delivery processes take them from there), for the tenants that published
        some; returns how many."""
        lock = self.store.locks.try_take(DISPATCH_LOCK_KEY, LOCK_SECONDS)
        if lock is None:
            return 0
        created = 0
        try:
            now = time.time()
            for tenant, taken in self.due.take(OUTCOMES_DUE_KEY, now, now):
                created += self.deliveries.dispatch(tenant)
                more = self.deliveries.undispatched(tenant)
                self.due.release(OUTCOMES_DUE_KEY, tenant, taken, now if more else None)
            # Live call events and alerts, the same way (core/deliveries/events.py).
            for tenant, taken in self.due.take(EVENTS_DUE_KEY, now, now):
                made, more = dispatch_events(self.store, tenant)
                created += made
                self.due.release(EVENTS_DUE_KEY, tenant, taken, now if more else None)
            return created
        finally:
            self.store.locks.release(lock)

    def reap(self) -> int:
        """Ring again for partitions whose events wait and whose drainer is gone,
        in the tenants the pending index names; now and then, mark every tenant's
        work afresh (``DueIndexes.sweep``). Returns how many drain jobs it
        enqueued. One reaper at a time.
        """
        lock = self.store.locks.try_take(REAPER_LOCK_KEY, LOCK_SECONDS)
        if lock is None:
            return 0
        rescued = 0
        try:
            check = self.engine.settings.pending_check_seconds
            stale_after = max(30.0, 10 * check)
            now = time.time()
            if now - self._last_sweep >= SWEEP_SECONDS:
                self._last_sweep = now
                self.due.sweep()
            for tenant, taken in self.due.take(PENDING_DUE_KEY, now, now):
                for partition in self.store.pending.busy_partitions([tenant]):
                    if now - partition.oldest >= check:
                        rescued += self._check(partition, stale_after)
                oldest = self.due.oldest_pending([tenant])[tenant]
                self.due.release(PENDING_DUE_KEY, tenant, taken, oldest)
        finally:
            self.store.locks.release(lock)
        return rescued

    def _check(self, partition: Partition, stale_after: float) -> int:
        tenant, number = partition.tenant_id, partition.number
        bell = self.store.pending.doorbell(tenant, number)
        # A drainer that is alive but has made no progress for a long while
        # (the same doorbell, events still waiting) gets company: a second
        # drainer is harmless, a stuck partition is not.
        seen = self._bells.get((tenant, number))
        if seen is None or seen[0] != bell:
            self._bells[(tenant, number)] = (bell, time.monotonic())
            seen = self._bells[(tenant, number)]
        stale = time.monotonic() - seen[1] >= stale_after
        if bell is not None and not stale and self._drainer_on_its_way(bell):
            return 0
        successor = new_job_id()
        if not self.store.pending.swap_doorbell(tenant, number, bell, f"job:{successor}"):
            return 0  # someone else rang or finished meanwhile
        enqueue_drain(self.queue, tenant, number, successor)
        log.warning(
            "rang again for waiting events",
            tenant=tenant,
            partition=number,
            waiting=partition.size,
            previous=bell,
        )
        return 1

    def _drainer_on_its_way(self, bell: str) -> bool:
        """Is the job or worker named by a doorbell queued, or alive and working?"""
        kind, _, name = bell.partition(":")
        if kind == "worker":
            return self.store.workers.is_alive(name)
        status, worker = self.store.workers.job_status(name)
        if status in WAITING_STATUSES:
            return not self._stuck_in_transit(name)
        return status == "started" and worker is not None and self.store.workers.is_alive(worker)

    def _stuck_in_transit(self, job_id: str) -> bool:
        """A job RQ moved off the queue but never started: its worker died in between."""
        return self.store.workers.job_in_rq_list(self.queue.intermediate_queue_key, job_id)
