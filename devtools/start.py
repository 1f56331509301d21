"""Start the whole service on a developer's machine: ``bin/start`` runs this.

Redis, in order of preference:
  1. ``REDIS_URL`` if set;
  2. a Redis already answering on 127.0.0.1:6379;
  3. a redis-server started here (if one is installed), on a free port, with
     its data in ``.dev-redis/`` (AOF on, so a restart keeps your calls);
  4. an embedded in-process stand-in (fakeredis): web and worker (events,
     timers and outbound webhooks alike) then run in this one process, and
     NOTHING IS KEPT when it stops.

Call history goes to ``DATABASE_URL`` if set (a local PostgreSQL, say), else
to a SQLite file, ``.dev-history.sqlite3``, kept between runs; its tables are
migrated before anything starts, as the Procfile's ``release`` does on a deploy.

``--demo`` keeps its data apart: a Redis of its own (a redis-server started
here with nothing kept on disk, else the embedded stand-in; never REDIS_URL or
the Redis on 6379) and a history file of its own (``.dev-demo-history.sqlite3``),
both emptied at start, so a restarted demo shows no call from before.

Web and worker run from the Procfile (devtools.service), like on Heroku, and the
demo's simulator beside them: each in a process group of its own, its output
shown here behind its name. Ctrl-C, SIGTERM to this launcher, or one of them
stopping, stops them all (SIGTERM, SIGKILL after 10 s). Tokens and keys are
made up once and kept in ``.callstate-dev.env`` so the webhook URL stays the
same between runs (unless both WEBHOOK_TOKENS and API_KEYS are set in the
environment: then those are used and no file is written); where this run's
Redis and history are goes to ``.callstate-run.env``, which ``bin/flask``
reads, so the project's commands see what ``bin/start`` runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from types import FrameType

import redis

from devtools.redis_server import RedisServer
from devtools.service import (
    ROOT,
    ServiceError,
    ServiceProcess,
    free_port,
    procfile_env,
    start_process,
    start_procfile_process,
    stop_all,
)

DEV_ENV = ROOT / ".callstate-dev.env"
RUN_ENV = ROOT / ".callstate-run.env"
DEV_REDIS_DIR = ROOT / ".dev-redis"
DEV_HISTORY = ROOT / ".dev-history.sqlite3"
DEMO_REDIS_DIR = ROOT / ".dev-demo-redis"
DEMO_HISTORY = ROOT / ".dev-demo-history.sqlite3"
# The demo's simulated calls go to this tenant (the simulator's default).
DEMO_TENANT = "acme"


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _dev_secrets() -> dict[str, str]:
    """Tokens and keys for this checkout: the environment's if it sets both, else
    read from .callstate-dev.env, made once."""
    given = {k: os.environ[k] for k in ("WEBHOOK_TOKENS", "API_KEYS") if os.environ.get(k)}
    if len(given) == 2:
        return given
    values: dict[str, str] = {}
    if DEV_ENV.exists():
        for line in DEV_ENV.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep:
                values[name.strip()] = value.strip()
    if "WEBHOOK_TOKENS" not in values or "API_KEYS" not in values:
        values["WEBHOOK_TOKENS"] = f"whk_{secrets.token_urlsafe(18)}:*"
        values["API_KEYS"] = f"key_{secrets.token_urlsafe(18)}:*"
        DEV_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        DEV_ENV.chmod(0o600)
    return {**values, **given}


def _prepare_history(demo: bool) -> str:
    """DATABASE_URL, or the SQLite file of this checkout (the demo: its own,
    emptied); migrated. Returns the URL."""
    from core.history.database import create_engine, upgrade
    from core.settings import database_url

    if demo:
        for stale in DEMO_HISTORY.parent.glob(DEMO_HISTORY.name + "*"):
            stale.unlink()
        url = f"sqlite:///{DEMO_HISTORY}"
    else:
        url = os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{DEV_HISTORY}"
    engine = create_engine(database_url(url) or url, role="release")
    upgrade(engine)
    engine.dispose()
    return url


def _banner(env: dict[str, str], port: int, mode: str, demo: bool) -> str:
    token = env["WEBHOOK_TOKENS"].split(",")[0].rpartition(":")[0]
    key = env["API_KEYS"].split(",")[0].rpartition(":")[0]
    base = f"http://127.0.0.1:{port}"
    return "\n".join(
        [
            "",
            "callstate is starting" + (" with simulated traffic (--demo)" if demo else ""),
            f"  Listening:    0.0.0.0:{port} (every interface; {base} from this machine)",
            f"  Redis:        {mode}",
            f"  History:      {_history_shown(env['DATABASE_URL'])}",
            f"  Webhook URL:  {base}/webhooks/primevox/{token}",
            f"  API key:      {key}",
            f"  Wallboard:    {base}/wallboard#key={key}",
            "",
            "  In another shell (the README's examples use these):",
            f"    export BASE={base}",
            f"    export WEBHOOK_URL={base}/webhooks/primevox/{token}",
            f"    export API_KEY={key}",
            "    bin/flask --help   # the project's commands, on this run's Redis and history",
            "",
            "  Stop with Ctrl-C.",
            "",
        ]
    )


def _history_shown(url: str) -> str:
    """The history database for the banner, without a password."""
    if url.startswith("sqlite"):
        return f"SQLite file {url.removeprefix('sqlite:///')}"
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _run_embedded(env: dict[str, str], port: int) -> int:
    """Web and worker in this process, on fakeredis: for a machine with no Redis.

    Everything the worker process type does runs here too: the events worker
    (main thread, so SIGTERM/Ctrl-C stop it), its housekeeper thread (timers,
    outcomes, dispatching deliveries) and a delivery runner thread (outbound
    webhooks, apart so a slow receiver never holds up events).
    """
    import fakeredis
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from app import create_app
    from core.queue import events_queue
    from core.settings import Settings
    from core.store import Store
    from workers.archiver import start_archiver
    from workers.deliveries import DeliveryRunner
    from workers.engine import Engine
    from workers.housekeeper import Housekeeper

    os.environ.update(env)
    # Werkzeug's access log would print every webhook URL, token and all.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    settings = Settings.from_env()
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    app = create_app({"REDIS_CLIENT": client, "CALLSTATE_SETTINGS": settings})
    web = threading.Thread(
        target=lambda: app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False),
        daemon=True,
    )
    web.start()
    queue = events_queue(client)
    worker = SimpleWorker([queue], connection=client, serializer=JSONSerializer)
    store = Store(client, retention_seconds=settings.retention_seconds)
    stopping = threading.Event()
    deliveries = threading.Thread(
        target=DeliveryRunner(store, settings).run, args=(stopping,), name="deliveries"
    )
    deliveries.start()
    housekeeper = Housekeeper(Engine(store, settings), queue, worker.name)
    housekeeper.start()
    start_archiver(store, settings)
    try:
        worker.work(with_scheduler=False, logging_level="WARNING")
    finally:
        housekeeper.stop()
        stopping.set()
        deliveries.join(timeout=10)
    return 0


def _start_demo(env: dict[str, str], port: int) -> list[ServiceProcess]:
    """A Slack-shaped receiver (devtools/slack_receiver.py) on a free loopback port,
    printing each message behind the name ``slack``, and the simulator
    (devtools/demo.py), which subscribes that receiver to the demo tenant's missed
    calls and then posts a call or two a second once the web answers: processes of
    their own that this launcher stops with the rest."""
    process_env = procfile_env({**os.environ, **env})
    receiver_port = free_port()
    slack = start_process(
        "slack", [sys.executable, "-m", "devtools.slack_receiver", str(receiver_port)], process_env
    )
    receiver = f"http://127.0.0.1:{receiver_port}/services/demo"
    command = [
        sys.executable, "-m", "devtools.demo", f"http://127.0.0.1:{port}", DEMO_TENANT, receiver
    ]  # fmt: skip
    return [slack, start_process("demo", command, process_env)]


def _port_taken(port: int) -> bool:
    """Something already listens on ``port`` (every interface, as the web will)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def _write_run_env(env: dict[str, str]) -> None:
    """Where this run's Redis and history are, for ``bin/flask``."""
    names = ("REDIS_URL", "DATABASE_URL", "PORT")
    RUN_ENV.write_text("".join(f"{n}={env[n]}\n" for n in names if env.get(n)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5000")))
    parser.add_argument(
        "--embedded", action="store_true", help="use the in-process Redis stand-in (keeps nothing)"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="also post simulated PrimeVOX traffic to it (open /wallboard to watch)",
    )
    args = parser.parse_args(argv)
    if _port_taken(args.port):
        print(
            f"port {args.port} is in use: stop what listens there, or choose another "
            "with PORT=<port> bin/start (or bin/start --port <port>)",
            file=sys.stderr,
        )
        return 2

    env = _dev_secrets()
    env["PORT"] = str(args.port)
    env["DATABASE_URL"] = _prepare_history(args.demo)
    redis_server: RedisServer | None = None
    url = "" if args.demo else os.environ.get("REDIS_URL", "").strip()
    if args.demo:
        env["ACCESS_LOG"] = "errors"  # a quiet terminal: the demo posts several a second
        # The demo's Slack-shaped receiver is on loopback, which the URL guard refuses
        # otherwise: allowed for the demo's own processes only.
        env["SUBSCRIPTION_ALLOW_PRIVATE"] = "1"
    if args.embedded:
        mode = "embedded"
    elif args.demo and shutil.which("redis-server"):
        shutil.rmtree(DEMO_REDIS_DIR, ignore_errors=True)
        DEMO_REDIS_DIR.mkdir()
        redis_server = RedisServer(DEMO_REDIS_DIR, durable=False)
        try:
            redis_server.start()
        except ServiceError as exc:
            raise SystemExit(str(exc)) from None
        url = redis_server.url
        mode = f"the demo's own redis-server ({url}, emptied at start, nothing kept)"
    elif args.demo:
        mode = "embedded"
    elif url:
        mode = f"REDIS_URL ({url.split('@')[-1]})"
    elif _answers("redis://127.0.0.1:6379/0"):
        url, mode = "redis://127.0.0.1:6379/0", "local redis-server at 127.0.0.1:6379"
    elif shutil.which("redis-server"):
        DEV_REDIS_DIR.mkdir(exist_ok=True)
        redis_server = RedisServer(DEV_REDIS_DIR)
        try:
            redis_server.start()
        except ServiceError as exc:
            raise SystemExit(str(exc)) from None
        url = redis_server.url
        mode = f"redis-server started here ({url}, data in .dev-redis/)"
    else:
        mode = "embedded"

    if mode == "embedded":
        print(
            "\n!!! No Redis found (no REDIS_URL, nothing on 127.0.0.1:6379, no redis-server).\n"
            "!!! Running on an EMBEDDED in-process Redis stand-in: web and worker share\n"
            "!!! this one process and NOTHING IS KEPT when it stops. Fine for a try-out only.\n",
            file=sys.stderr,
        )
        print(_banner(env, args.port, "embedded (fakeredis, in memory, not kept)", args.demo))
        RUN_ENV.unlink(missing_ok=True)  # bin/flask cannot reach an in-process Redis
        demo = _start_demo(env, args.port) if args.demo else []
        try:
            return _run_embedded(env, args.port)
        finally:
            stop_all(demo, grace=5)

    env["REDIS_URL"] = url
    _write_run_env(env)
    print(_banner(env, args.port, mode, args.demo), flush=True)
    try:
        return _run_procfile(env, demo=args.demo, port=args.port)
    finally:
        if redis_server is not None:
            redis_server.stop()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_procfile(env: dict[str, str], demo: bool, port: int) -> int:
    """web and worker from the Procfile until Ctrl-C, SIGTERM or one of them stops;
    then both are stopped. Returns the exit status of the one that stopped first."""
    # web and worker only: the Procfile's release (migrations) ran before.
    signal.signal(signal.SIGTERM, _interrupt)
    processes: list[ServiceProcess] = []
    service: list[ServiceProcess] = []
    try:
        service = [
            start_procfile_process(kind, kind, procfile_env(env)) for kind in ("web", "worker")
        ]
        processes = service + (_start_demo(env, port) if demo else [])
        while all(process.running() for process in service):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stopped = [process for process in service if not process.running()]
        stop_all(processes, grace=10)
    return stopped[0].popen.returncode if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
