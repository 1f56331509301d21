"""Run the web process type: ``python -m app.web.serve`` (the Procfile's ``web``).

granian (a Rust HTTP server) serves the Flask app through its WSGI interface:
``WEB_CONCURRENCY`` processes, each running the app in ``WEB_THREADS`` Python
threads while Rust reads and writes the sockets. Measured against gunicorn's
gthread workers on the same machine (docs/performance.md), it answers the same
app several times faster and far more steadily.

What the process keeps from its gunicorn days, and how:

* Server-Sent Events: a generator response is sent chunk by chunk from the
  thread that runs it; when the client goes away granian stops iterating and
  closes the response, which releases the stream's slot (app/outcomes/stream.py).
* Prometheus multiprocess metrics: the directory is emptied here, before the
  worker processes start (what gunicorn's ``on_starting`` hook did).
* The access log: one JSON line a request with the webhook token redacted
  (app/web/access_log.py); granian's own lines are JSON too.
* Slow clients (slowloris): granian's admission limit (``backpressure``)
  counts open connections, not requests, so it is set well above the thread
  count (``CONNECTIONS_PER_PROCESS``): a few hundred idle or dribbling
  connections do not lock honest senders out. Headers must arrive within
  ``HEADER_READ_SECONDS`` (hyper closes the connection otherwise), and a
  body within ``app.intake.fast_path.BODY_SECONDS`` on a reader thread, so no
  slow client holds one of the app's threads.
* SIGTERM: granian stops accepting, lets requests in flight finish and stops
  a worker that is still busy (an open stream) after ``GRACEFUL_SECONDS``,
  inside the platform's 30 s. A server process still loading the app when
  SIGTERM comes simply ends, and one that gets several stop signals passes
  granian only the first (``prepare_server_process``).
"""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import signal
import sys
from typing import Any

from granian.http import HTTP1Settings

from app.web.access_log import AccessLog, WsgiApp
from core.gc_pauses import freeze_start_up_objects
from core.settings import ConfigError, Settings

DEFAULT_FACTORY = "app:create_app"
_FACTORY = "CALLSTATE_WSGI_FACTORY"
# Heroku sends SIGKILL 30 s after SIGTERM.
GRACEFUL_SECONDS = 25
# A sender's request line and headers (one packet for PrimeVOX) must all be in
# within this; hyper's default is 30 s.
HEADER_READ_SECONDS = 10
# Connections one server process holds open at once (granian's backpressure
# permits are held per connection, idle keep-alive included); more wait in
# the listen backlog. Each costs a socket and a little Rust memory; requests
# beyond WEB_THREADS wait for a thread inside the server.
CONNECTIONS_PER_PROCESS = 512
# Server threads beyond WEB_THREADS: each waits (at most BODY_SECONDS) for a
# body still arriving, without running the app; as many as app.intake.fast_path
# has BODY_READERS (not imported: this process must not load the app).
BODY_WAITERS = 64


class QuietThreadCount(logging.Filter):
    """Drop granian's start-up warning that its thread count "seems quite high".

    The count is deliberate: WEB_THREADS app threads for readers and as many for
    webhooks, plus BODY_WAITERS, most of them waiting on sockets or Redis with
    the GIL released (app.intake.fast_path); the warning repeated at every
    start would only teach operators to ignore warnings.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "seems quite high" not in record.getMessage()


def log_config() -> dict[str, Any]:
    """logging.dictConfig for granian's own logger and its access logger."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {"()": "core.observability.JsonFormatter"},
        },
        "filters": {"thread_count": {"()": "app.web.serve.QuietThreadCount"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["thread_count"],
                "stream": "ext://sys.stdout",
            },
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }


