"""The delivery process: attempts to many receivers at once, none holding up another.

One loop claims due attempts, prepares them and records how they went; it is
the process's only Redis user, so the process holds one Redis connection. A
pool of DELIVERY_THREADS threads makes the HTTP attempts, each time-boxed
(core/deliveries/webhooks.py). Each receiver is kept to its share:

* a subscription has at most ``max_in_flight`` attempts under way at once
  (DELIVERY_MAX_IN_FLIGHT unless it sets its own). Attempts are claimed only
  for free threads, so nothing claimed waits in memory: in flight = running;
* its breaker (core/deliveries/breaker.py) opens after DELIVERY_BREAKER_FAILURES failed
  attempts in a row; while open it gets no thread, then one for the probe.

So a receiver that hangs holds ``max_in_flight`` threads for a few attempts,
then one now and then for a probe, and the other subscriptions' attempts go
out when due. Per process: with DELIVERY_CONCURRENCY processes, a receiver may
see that many times ``max_in_flight`` requests at once.
"""

from __future__ import annotations

import contextlib
import queue
import ssl
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import redis

from core.deliveries.breaker import Breaker
from core.deliveries.dispatch import DELIVERY_LEASE, Deliveries, Prepared, max_in_flight
from core.deliveries.kinds import transport
from core.deliveries.webhooks import (
    DELIVERY_TIMEOUT_SECONDS,
    Attempt,
    Resolver,
    system_resolver,
)
from core.gc_pauses import freeze_start_up_objects
from core.observability import get_logger
from core.settings import Settings
from core.store import (
    DELIVERIES_DUE_KEY,
    Store,
    SubscriptionState,
    open_redis,
)
from statemachine.events import parse_time
from workers.shutdown import (
    main_thread_gets_signals,
    note_stop_requests,
    start_watchdog,
    still_wanted,
    stopping,
)

log = get_logger("callstate.deliveries")

class Stopping(Protocol):
    """What tells the runner to stop: a StopFlag, or a threading.Event in tests."""

    def is_set(self) -> bool: ...


TICK = 0.1  # how often finished attempts are looked for (at once when one finishes)
# How often due attempts are looked for when none finished meanwhile: one
# round trip (a ZRANGEBYSCORE per tenant) each time, so not more often.
CLAIM_EVERY = 0.25
# On SIGTERM, attempts under way get this long to finish and be recorded; one
# still unfinished is made again after its claim's lease.
SHUTDOWN_WAIT = 5.0
MIGRATE_EVERY = 30.0
# A subscription whose breaker is open is looked at again after at most this.
PAUSED_LOOK_AGAIN = 1.0
# How much earlier than its recorded due time a live event waiting its turn is put
# back: more than the recorded time's rounding, less than dispatches apart.
TURN_EARLIER = 1e-5
# Deliveries of a deleted or disabled subscription are cancelled, not sent:
# they need no thread, so many are taken at once.
CANCEL_BATCH = 100


