"""Run the worker process type: ``python -m workers``.

Starts ``WORKER_CONCURRENCY`` (default 1) RQ SimpleWorkers for events, each
with its housekeeper thread, and ``DELIVERY_CONCURRENCY`` (default 1) delivery
processes for outbound webhooks (workers/delivery_runner.py): a receiver that
takes its full 10 s never holds up events.

SimpleWorker runs jobs in its own process instead of forking one per job:
our jobs take a millisecond, a fork takes far longer, and a SIGTERM (Heroku's
daily restart) then lets the job in hand finish before the worker exits
instead of killing it half-way.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import redis
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from workers import jobs
from workers.delivery_runner import run_process as run_deliveries
from workers.engine import Engine
from workers.history.archiver import start_archiver
from workers.housekeeper import Housekeeper
from workers.jobs import events_queue
from workers.observability import configure_logging, get_logger
from workers.settings import ConfigError, Settings
from workers.store import Store, open_redis

log = get_logger("callstate.worker")

# RQ's maintenance (its own registry cleanup) runs this often; our reaper is
# what makes recovery fast, RQ's cleanup only tidies up after it.
MAINTENANCE_INTERVAL = 60


SHUTDOWN_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def main_thread_gets_signals() -> Iterator[None]:
    """Start helper threads inside this: they inherit a mask that blocks SIGTERM/SIGINT.

    The kernel hands a process-directed signal to any thread that does not
    block it, but Python runs handlers only in the main thread, and only
    between bytecodes: a SIGTERM taken by the housekeeper or RQ's pubsub thread
    left the main thread asleep in BLMOVE (up to RQ's ~400 s dequeue timeout),
    so the worker ignored a restart until SIGKILL. Blocked in every other
    thread, the signal always interrupts the main thread. Signals arriving while
    blocked here stay pending and are delivered when the old mask returns.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_asked_at = time.monotonic()
        jobs.stopping.set()  # a drain session in hand stops waiting for more
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def request_force_stop(self, signum: int, frame: FrameType | None) -> None:
        # Heroku signals every process of the dyno and our supervisor passes
        # the signal on too, so one SIGTERM can arrive twice; only a second
        # request well after the first means "stop now" (RQ's cold shutdown).
        asked = self.stop_asked_at
        if signum == signal.SIGTERM and asked is not None and time.monotonic() - asked < 2.0:
            return
        super().request_force_stop(signum, frame)


def run_one(settings: Settings, role: str = "events") -> None:
    """Run one SimpleWorker until SIGTERM, waiting out Redis outages.

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
        on_retry=lambda exc: log.warning("redis unavailable, retrying", error=str(exc)),
    )
    client = connections.queues
    store = Store(
        connections.state, retention_seconds=settings.retention_seconds, queues=client
    )
    engine = Engine(store, settings)
    # Drain jobs find this engine through their RQ connection.
    jobs.register_engine(client, engine)
    if role == "events":
        # Call history (DATABASE_URL): a thread of its own, so a slow or absent
        # database never holds up events. It dies with the process; an
        # unfinished transaction is rolled back and redone from the cursor.
        with main_thread_gets_signals():
            start_archiver(store, settings)
    while True:
        worker = None
        try:
            if role == "events":
                for warning in store.server_warnings():
                    log.warning("redis configuration puts events at risk", problem=warning)
                for warning in store.connection_warnings(settings.formation_connections()):
                    log.warning("redis connection budget", problem=warning)
            queue = events_queue(client)
            worker = EngineWorker(
                [queue],
                connection=client,
                serializer=JSONSerializer,
                maintenance_interval=MAINTENANCE_INTERVAL,
            )
            housekeeper = Housekeeper(engine, queue, worker.name) if role == "events" else None
            if housekeeper is not None:
                with main_thread_gets_signals():
                    housekeeper.start()
            try:
                worker.work(with_scheduler=False, logging_level="WARNING")
            finally:
                if housekeeper is not None:
                    housekeeper.stop()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("redis unavailable, retrying", error=str(exc))
        if worker is not None and worker.stop_asked_at is not None:
            return
        time.sleep(1.0)


def run_many(events: int, deliveries: int) -> int:
    """Supervise the single workers; pass SIGTERM/SIGINT on to them."""
    roles = ["--events"] * events + ["--deliveries"] * deliveries
    children = [subprocess.Popen([sys.executable, "-m", "workers", role]) for role in roles]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


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
    configure_logging()
    try:
        settings = Settings.from_env()
        if not {"--events", "--deliveries"} & set(argv):
            check_redis(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if "--events" in argv:
        run_one(settings, "events")
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
