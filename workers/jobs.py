"""RQ job functions, and how accepted events reach them.

An accepted event is kept in its partition's pending set (by call, so one
call's events stay together) and the partition's *doorbell* is rung: if no
drain job is queued or running for the partition, intake enqueues one. A
drain job is a session of up to ten seconds that holds every partition it can
and applies their events as intake wakes it (:class:`DrainSession`), so one
RQ job carries every event of ten busy seconds (RQ's own bookkeeping costs ~60
Redis commands a job; ours, a few an event).

Jobs take JSON-serialisable arguments and find Redis through the job that runs
them (``rq.get_current_job().connection``): nothing is set up at import time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

import redis
from rq import Queue, get_current_job

from core.observability import applied_increments, get_logger
from core.queue import enqueue_drain, events_queue, new_job_id
from core.settings import Settings
from core.store import PARTITIONS, Store
from statemachine.envelope import Envelope
from statemachine.events import parse_time
from workers.engine import Engine
from workers.shutdown import stopping

log = get_logger("callstate.jobs")

# A drain job hands over to a fresh job after this long (a SIGTERM ends it at
# once, whatever this is). Each hand-over leaves new events waiting while RQ
# finishes one job and starts the next: 10-15 ms from the last pass to the
# next at 500 events/s on a loaded 2-core machine, more at 1,000/s. At one
# hand-over a second that was ~1% of a busy worker's events, right at the
# p99; at one every 10 s it is a tenth of that, and a job stays far inside
# RQ's timeout (core/queue.py DRAIN_TIMEOUT).
DRAIN_SLICE_SECONDS = 10.0
# A session with nothing to do lets go after this long (tests set 0: drain and end).
IDLE_LINGER_SECONDS = 1.0
# Longest wait on the wake lists between looks at the queue and the stop flag.
WAKE_WAIT_SECONDS = 0.05
# How often a busy session adds up its counters into Redis (one that waits a
# whole WAKE_WAIT_SECONDS for nothing adds them up at once).
STATS_EVERY_SECONDS = 0.5
BATCH_SIZE = 200


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


_engines: dict[int, Engine] = {}


def register_engine(queues: redis.Redis, engine: Engine) -> None:
    """Make drain jobs run by workers on ``queues`` (RQ's Redis) use ``engine``
    (its store may be elsewhere: a Redis Cluster)."""
    _engines[id(queues)] = engine


def engine_for(client: redis.Redis) -> Engine:
    """The engine registered for RQ connection ``client``; else one over ``client``
    itself (call state and queues on one Redis), built once per connection."""
    cached = _engines.get(id(client))
    if cached is not None and cached.store.backend.queues is client:
        return cached
    if cached is None or cached.store.backend.redis is not client:
        settings = _settings()
        store = Store(client, retention_seconds=settings.retention_seconds)
        cached = Engine(store, settings)
        _engines[id(client)] = cached
    return cached


def drain(tenant_id: str, partition: int, more: Sequence[Sequence[Any]] = ()) -> int:
    """Job: apply the pending events of the partitions rung for it, and of every
    partition it can take over, for up to a time slice; returns how many.

    See :class:`DrainSession`. Every event is applied or set aside as
    poisoned, never lost.
    """
    job = get_current_job()
    if job is None:
        raise RuntimeError("drain runs inside an RQ worker")
    engine = engine_for(job.connection)
    own = [(tenant_id, int(partition)), *((str(t), int(n)) for t, n in more)]
    session = DrainSession(engine, events_queue(job.connection), job.worker_name or "", job.id)
    return session.run(own)


class DrainSession:
    """One drain job's work: hold partitions' doorbells, apply what they get.

    The job starts by claiming the partitions it was rung (or handed) for.
    While it holds a partition's doorbell, intake does not enqueue jobs for
    it: it leaves a wake token instead, and the session, blocked on the wake
    lists of everything it holds, applies the new events at once. Drain jobs
    that were queued meanwhile (rung for partitions nobody held) have their
    partitions taken over, so one session soon holds every busy partition and
    RQ's per-job cost is paid once a slice, not once an event.

    After ``DRAIN_SLICE_SECONDS`` (or at once on SIGTERM) the session hands
    everything it holds to one successor job if it applied anything (so
    nothing rings in between), else lets go of every empty partition and
    hands the rest on. If anything goes wrong, it lets go of everything;
    the next event or the reaper rings again.
    """

    def __init__(self, engine: Engine, queue: Queue, worker_name: str, job_id: str) -> None:
        self.engine = engine
        self.store = engine.store
        self.queue = queue
        self.me = f"worker:{worker_name}"
        self.job_ref = f"job:{job_id}"
        self.held: list[tuple[str, int]] = []
        self.dirty: set[tuple[str, int]] = set()
        self.applied = 0
        self._stats: dict[str, float] = {}
        self._stats_at = time.monotonic()

    def run(self, own: list[tuple[str, int]]) -> int:
        started = time.monotonic()
        deadline = started + DRAIN_SLICE_SECONDS
        self.held = self.store.pending.claim_doorbells(own, self.me, [self.job_ref])
        if not self.held:
            return 0  # another session took these partitions over meanwhile
        # Partitions to look into: all at first; then the one a wake token
        # names, any just taken over, and any whose last batch was full.
        self.dirty = set(self.held)
        looked, last_work = 0.0, started
        try:
            while True:
                if time.monotonic() - looked >= WAKE_WAIT_SECONDS:
                    self._take_over_queued()
                    looked = time.monotonic()
                if self.dirty and self._apply_waiting():
                    last_work = time.monotonic()
                    if last_work < deadline and not stopping.is_set():
                        continue
                    break
                now = time.monotonic()
                idle = now - last_work
                if now >= deadline or stopping.is_set() or idle >= IDLE_LINGER_SECONDS:
                    break
                wait = min(WAKE_WAIT_SECONDS, deadline - now, IDLE_LINGER_SECONDS - idle)
                woken = self.store.pending.wait_for_wake(self.held, wait)
                if not woken and self._stats:
                    # A quiet wait: count what was applied now, not up to the
                    # idle linger later (/metrics and the benchmarks read it).
                    self._flush_stats()
                self.dirty.update(woken)
            self._flush_stats()
            # Events still coming: keep every partition held through the
            # hand-over, so none of them rings a job of its own meanwhile.
            self._hand_over(busy=time.monotonic() - last_work < IDLE_LINGER_SECONDS)
            return self.applied
        except BaseException:
            held, self.held = self.held, []
            for tenant, number in held:
                self.store.pending.swap_doorbell(tenant, number, self.me, None)
            raise

    def _apply_waiting(self) -> bool:
        """Apply what is pending in the partitions to look into; False if nothing was."""
        looking = sorted(self.dirty)
        # On one Redis the calls' heads come with the events: one round trip fewer.
        taken, heads = self.store.calls.take_with_heads(looking, BATCH_SIZE)
        self.dirty = {part for part, batch in taken.items() if len(batch) >= BATCH_SIZE}
        by_tenant: dict[str, dict[int, list[tuple[str, Envelope]]]] = {}
        for (tenant, number), batch in taken.items():
            by_tenant.setdefault(tenant, {})[number] = batch
        for tenant, batches in by_tenant.items():
            started = time.perf_counter()
            result = self.engine.apply_batches(tenant, batches, heads.get(tenant))
            self._count(result.applied, time.perf_counter() - started)
            self.applied += len(result.applied)
        if time.monotonic() - self._stats_at >= STATS_EVERY_SECONDS:
            self._flush_stats()
        return bool(taken)

    def _take_over_queued(self) -> None:
        """Take over the partitions of drain jobs waiting on the queue."""
        if not self.queue.count:
            return
        queued = self.queue.get_job_ids()
        if not queued:
            return
        # Read afresh: a queued job may be a new tenant's first.
        tenants = {tenant for tenant, _ in self.held} | set(self.store.tenants.all())
        every = [(t, n) for t in sorted(tenants) for n in range(PARTITIONS)]
        claimed = self.store.pending.claim_doorbells(every, self.me, [f"job:{j}" for j in queued])
        self.dirty |= set(claimed) - set(self.held)
        self.held = sorted(set(self.held) | set(claimed))

    def _hand_over(self, busy: bool) -> None:
        held, self.held = self.held, []
        waiting = held if busy else self.store.pending.hand_over(held, self.me, None)
        if not waiting:
            return
        successor = new_job_id()
        handed = self.store.pending.hand_over(waiting, self.me, f"job:{successor}")
        if handed:
            (tenant, number), *more = handed
            enqueue_drain(self.queue, tenant, number, successor, more)

    def _count(self, envelopes: list[Envelope], seconds: float) -> None:
        """Add up applied events: counts, apply time (the batch's, shared), webhook-to-state age."""
        if not envelopes:
            return
        now = time.time()
        share = seconds / len(envelopes)
        totals = self._stats
        for envelope in envelopes:
            age = now - parse_time(envelope["received_at"]).timestamp()
            for name, amount in applied_increments(envelope["event_type"], share, age).items():
                totals[name] = totals.get(name, 0.0) + amount

    def _flush_stats(self) -> None:
        if self._stats:
            self.store.stats.add(self._stats)
            self._stats = {}
        self._stats_at = time.monotonic()