class DeliveryRunner:
    """Claims due attempts within each subscription's limits and runs them on threads."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        threads: int | None = None,
        resolve: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DELIVERY_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.deliveries = Deliveries(store, settings)
        self.subs = self.deliveries.subs
        self.threads = threads or settings.delivery_threads
        self.resolve = resolve
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.clock = clock
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="callstate-delivery")
        # Attempts under way, by their future. A finished future is put on
        # _finished by its done callback, the queue's own put: a callback that
        # held the attempt (which holds the future, which holds its callbacks)
        # made a reference cycle per attempt, freed only by a full collection,
        # so the process's memory grew with the attempts made.
        # A queue.Queue, not a SimpleQueue: on CPython 3.11, SimpleQueue.get with a
        # timeout waits for ever when a signal interrupts it after its deadline
        # passed (it takes the negative time left for "no timeout"): a SIGTERM
        # that found the process just past a wait's deadline (stopped, or not
        # scheduled on a busy machine) left this loop blocked and the process
        # deaf to the stop it had noted. Queue waits on threading's locks, which
        # treat that case as a timeout.
        self._in_flight: dict[Future[Attempt], Prepared] = {}
        self._finished: queue.Queue[Future[Attempt]] = queue.Queue()
        self._unrecorded: list[Future[Attempt]] = []
        self._running: Counter[str] = Counter()
        self._paused: dict[str, float] = {}  # subscription -> monotonic time to look again
        self._turns: set[tuple[str, str]] = set()  # (subscription, call) with an event out
        self.due = store.due
        self._migrated = -MIGRATE_EVERY
        self._claimed = -CLAIM_EVERY

    # -- the loop -------------------------------------------------------------------

    def run(self, stopping: Stopping) -> None:
        """Deliver until ``stopping`` is set, then finish the attempts under way."""
        while not stopping.is_set():
            try:
                self.step()
            except redis.RedisError as exc:
                log.warning("deliveries paused: redis unavailable", error=str(exc))
                self._pause(stopping, 1.0)
            except Exception:
                log.exception("delivery step failed")
                self._pause(stopping, 1.0)
            self.wait(TICK)
        self.finish(min(SHUTDOWN_WAIT, self.timeout))
        self.pool.shutdown(wait=False)

    def step(self, force: bool = False) -> int:
        """Record finished attempts, then start as many due ones as limits allow
        (looking for them at most every CLAIM_EVERY unless one finished or ``force``).

        Returns how many attempts it started.
        """
        recorded = self._record_finished()
        free = self.threads - len(self._in_flight)
        looked = time.monotonic()
        if free <= 0 or not (force or recorded or looked - self._claimed >= CLAIM_EVERY):
            return 0
        self._claimed = looked
        now = self.clock()
        self._migrate_now_and_then()
        # Only the tenants the cross-tenant index says have an attempt due, each
        # taken for a lease and handed back with what is left (DueIndexes).
        taken = self.due.take(DELIVERIES_DUE_KEY, now, now)
        try:
            return self._start_due([tenant for tenant, _ in taken], free, now)
        finally:
            for tenant, lease in taken:
                self.due.release(DELIVERIES_DUE_KEY, tenant, lease, self.subs.earliest_due(tenant))

    def _start_due(self, tenants: list[str], free: int, now: float) -> int:
        """Start as many due attempts of ``tenants`` as limits allow; returns how many."""
        if not tenants:
            return 0
        due = self.subs.due_subscriptions(tenants, now)
        looked_at = time.monotonic()
        wanted = [
            (tenant, sub)
            for tenant, subs in due.items()
            for sub in subs
            if self._paused.get(sub, 0.0) <= looked_at
        ]
        if not wanted:
            return 0
        states = self.subs.subscription_states(wanted)
        probes: set[str] = set()
        allowed = {sub: self._allowance(sub, state, now, probes) for sub, state in states.items()}
        started: Counter[str] = Counter()
        for tenant, subs in due.items():
            quotas: list[tuple[str, int]] = []
            threads_left = free - sum(started.values())
            for sub in subs:
                if sub not in allowed:
                    continue
                if self._cancels(states[sub]):
                    quotas.append((sub, CANCEL_BATCH))
                    continue
                quota = max(min(allowed[sub] - started[sub], threads_left), 0)
                threads_left -= quota
                quotas.append((sub, quota))
            claimed = self.subs.claim_deliveries(tenant, now, now + DELIVERY_LEASE, quotas)
            for sub, delivery_ids in claimed.items():
                state = states[sub]
                for delivery_id in delivery_ids:
                    prepared = self.deliveries.prepare(
                        tenant, delivery_id, state.subscription, state.stored_under, sub, now
                    )
                    if prepared is not None and not self._waits_its_turn(prepared, now):
                        self._submit(prepared)
                        started[sub] += 1
        for sub in probes - set(started):
            # The probe found nothing due to send: let the next due delivery be it.
            self.subs.update_breaker(
                states[sub].stored_under,
                sub,
                lambda raw: Breaker.from_json(raw).probe_unused(self.clock()).to_json(),
            )
        return sum(started.values())

    def run_until_idle(self, timeout: float = 60.0) -> int:
        """Step until nothing is under way and nothing can start; returns attempts made."""
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            started = self.step(force=True)
            total += started
            if not started and not self._in_flight and not self._unrecorded:
                return total
            self.wait(TICK)
        raise TimeoutError(f"deliveries still under way after {timeout:g} s")

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the attempts under way and record them. Those
        still unfinished keep their claim's lease and are made again after it."""
        deadline = time.monotonic() + timeout
        while self._in_flight and time.monotonic() < deadline:
            self.wait(min(TICK, max(deadline - time.monotonic(), 0.0)))
            try:
                self._record_finished()
            except redis.RedisError as exc:
                log.warning("could not record attempts: redis unavailable", error=str(exc))
                time.sleep(0.5)

    # -- claiming ---------------------------------------------------------------------

    @staticmethod
    def _cancels(state: SubscriptionState) -> bool:
        return state.subscription is None or not state.subscription.get("enabled", True)

    def _allowance(
        self, sub: str, state: SubscriptionState, now: float, probes: set[str]
    ) -> int:
        """How many more attempts this subscription may start now."""
        if state.subscription is None or not state.subscription.get("enabled", True):
            return 0  # its deliveries are cancelled (_cancels), no thread needed
        breaker = Breaker.from_json(state.breaker)
        if breaker.closed:
            return max(max_in_flight(state.subscription, self.settings) - self._running[sub], 0)
        if self._running[sub] == 0 and breaker.may_probe(now) and self._take_probe(sub, state, now):
            probes.add(sub)
            return 1
        wait = PAUSED_LOOK_AGAIN
        if breaker.retry_at is not None and breaker.retry_at > now:
            wait = min(wait, breaker.retry_at - now)
        self._paused[sub] = time.monotonic() + wait
        return 0

    def _take_probe(self, sub: str, state: SubscriptionState, now: float) -> bool:
        """Make this process the one that probes ``sub`` (atomically: one prober)."""

        def take(raw: str | None) -> str | None:
            breaker = Breaker.from_json(raw)
            if not breaker.may_probe(now):
                return None
            return breaker.probing(now, DELIVERY_LEASE).to_json()

        before, after = self.subs.update_breaker(state.stored_under, sub, take)
        return after != before

    def _migrate_now_and_then(self) -> None:
        looked = time.monotonic()
        if looked - self._migrated >= MIGRATE_EVERY:
            self._migrated = looked
            moved = self.subs.migrate_delivery_timers(self.store.tenants.all())
            if moved:
                log.warning("moved delivery timers into per-subscription queues", moved=moved)

    def _waits_its_turn(self, prepared: Prepared, now: float) -> bool:
        """Put a live call event back for a moment while an earlier event of its call
        is on its way to the same subscription (claims come oldest first), so a
        receiver gets one call's events in order. True if it was put back."""
        turn = prepared.call_turn
        if turn is None:
            return False
        if turn in self._turns:
            # Back where it was due, not later: a later event of the call, due
            # later, must not be claimed before it. The due time kept is rounded
            # to the microsecond, so a hair earlier than that.
            due = parse_time(prepared.delivery["next_attempt_at"] or "").timestamp() - TURN_EARLIER
            self.subs.schedule_delivery(
                prepared.tenant_id, prepared.subscription_id, prepared.delivery["id"], due
            )
            return True
        self._turns.add(turn)
        return False

    # -- attempts ---------------------------------------------------------------------

    def _submit(self, prepared: Prepared) -> None:
        future = self.pool.submit(
            transport,
            prepared.url,
            prepared.rendered,
            prepared.headers,
            self.settings,
            timeout=self.timeout,
            resolve=self.resolve,
            ssl_context=self.ssl_context,
        )
        self._in_flight[future] = prepared
        self._running[prepared.subscription_id] += 1
        future.add_done_callback(self._finished.put)

    def _pause(self, stopping: Stopping, seconds: float) -> None:
        """Wait ``seconds`` (recording attempts that finish meanwhile), or less if asked
        to stop: polled, because the stop flag may be a signal handler's plain flag."""
        deadline = time.monotonic() + seconds
        while not stopping.is_set() and time.monotonic() < deadline:
            self.wait(min(TICK, max(deadline - time.monotonic(), 0.0)))

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout``, waking as soon as an attempt finishes."""
        with contextlib.suppress(queue.Empty):
            self._unrecorded.append(self._finished.get(timeout=timeout))

    def _record_finished(self) -> int:
        """Record every finished attempt; returns how many."""
        recorded = 0
        while True:
            try:
                self._unrecorded.append(self._finished.get_nowait())
            except queue.Empty:
                break
        while self._unrecorded:
            future = self._unrecorded[0]
            prepared = self._in_flight[future]
            result = _outcome(future)
            self.deliveries.record(prepared, result)  # may raise: kept for later
            self._unrecorded.pop(0)
            del self._in_flight[future]
            sub = prepared.subscription_id
            if prepared.call_turn is not None:
                self._turns.discard(prepared.call_turn)
            self._running[sub] -= 1
            if self._running[sub] <= 0:
                del self._running[sub]
            if result.ok:
                self._paused.pop(sub, None)
            recorded += 1
        return recorded

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)


def _outcome(future: Future[Attempt]) -> Attempt:
    try:
        return future.result()
    except Exception as exc:  # send() never raises; a bug must still not lose the delivery
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:300])


def run_process(settings: Settings) -> None:
    """Run the delivery process until SIGTERM/SIGINT (``python -m workers --deliveries``)."""
    note_stop_requests()
    with main_thread_gets_signals():
        start_watchdog(stopping)

    connections = open_redis(settings, wait_seconds=float("inf"), on_retry=still_wanted)
    store = Store(
        connections.state,
        retention_seconds=settings.retention_seconds,
        queues=connections.queues,
    )
    runner = DeliveryRunner(store, settings)
    freeze_start_up_objects()  # set up for good: spare full collections the walk
    runner.run(stopping)
