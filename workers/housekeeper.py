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

from workers.delivery import Deliveries
from workers.engine import Engine
from workers.jobs import enqueue_drain, new_job_id
from workers.observability import get_logger
from workers.store import Partition

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
        self._bells: dict[tuple[str, int], tuple[str | None, float]] = {}
        self.deliveries = Deliveries(self.store, engine.settings)

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
                    self.engine.decide(tenant, call_uuid, claimed_score=lease)
                except Exception:
                    # The lease runs out and the timer is claimed again later.
                    log.exception("deciding failed", tenant=tenant, call_uuid=call_uuid)
        return count

    def dispatch(self) -> int:
        """Turn new outcome records into deliveries (one dispatcher at a time; the
        delivery processes take them from there); returns how many."""
        if not self.store.redis.set(DISPATCH_LOCK, self.worker_name, nx=True, px=5000):
            return 0
        try:
            return sum(self.deliveries.dispatch(tenant) for tenant in self.tenants())
        finally:
            if self.store.redis.get(DISPATCH_LOCK) == self.worker_name.encode():
                self.store.redis.delete(DISPATCH_LOCK)

    def reap(self) -> int:
        """Ring again for partitions whose events wait and whose drainer is gone.

        Returns how many drain jobs it enqueued. One reaper at a time.
        """
        if not self.store.redis.set(REAPER_LOCK, self.worker_name, nx=True, px=5000):
            return 0
        rescued = 0
        try:
            check = self.engine.settings.pending_check_seconds
            stale_after = max(30.0, 10 * check)
            now = time.time()
            for partition in self.store.busy_partitions(self.tenants()):
                if now - partition.oldest >= check:
                    rescued += self._check(partition, stale_after)
        finally:
            # Release only our own lock.
            if self.store.redis.get(REAPER_LOCK) == self.worker_name.encode():
                self.store.redis.delete(REAPER_LOCK)
        return rescued

    def _check(self, partition: Partition, stale_after: float) -> int:
        tenant, number = partition.tenant_id, partition.number
        bell = self.store.doorbell(tenant, number)
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
        if not self.store.swap_doorbell(tenant, number, bell, f"job:{successor}"):
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
            return self.store.is_alive(name)
        status, worker = self.store.job_status(name)
        if status in WAITING_STATUSES:
            return not self._stuck_in_transit(name)
        return status == "started" and worker is not None and self.store.is_alive(worker)

    def _stuck_in_transit(self, job_id: str) -> bool:
        """A job RQ moved off the queue but never started: its worker died in between."""
        position: Any = self.queue.connection.lpos(self.queue.intermediate_queue_key, job_id)
        return position is not None
