"""Real processes for the integration tests: redis-server, the Procfile's web and worker.

The Procfile's processes are started and stopped by devtools.service, the
launcher of ``bin/start`` and the benchmarks too; beyond it only the standard
library and redis-py are used: HTTP goes through ``urllib.request``.

Over 400 lines on purpose: the one kit every real-process test imports, in
sections (waiting, HTTP, event streams, the launcher, Redis reads).
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlencode

import redis

from devtools.redis_server import RedisServer as SharedRedisServer
from devtools.service import (
    ServiceProcess,
    procfile_env,
    start_procfile_process,
    stop_all,
    wait_healthy,
)
from devtools.service import free_port as free_port
from devtools.service import procfile_commands as procfile_commands
from devtools.service import tail as tail
from workers.shutdown import FORCED_EXIT_MESSAGE

REPO = Path(__file__).resolve().parents[2]
PROCFILE = REPO / "Procfile"
# One Procfile process, in its own process group, logging to files.
Proc = ServiceProcess
EVENTS_QUEUE = "callstate-events"
EVENTS_QUEUE_KEY = f"rq:queue:{EVENTS_QUEUE}"
INTERMEDIATE_KEY = f"{EVENTS_QUEUE_KEY}:intermediate"
STARTED_REGISTRY_KEY = f"rq:wip:{EVENTS_QUEUE}"

# Credentials every service started by the harness knows.
TOKEN_ALL = "tok-all-tenants"
TENANT_A = "tenant-a"
TENANT_B = "tenant-b"
TOKEN_A = "tok-tenant-a"
TOKEN_B = "tok-tenant-b"
ADMIN_KEY = "key-admin"
KEY_A = "key-tenant-a"
KEY_B = "key-tenant-b"

T = TypeVar("T")


# -- test tools of other directories ------------------------------------------


def load_webhook_kit(name: str = "webhooks") -> ModuleType:
    """tests/kit/webhooks.py (receiver, verifier), or another module of the kit
    (notification_shapes)."""
    return importlib.import_module(f"tests.kit.{name}")


# -- waiting ------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.05,
    detail: Callable[[], object] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that.

    Fails with an AssertionError naming ``what`` (and ``detail()``, or the last
    value seen) when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = predicate()
        if last:
            return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            shown = detail() if detail is not None else last
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}; last: {shown!r}"
            )
        time.sleep(interval)


# -- redis-server ---------------------------------------------------------------


class RedisServer(SharedRedisServer):
    """A private redis-server on a loopback port, no persistence, its log kept."""

    def __init__(self, binary: str, directory: Path) -> None:
        super().__init__(directory, durable=False, binary=binary)


@dataclass
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]  # http.client's: names are case-insensitive

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Api:
    """HTTP to one web process: webhook posts and reads with a Bearer key."""

    base_url: str
    token: str = TOKEN_ALL
    api_key: str = ADMIN_KEY

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Response:
        req = urllib.request.Request(
            self.base_url + path, data=body, method=method, headers=dict(headers or {})
        )
        try:
            with _OPENER.open(req, timeout=timeout) as answer:
                return Response(answer.status, answer.read(), answer.headers)
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.read(), exc.headers)

    def post_event(
        self, fields: Mapping[str, str], *, as_json: bool | None = None, token: str | None = None
    ) -> Response:
        """POST one PrimeVOX event; SMS events go as JSON, the rest form-encoded (as the PBX)."""
        if as_json is None:
            as_json = fields.get("eventType", "").endswith("Message")
        if as_json:
            body = json.dumps(dict(fields)).encode("utf-8")
            content_type = "application/json"
        else:
            body = urlencode(dict(fields)).encode("utf-8")
            content_type = "application/x-www-form-urlencoded"
        return self.request(
            "POST",
            f"/webhooks/primevox/{token or self.token}",
            body,
            {"Content-Type": content_type},
        )

    def accept(self, fields: Mapping[str, str], **options: Any) -> dict[str, Any]:
        """POST an event that must be accepted; returns the 202 body."""
        answer = self.post_event(fields, **options)
        assert answer.status == 202, f"{fields.get('eventType')}: {answer.status} {answer.text}"
        body: dict[str, Any] = answer.json()
        return body

    def get(self, path: str, key: str | None = None) -> Response:
        return self.request("GET", path, headers={"Authorization": f"Bearer {key or self.api_key}"})

    def get_json(self, path: str, key: str | None = None, expect: int = 200) -> Any:
        answer = self.get(path, key)
        assert answer.status == expect, f"GET {path}: {answer.status} {answer.text}"
        return answer.json()

    def call(self, call_uuid: str, key: str | None = None) -> dict[str, Any] | None:
        """GET /v1/calls/<uuid>, or None while it is unknown (404)."""
        answer = self.get(f"/v1/calls/{call_uuid}", key)
        if answer.status == 404:
            return None
        assert answer.status == 200, f"GET call {call_uuid}: {answer.status} {answer.text}"
        found: dict[str, Any] = answer.json()
        return found

    def live(self, key: str | None = None, query: str = "") -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.get_json(f"/v1/calls/live{query}", key)["calls"]
        return calls

    def outcomes(self, key: str | None = None, query: str = "") -> list[dict[str, Any]]:
        """Every outcome record the key sees, following ``next`` to the end."""
        records: list[dict[str, Any]] = []
        after = ""
        while True:
            sep = "&" if query else ""
            page = self.get_json(f"/v1/outcomes?limit=1000{sep}{query}{after}", key)
            records += page["outcomes"]
            if not page["next"]:
                return records
            after = f"&after={page['next']}"

    def metric(self, name: str) -> float | None:
        """One unlabelled sample of GET /metrics, or None if absent."""
        answer = self.request("GET", "/metrics")
        assert answer.status == 200, f"GET /metrics: {answer.status}"
        for line in answer.text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        return None

    def metric_samples(self, name: str) -> dict[str, float]:
        """The samples of one labelled metric of GET /metrics: ``label value -> value``."""
        answer = self.request("GET", "/metrics")
        assert answer.status == 200, f"GET /metrics: {answer.status}"
        samples: dict[str, float] = {}
        for line in answer.text.splitlines():
            match = re.match(rf'^{re.escape(name)}\{{\w+="([^"]*)"\}} (\S+)$', line)
            if match:
                samples[match.group(1)] = float(match.group(2))
        return samples

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/healthz", timeout=2).status == 200
        except OSError:
            return False


def post_all(
    api: Api, bodies: Iterable[Mapping[str, str]], threads: int = 8
) -> list[tuple[Mapping[str, str], Response]]:
    """POST every body from a thread pool; returns (body, answer) in the given order."""
    items = list(bodies)
    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(api.post_event, items))
    return list(zip(items, answers, strict=True))


def post_calls(
    api: Api, calls: Iterable[Iterable[Mapping[str, str]]], threads: int = 8
) -> list[Response]:
    """POST several calls at once from ``threads`` threads, each call's events in order;
    returns every answer (call by call, event by event)."""

    def post(events: Iterable[Mapping[str, str]]) -> list[Response]:
        return [api.post_event(fields) for fields in events]

    with ThreadPoolExecutor(threads) as pool:
        return [answer for answers in pool.map(post, calls) for answer in answers]


def accept_calls(
    api: Api, calls: Iterable[Iterable[Mapping[str, str]]], threads: int = 8
) -> None:
    """post_calls, every event of which must be accepted (202)."""
    refused = [a for a in post_calls(api, calls, threads) if a.status != 202]
    assert not refused, f"{len(refused)} events refused, e.g. {refused[0].status} {refused[0].text}"


def subscribe(api: Api, key: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST /v1/subscriptions with ``body`` under ``key``; the answer (201 asserted)."""
    answer = api.request(
        "POST",
        "/v1/subscriptions",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert answer.status == 201, answer.text
    made: dict[str, Any] = answer.json()
    return made


def post_at_once(api: Api, bodies: list[Mapping[str, str]]) -> list[Response]:
    """POST each body from its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(bodies))
    answers: list[Response | None] = [None] * len(bodies)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = api.post_event(bodies[index])

    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert all(a is not None for a in answers), "a posting thread did not finish"
    return [a for a in answers if a is not None]


# -- event streams --------------------------------------------------------------


class SseClient:
    """One open event stream (GET /v1/outcomes/stream by default), read by a
    background thread as an EventSource would; it notes when each line came."""

    def __init__(
        self,
        port: int,
        key: str = ADMIN_KEY,
        last_event_id: str | None = None,
        query: str = "",
        path: str = "/v1/outcomes/stream",
    ) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.asked_at = time.monotonic()
        self.conn.request("GET", path + query, headers=headers)
        self.sock = self.conn.sock
        self.response = self.conn.getresponse()
        self.status = self.response.status
        # Header names are case-insensitive (some servers send them in lower case).
        self.headers = self.response.headers
        self.lock = threading.Lock()
        self.events: list[dict[str, str]] = []
        self.lines: list[tuple[float, str]] = []  # (time.monotonic(), line) of each line read
        self.ended = threading.Event()
        self.ended_at = 0.0  # time.monotonic() when the server closed the stream
        self.thread = threading.Thread(target=self._read, daemon=True)
        if self.status == 200:
            self.thread.start()
        else:
            self.body = self.response.read()
            self.close()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    return
                line = raw.decode("utf-8").rstrip("\r\n")
                with self.lock:
                    self.lines.append((time.monotonic(), line))
                if not line:
                    if "data" in fields:
                        with self.lock:
                            self.events.append(fields)
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except (OSError, ValueError, http.client.HTTPException):
            return
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()

    def records(self) -> list[dict[str, Any]]:
        with self.lock:
            events = list(self.events)
        out = []
        for event in events:
            assert event["event"] == "outcome", event
            record: dict[str, Any] = json.loads(event["data"])
            assert event["id"] == record["id"], event
            out.append(record)
        return out

    def wait_records(self, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            records = self.records()
            return records if len(records) >= count else None

        return wait_until(
            enough,
            timeout,
            f"{count} records on the stream",
            detail=lambda: len(self.records()),
        )

    def close(self) -> None:
        """Hang up, as a client going away does (the reader thread ends first)."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        if self.thread.is_alive():
            self.thread.join(5)
        self.conn.close()


def open_streams(
    port: int, wanted: int, tries: int = 300, path: str = "/v1/outcomes/stream"
) -> tuple[list[SseClient], int]:
    """Open ``wanted`` streams, retrying those a full web process refuses; (streams, refusals)."""
    streams: list[SseClient] = []
    refused = 0
    for _ in range(tries):
        if len(streams) == wanted:
            break
        client = SseClient(port, path=path)
        if client.status == 200:
            streams.append(client)
        else:
            assert client.status == 503, (client.status, client.body)
            refused += 1
    return streams, refused


# -- the launcher -----------------------------------------------------------------


@dataclass
class Launcher:
    """Starts the Procfile's processes against one Redis and stops them all at the end."""

    redis_url: str
    directory: Path
    redis_client: redis.Redis  # call state: a cluster client when redis_url is a cluster
    # RQ's own Redis (RQ_REDIS_URL) when call state is on a cluster; None: redis_url.
    rq_url: str | None = None
    rq_client: redis.Redis | None = None
    port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    env_overrides: dict[str, str] = field(default_factory=dict)
    # A test that means a process to be ended by its stop watchdog says so here.
    forced_exit_expected: bool = False
    _count: int = 0

    def env(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PROMETHEUS_", "WORKER_", "WEB_", "CALL_", "OUTCOME_", "PENDING_"))
        }
        env.update(
            PYTHONUNBUFFERED="1",
            PORT=str(self.port),
            REDIS_URL=self.redis_url,
            **({"RQ_REDIS_URL": self.rq_url} if self.rq_url else {}),
            WEBHOOK_TOKENS=f"{TOKEN_ALL}:*,{TOKEN_A}:{TENANT_A},{TOKEN_B}:{TENANT_B}",
            API_KEYS=f"{ADMIN_KEY}:*,{KEY_A}:{TENANT_A},{KEY_B}:{TENANT_B}",
            OUTCOME_GRACE_SECONDS="1",
            PENDING_CHECK_SECONDS="1",
            WEB_CONCURRENCY="2",
            PROMETHEUS_MULTIPROC_DIR=str(self.directory / "metrics"),
            # A private runtime directory: nothing a server keeps there is shared between tests.
            XDG_RUNTIME_DIR=str(self.directory),
        )
        env.update(self.env_overrides)
        env.update(overrides or {})
        return procfile_env(base=env)

    def start(self, kind: str, overrides: Mapping[str, str] | None = None) -> Proc:
        """Run the Procfile's ``kind`` command line via ``bash -c`` in a new session."""
        self._count += 1
        name = f"{kind}.{self._count}"
        proc = start_procfile_process(
            kind,
            name,
            self.env(overrides),
            cwd=REPO,
            procfile=PROCFILE,
            stdout_path=self.directory / f"{name}.out",
            stderr_path=self.directory / f"{name}.err",
        )
        self.procs.append(proc)
        return proc

    # web ----------------------------------------------------------------------

    @property
    def api(self) -> Api:
        return Api(f"http://127.0.0.1:{self.port}")

    def start_web(self, **overrides: str) -> Proc:
        proc = self.start("web", overrides)
        self.wait_web(proc)
        return proc

    def wait_web(self, proc: Proc, timeout: float = 30.0) -> None:
        wait_healthy(self.api.base_url, proc, timeout)

    # workers --------------------------------------------------------------------

    @property
    def queues(self) -> redis.Redis:
        """The Redis of RQ's queues and registries."""
        return self.rq_client if self.rq_client is not None else self.redis_client

    def rq_workers(self) -> dict[str, tuple[int, str]]:
        """Registered, not dead RQ workers: name -> (pid, queues it listens to)."""
        found: dict[str, tuple[int, str]] = {}
        for key in self.queues.scan_iter(match="rq:worker:*", count=1000):
            name = key.decode()
            if name.count(":") != 2:
                continue
            pid, death, queues = self.queues.hmget(key, ["pid", "death", "queues"])
            if pid is not None and death is None:
                found[name.rsplit(":", 1)[1]] = (int(pid), (queues or b"").decode())
        return found

    def workers_of(self, proc: Proc, queue: str | None = None) -> list[str]:
        """Names of the RQ workers running in ``proc``'s process group (listening to ``queue``)."""
        names = []
        for name, (pid, queues) in self.rq_workers().items():
            if queue is not None and queue not in queues.split(","):
                continue
            try:
                if os.getpgid(pid) == proc.pid:
                    names.append(name)
            except ProcessLookupError:
                continue
        return names

    def held_jobs(self, proc: Proc) -> dict[str, list[str]]:
        """RQ jobs ``proc``'s workers hold: ``started`` (running) and ``in transit``
        (moved off the queue, not started: only meaningful with one worker)."""
        names = set(self.workers_of(proc))
        held: dict[str, list[str]] = {"started": [], "in transit": []}
        for member in self.queues.zrange(STARTED_REGISTRY_KEY, 0, -1):
            job_id = member.decode().rsplit(":", 1)[0]
            status, worker = self.queues.hmget(f"rq:job:{job_id}", ["status", "worker_name"])
            if status == b"started" and worker is not None and worker.decode() in names:
                held["started"].append(job_id)
        held["in transit"] = [j.decode() for j in self.queues.lrange(INTERMEDIATE_KEY, 0, -1)]
        return held

    def kill_holding_a_job(
        self,
        proc: Proc,
        tenant: str,
        how: str = "started",
        signum: int = signal.SIGKILL,
        timeout: float = 20.0,
    ) -> list[str]:
        """Signal ``proc``'s group (SIGKILL by default) at a moment it holds a job
        ``how`` (see held_jobs) while ``tenant`` has events accepted and not
        applied; returns the jobs it held.

        Freezes the group (SIGSTOP), looks in Redis, and signals it if so;
        otherwise lets it run (SIGCONT) a moment and looks again. The moment
        grows from 1 ms to 50 ms: frozen between every look and thawed for 1 ms
        only, a group on a busy machine never ran long enough to take a job.
        """
        deadline = time.monotonic() + timeout
        moment = 0.001
        while time.monotonic() < deadline:
            proc.signal_group(signal.SIGSTOP)
            held = self.held_jobs(proc)[how]
            if held and self.pending(tenant) > 0:
                if signum == signal.SIGKILL:
                    proc.kill9()
                else:
                    proc.signal_group(signum)
                    proc.signal_group(signal.SIGCONT)
                return held
            proc.signal_group(signal.SIGCONT)
            time.sleep(moment)
            moment = min(moment * 1.5, 0.05)
        proc.signal_group(signal.SIGCONT)
        raise AssertionError(f"{proc.name} never held a job ({how}) while events were pending")

    def start_worker(self, concurrency: int = 1, **overrides: str) -> Proc:
        """One Procfile ``worker`` process of ``concurrency`` RQ workers; waits until all listen."""
        proc = self.start("worker", {"WORKER_CONCURRENCY": str(concurrency), **overrides})
        self.wait_workers(proc, concurrency)
        return proc

    def start_workers(self, count: int, **overrides: str) -> list[Proc]:
        """``count`` separate worker processes (each its own ``python -m workers``)."""
        env = {"WORKER_CONCURRENCY": "1", **overrides}
        procs = [self.start("worker", env) for _ in range(count)]
        for proc in procs:
            self.wait_workers(proc, 1)
        return procs

    def wait_workers(self, proc: Proc, count: int, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if not proc.running():
                raise AssertionError(f"worker exited while starting:\n{proc.tails()}")
            return len(self.workers_of(proc, EVENTS_QUEUE)) >= count

        wait_until(ready, timeout, f"{count} events worker(s) of {proc.name} to register",
                   interval=0.1, detail=proc.tails)

    def start_service(self, workers: int = 1, **overrides: str) -> Api:
        """web plus one ``worker`` process running ``workers`` RQ workers, all ready."""
        web = self.start("web", overrides)
        worker = self.start("worker", {"WORKER_CONCURRENCY": str(workers), **overrides})
        self.wait_web(web)
        self.wait_workers(worker, workers)
        return self.api

    # teardown and reporting -----------------------------------------------------------

    def stop_all(self, grace: float = 10.0) -> list[str]:
        """SIGTERM every process group at once, SIGKILL what is left after ``grace``
        seconds; returns the names of those that had to be killed."""
        return [p.name for p in stop_all(self.procs, grace)]

    def forced_exits(self) -> list[str]:
        """Processes whose stop watchdog ended them (workers/shutdown.py)."""
        return [p.name for p in self.procs if FORCED_EXIT_MESSAGE in p.output()]

    def slow_stops(self) -> str:
        """Where each process that outlived SIGTERM by SLOW_STOP_SECONDS stood then."""
        return "\n".join(
            f"--- {p.name}\n{p.slow_stop_report}" for p in self.procs if p.slow_stop_report
        )

    def tails(self) -> str:
        return "\n".join(proc.tails() for proc in self.procs)

    def crashed(self) -> list[Proc]:
        """Processes that exited on their own (not killed by a test)."""
        return [p for p in self.procs if not p.killed and not p.running()]

    # redis reads ------------------------------------------------------------------

    def _tags(self, tenant: str) -> list[str]:
        """The hash tags of a tenant's keys: ``{t:<tenant>}`` on one Redis, and one
        ``{t:<tenant>:<p>}`` per partition on a cluster."""
        return [f"cs:{{t:{tenant}}}", *(f"cs:{{t:{tenant}:{p}}}" for p in range(8))]

    def pending(self, tenant: str) -> int:
        """Events of ``tenant`` accepted and not yet applied: the members of its
        pending sorted set(s) (``cs:{t:<tenant>}:pending``, or one per partition)."""
        total = 0
        for tag in self._tags(tenant):
            for key in self.redis_client.scan_iter(match=f"{tag}:pending*", count=1000):
                if self.redis_client.type(key) == b"zset":
                    total += int(self.redis_client.zcard(key))
        return total

    def timers(self, tenant: str) -> int:
        return sum(int(self.redis_client.zcard(f"{tag}:timers")) for tag in self._tags(tenant))

    def queued(self) -> int:
        return int(self.queues.llen(EVENTS_QUEUE_KEY))

    def quiet(self, tenant: str) -> bool:
        """Nothing left to happen for ``tenant``: no pending event, no timer, no queued job."""
        return self.pending(tenant) == 0 and self.timers(tenant) == 0 and self.queued() == 0
