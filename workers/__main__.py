"""Run the worker process type: ``python -m workers``.

Starts ``WORKER_CONCURRENCY`` (default 1) RQ SimpleWorkers for events, each
with its housekeeper thread, and ``DELIVERY_CONCURRENCY`` (default 1) delivery
processes for outbound webhooks (workers/deliveries.py): a receiver that
takes its full 10 s never holds up events.

SimpleWorker runs jobs in its own process instead of forking one per job:
our jobs take a millisecond, a fork takes far longer, and a SIGTERM (Heroku's
daily restart) then lets the job in hand finish before the worker exits
instead of killing it half-way.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

import redis
from redis.client import PubSubWorkerThread
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.serializers import JSONSerializer

from core.gc_pauses import freeze_start_up_objects
from core.observability import configure_logging, get_logger
from core.queue import events_queue
from core.settings import ConfigError, Settings
from core.store import Store, open_redis
from workers import jobs
from workers.archiver import start_archiver
from workers.deliveries import run_process as run_deliveries
from workers.engine import Engine
from workers.housekeeper import Housekeeper
from workers.shutdown import (
    SHUTDOWN_SIGNALS,
    main_thread_gets_signals,
    note_stop_requests,
    start_watchdog,
    still_wanted,
    stopping,
)

log = get_logger("callstate.worker")

# RQ's maintenance (its own registry cleanup) runs this often; our reaper is
# what makes recovery fast, RQ's cleanup only tidies up after it.
MAINTENANCE_INTERVAL = 60
# How long a stopping worker waits for RQ's pubsub thread to leave.
PUBSUB_STOP_SECONDS = 2.0
# redis-py before 8.2 only sets the thread's flag in stop(); 8.2 also joins it,
# without a timeout unless given one.
_STOP_TAKES_TIMEOUT = "timeout" in inspect.signature(PubSubWorkerThread.stop).parameters


class EngineWorker(SimpleWorker):
    """SimpleWorker that knows it was asked to stop, and is not rushed by echoes."""

    # RQ backs off up to 60 s between reconnection attempts; a few seconds
    # keeps an outage's tail short once Redis is back.
    max_connection_wait_time = 3.0
    stop_asked_at: float | None = None

    def subscribe(self) -> None:
        # RQ starts its pubsub thread here: keep shutdown signals out of it.
        with main_thread_gets_signals():
            super().subscribe()  # type: ignore[no-untyped-call]

    def unsubscribe(self) -> None:
        """Stop RQ's pubsub thread without the race that held SIGTERM up to 60 s.

        RQ sends UNSUBSCRIBE, then asks the thread to stop and joins it
        (redis-py 8 joins with no timeout). Its thread waits for messages up
        to 60 s at a time, and once it has read the confirmation it is no
        longer subscribed: if it read it before the stop flag was set, it
        went on to wait the full 60 s for a subscription that never comes,
        and the join with it (seen under load: the worker SIGKILLed after
        10 s, rq/rq#1613). Tripping the flag first makes that confirmation
        the thread's last message; the join is bounded all the same.
        """
        thread, pubsub = self.pubsub_thread, self.pubsub
        if thread is None or pubsub is None:
            return
        # Set the flag only: redis-py 8.2 joins in stop() unless told not to wait.
        thread.stop(timeout=0) if _STOP_TAKES_TIMEOUT else thread.stop()
        if thread.is_alive():  # else it closed the pubsub: a command would open it again
            with contextlib.suppress(redis.RedisError, OSError):
                pubsub.unsubscribe()
        # The thread closes its pubsub connection as it leaves; a daemon
        # thread still waiting on a dead Redis dies with the process.
        thread.join(PUBSUB_STOP_SECONDS)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        # A SIGTERM taken before RQ installed its handlers (while it registered
        # this worker) was noted by ours: stop here, inside RQ's loop, so its
        # teardown still deregisters the worker.
        if stopping.is_set():
            raise StopRequested()
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_asked_at = time.monotonic()
        stopping.set()  # a drain session in hand stops waiting for more
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        # Heroku signals every process of the dyno and our supervisor passes
        # the signal on too, so one SIGTERM can arrive twice; only a second
        # request well after the first means "stop now" (RQ's cold shutdown).
        asked = self.stop_asked_at
        if signum == signal.SIGTERM and asked is not None and time.monotonic() - asked < 2.0:
            return
        super().request_force_stop(signum, frame)


def run_events(settings: Settings) -> None:
    """Run one SimpleWorker of events until SIGTERM, waiting out Redis outages.

    RQ's work loop gives up ("unhandled exception, quitting") on some Redis
    errors; a worker process that exits would take bin/start's other processes
    down with it, so unless a shutdown was asked for, we start a new worker.
    """
    # Waiting long for a connection is fine here (no client is waiting on us);
    # the budget only bounds how many this process holds (of each Redis server).
    connections = open_redis(
        settings,
        max_connections=settings.worker_process_connections,
        pool_wait=30.0,
        wait_seconds=float("inf"),
        on_retry=still_wanted,
    )
    client = connections.queues
    store = Store(
        connections.state, retention_seconds=settings.retention_seconds, queues=client
    )
    engine = Engine(store, settings)
    # Drain jobs find this engine through their RQ connection.
    jobs.register_engine(client, engine)
    with main_thread_gets_signals():
        start_watchdog(stopping)
        # Call history (DATABASE_URL): a thread of its own, so a slow or absent
        # database never holds up events. It dies with the process; an
        # unfinished transaction is rolled back and redone from the cursor.
        start_archiver(store, settings)
    freeze_start_up_objects()  # set up for good: spare full collections the walk
    try:
        while not stopping.is_set():
            run_worker(settings, store, engine, client)
            if not stopping.is_set():
                time.sleep(1.0)
    except StopRequested:
        # A SIGTERM between two workers is taken by the last one's handler (RQ
        # leaves it installed), which raises where it lands: a stop all the same.
        return


def run_worker(settings: Settings, store: Store, engine: Engine, client: redis.Redis) -> None:
    """Run one RQ worker and its housekeeper until RQ's work loop ends."""
    try:
        for warning in store.health.server_warnings():
            log.warning("redis configuration puts events at risk", problem=warning)
        for warning in store.health.connection_warnings(settings.formation_connections()):
            log.warning("redis connection budget", problem=warning)
        queue = events_queue(client)
        worker = EngineWorker(
            [queue],
            connection=client,
            serializer=JSONSerializer,
            maintenance_interval=MAINTENANCE_INTERVAL,
        )
        housekeeper = Housekeeper(engine, queue, worker.name)
        with main_thread_gets_signals():
            housekeeper.start()
        try:
            worker.work(with_scheduler=False, logging_level="WARNING")
        finally:
            housekeeper.stop()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("redis unavailable, retrying", error=str(exc))


def run_many(events: int, deliveries: int) -> int:
    """Supervise the single workers; pass SIGTERM/SIGINT on to them.

    Exits 0 when every child stopped cleanly, or was ended by the signal we
    passed on before it could install its handlers (nothing was in hand);
    else with the first child's failure.
    """
    children: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    # Before the first child starts, so a SIGTERM at any moment reaches them all.
    for signum in SHUTDOWN_SIGNALS:
        signal.signal(signum, forward)
    roles = ["--events"] * events + ["--deliveries"] * deliveries
    for role in roles:
        children.append(subprocess.Popen([sys.executable, "-m", "workers", role]))
        if stopping.is_set():
            break
    stopped_by_us = {-signum for signum in SHUTDOWN_SIGNALS}
    for child in children:
        code = child.wait()
        if code != 0 and not (stopping.is_set() and code in stopped_by_us):
            return code
    return 0


def check_redis(settings: Settings) -> None:
    """Refuse to start on a Redis layout we cannot use (a cluster without
    RQ_REDIS_URL). Raises ConfigError; a Redis that does not answer is left
    to the workers, which wait for it."""
    try:
        connections = open_redis(settings, wait_seconds=0)
    except redis.RedisError as exc:
        log.warning("redis not answering at start; workers will wait for it", error=str(exc))
        return
    connections.state.close()
    connections.queues.close()


def main(argv: list[str]) -> int:
    if {"--events", "--deliveries"} & set(argv):
        note_stop_requests()
    configure_logging()
    try:
        settings = Settings.from_env()
        if not {"--events", "--deliveries"} & set(argv):
            check_redis(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not {"--events", "--deliveries"} & set(argv):  # once, by the process that starts them
        for warning in settings.short_secret_warnings():
            log.warning("configuration warning", problem=warning)
    if "--events" in argv:
        run_events(settings)
        return 0
    if "--deliveries" in argv:
        run_deliveries(settings)
        return 0
    processes = settings.worker_concurrency + settings.delivery_concurrency
    if settings.worker_process_connections * processes > settings.worker_redis_connections:
        log.warning(
            "WORKER_REDIS_CONNECTIONS is below what this dyno's worker processes need",
            budget=settings.worker_redis_connections,
            holds_up_to=settings.worker_process_connections * processes,
        )
    return run_many(settings.worker_concurrency, settings.delivery_concurrency)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