def wsgi_app() -> WsgiApp:
    """What each server process serves: the app (``create_app``, or the factory
    ``python -m app.web.serve`` was given) behind the access log (ACCESS_LOG)."""
    module, _, name = os.environ.get(_FACTORY, DEFAULT_FACTORY).partition(":")
    factory = getattr(importlib.import_module(module), name)
    app: WsgiApp = factory()
    access_log = Settings.from_env().access_log
    if access_log != "off":
        app = AccessLog(app, lowest_status=400 if access_log == "errors" else 0)
    freeze_start_up_objects()  # built once: spare full collections the walk
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """granian's settings (PORT, WEB_CONCURRENCY, WEB_THREADS)."""
    threads = settings.web_threads
    return {
        "target": "app.web.serve:wsgi_app",
        "factory": True,
        "interface": "wsgi",
        "address": "0.0.0.0",
        "port": settings.port,
        "workers": settings.web_concurrency,
        # The app's threads: a request (or an open stream) holds one while the app
        # works. app.intake.fast_path admits WEB_THREADS webhooks and WEB_THREADS
        # readers at once, each on slots of their own, so readers never take
        # intake's threads; the rest wait for bodies still arriving, so slow
        # senders never take the app's threads either.
        "blocking_threads": 2 * threads + BODY_WAITERS,
        # Connections a process holds at once (see the module's docstring): far
        # more than threads, so slow or idle clients cannot fill them.
        "backpressure": max(CONNECTIONS_PER_PROCESS, threads),
        "http": "1",
        "http1_settings": HTTP1Settings(header_read_timeout=HEADER_READ_SECONDS * 1000),
        "websockets": False,
        # app.web.access_log writes the access log (cheaper, and redacted).
        "log_access": False,
        "log_dictconfig": log_config(),
        "workers_kill_timeout": GRACEFUL_SECONDS,
        "respawn_failed_workers": True,
    }


def default_stop_signals_until_granian_handles_them() -> None:
    """Let SIGTERM and SIGINT end a new server process until granian installs
    its own handlers.

    granian forks its server processes, and a fork keeps the main process's
    Python handlers. A SIGTERM that reached a server process while it loaded the
    app (a second or more) ran the main process's handler, which only set a flag
    in the child's copy of the main process's state: the signal was lost, and
    the process, once loaded, waited for it until the main process killed it
    ``GRACEFUL_SECONDS`` later (tests/integration/test_web_shutdown.py). Such a
    process serves nothing yet, so ending it at once loses nothing.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def first_stop_signal_only() -> Any:
    """granian's ``set_sync_signals`` for a WSGI server process, passing on only
    the first stop signal.

    granian's handler calls ``WorkerSignal.set()``, a send on a channel of one
    slot that blocks while the slot is full, holding the GIL: every thread of
    the process stops. A stop sends two SIGTERMs at once (the platform's to the
    process group, and granian's main process's to each server process), so a
    second signal before the server took the first, or a third later, could
    freeze the process (tests/app/web/test_stop_signals.py shows the freeze)
    until the main process killed it. One ``set()`` is all a stop needs.
    """
    from granian._granian import WorkerSignal
    from granian._signals import set_main_signals

    stop = WorkerSignal()
    # next() on a count is one step, so even a signal landing inside this
    # handler cannot make a second set(); a lock could deadlock the handler.
    signals_seen = itertools.count()

    def on_stop_signal(signum: int, frame: object) -> None:
        if next(signals_seen) == 0:
            stop.set()

    set_main_signals(on_stop_signal)  # type: ignore[no-untyped-call]
    return stop


def prepare_server_process() -> None:
    """Run in every process granian's main process forks (its server processes)."""
    import granian._signals

    default_stop_signals_until_granian_handles_them()
    # granian's WSGI server process looks the function up on the module when it
    # starts (granian/server/mp.py), after this runs.
    granian._signals.set_sync_signals = first_stop_signal_only


def clean_metrics_directory(directory: str | None) -> None:
    """Empty PROMETHEUS_MULTIPROC_DIR: prometheus-client needs a clean one per run."""
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


def check_redis_layout(settings: Settings) -> str | None:
    """What makes the Redis layout unusable (a Redis Cluster without
    RQ_REDIS_URL), before any server process starts: each would fail the same
    way, and be started again, for ever. None if nothing does; a Redis that does
    not answer is not checked (each process waits for it)."""
    import redis

    from core.store import open_redis

    try:
        connections = open_redis(settings, wait_seconds=0)
    except ConfigError as exc:
        return str(exc)
    except redis.RedisError:
        return None
    connections.state.close()
    connections.queues.close()
    return None


def main(argv: list[str]) -> int:
    """Serve ``argv[0]`` (a WSGI app factory, default ``app:create_app``) until SIGTERM."""
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not argv or argv[0] == DEFAULT_FACTORY:
        problem = check_redis_layout(settings)
        if problem is not None:
            print(f"configuration error: {problem}", file=sys.stderr)
            return 2
    for warning in settings.short_secret_warnings():
        print(f"configuration warning: {warning}", file=sys.stderr)
    if argv:
        os.environ[_FACTORY] = argv[0]  # the server's processes are forks: they see it
    options = server_options(settings)
    options["interface"] = Interfaces.WSGI
    options["http"] = HTTPModes.http1
    clean_metrics_directory(settings.metrics_directory)
    os.register_at_fork(after_in_child=prepare_server_process)
    Granian(**options).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
