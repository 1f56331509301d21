"""The limits a Heroku-style platform sets, held by the Procfile's real processes.

- An entry Redis plan allows 20 connections: one web and one worker dyno at
  the defaults hold at most that under load (intake at full speed, every
  stream slot taken, deliveries retrying), counted by Redis itself, with its
  client limit set so that a 21st connection would be refused.
- Past its connection budget a web process waits briefly, then answers 503
  with Retry-After; /readyz warns when Redis accepts fewer clients than the
  budget needs.
- The router wants a first byte within 30 s and gives up on a response idle
  for 55 s: streams send bytes at once and keep-alives well inside that.
- A dyno gets SIGTERM and, 30 s later, SIGKILL: everything stops well within
  that, open streams included, and no accepted event is lost.
- A small dyno has 512 MB: the processes' memory under load stays well under.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from callstate_harness import (
    ADMIN_KEY,
    TENANT_A,
    TENANT_B,
    Api,
    Launcher,
    Proc,
    SseClient,
    post_calls,
    wait_until,
)
from primevox_bodies import EXPECTED, Call, Fields, scenario

from tests.kit.webhooks import Receiver, always

ENTRY_PLAN_CLIENTS = 20
DYNO_MEMORY_MB = 512
LIVE_STREAM = "/v1/calls/live/stream"
# The router's limits, and how far inside them we want to stay.
ROUTER_FIRST_BYTE_SECONDS = 30.0
ROUTER_IDLE_SECONDS = 55.0
SIGKILL_AFTER_SECONDS = 30.0
KINDS = sorted(EXPECTED)


# -- measuring ----------------------------------------------------------------------


def group_pids(leader: int) -> list[int]:
    """Every live process of the process group ``leader`` leads (one dyno's processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == leader:
            found.append(int(entry.name))
    return found


def memory_mb(pid: int) -> float:
    """The process's proportional set size (PSS): its own pages, and its share of
    the pages it shares with others (the web's server processes are forks of
    its main process). Summed over a dyno's processes, each page counts once, as
    the platform's memory limit counts it; RSS summed counts a shared page in
    every process that maps it. RSS where the kernel gives no PSS."""
    for path, field in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
        except OSError:
            continue
    return 0.0


class Sampler(threading.Thread):
    """Samples Redis's connected clients and each dyno's memory (the sum of its
    processes' proportional set sizes: each page once) until stopped."""

    def __init__(self, url: str, procs: list[Proc]) -> None:
        super().__init__(daemon=True)
        self.client = redis.Redis.from_url(url, socket_timeout=5)
        self.procs = procs
        self.peak_clients = 0
        self.peak_mb: dict[str, float] = {proc.name: 0.0 for proc in procs}
        self.stopping = threading.Event()

    def run(self) -> None:
        rounds = 0
        while not self.stopping.is_set():
            clients = int(self.client.info("clients")["connected_clients"])
            self.peak_clients = max(self.peak_clients, clients)
            if rounds % 20 == 0:  # reading /proc costs more than INFO
                for proc in self.procs:
                    total = sum(memory_mb(pid) for pid in group_pids(proc.pid))
                    self.peak_mb[proc.name] = max(self.peak_mb[proc.name], total)
            rounds += 1
            time.sleep(0.005)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)
        self.client.close()


@pytest.fixture
def client_limit(redis_db: redis.Redis) -> Iterator[redis.Redis]:
    """The test Redis, its ``maxclients`` put back afterwards."""
    original = redis_db.config_get("maxclients")["maxclients"]
    try:
        yield redis_db
    finally:
        redis_db.config_set("maxclients", original)


# -- calls ----------------------------------------------------------------------------


def subscribe(api: Api, url: str) -> None:
    answer = api.request(
        "POST",
        "/v1/subscriptions",
        json.dumps({"url": url}).encode(),
        {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert answer.status == 201, answer.text


def realistic_calls(count: int) -> list[list[Fields]]:
    return [
        scenario(KINDS[i % len(KINDS)], Call(TENANT_A if i % 2 else TENANT_B))
        for i in range(count)
    ]


def decided_calls(api: Api) -> set[str]:
    return {record["call_uuid"] for record in api.outcomes()}


def open_mixed_streams(port: int, wanted: int, tries: int = 300) -> list[SseClient]:
    """Open ``wanted`` streams, outcome and live in turn, retrying refusals of a full process."""
    streams: list[SseClient] = []
    for attempt in range(tries):
        if len(streams) == wanted:
            break
        path = LIVE_STREAM if attempt % 2 else "/v1/outcomes/stream"
        stream = SseClient(port, path=path)
        if stream.status == 200:
            streams.append(stream)
        else:
            assert stream.status == 503, (stream.status, stream.body)
    assert len(streams) == wanted, f"opened {len(streams)} of {wanted} streams"
    return streams


# -- the connection budget --------------------------------------------------------------


def test_one_web_and_one_worker_hold_at_most_20_redis_connections_under_load(
    launcher: Launcher, client_limit: redis.Redis
) -> None:
    """At the defaults, 32 concurrent posters, every stream slot taken and deliveries
    retrying: Redis never sees more than 20 of our connections, refuses none, and
    every dyno's memory stays well under 512 MB."""
    before = int(client_limit.info("clients")["connected_clients"]) + 1  # + the sampler's
    client_limit.config_set("maxclients", before + ENTRY_PLAN_CLIENTS)
    refused_before = int(client_limit.info("stats")["rejected_connections"])
    streams: list[SseClient] = []
    with Receiver(always(500)) as receiver:
        # One key opens every stream: its tenant's share is the whole process here.
        web = launcher.start(
            "web", {"SUBSCRIPTION_ALLOW_PRIVATE": "1", "MAX_STREAMS_PER_TENANT": "8"}
        )
        worker = launcher.start(
            "worker", {"SUBSCRIPTION_ALLOW_PRIVATE": "1", "DELIVERY_RETRY_SECONDS": "1,1,1,1,1,1"}
        )
        sampler = Sampler(launcher.redis_url, [web, worker])
        sampler.start()
        try:
            launcher.wait_web(web)
            launcher.wait_workers(worker, 1)
            api = launcher.api
            subscribe(api, receiver.url("/failing"))
            # 2 web processes x MAX_STREAMS_PER_PROCESS (8): every slot.
            streams = open_mixed_streams(launcher.port, 16)

            calls = realistic_calls(240)
            answers = post_calls(api, calls, threads=32)
            assert [a.status for a in answers] == [202] * len(answers), {
                a.status: a.text for a in answers if a.status != 202
            }
            wanted = {events[0]["callUuid"] for events in calls}
            wait_until(lambda: wanted <= decided_calls(api), 90, "every call's outcome")
            wait_until(
                lambda: any(r.attempt >= 2 for r in receiver.received()),
                30,
                "a delivery retried",
            )
        finally:
            sampler.stop()
            for stream in streams:
                stream.close()
    refused = int(client_limit.info("stats")["rejected_connections"]) - refused_before
    ours = sampler.peak_clients - before
    print(
        f"\npeak Redis connections of one web + one worker dyno: {ours} "
        f"(limit {ENTRY_PLAN_CLIENTS}); peak memory MB: "
        + ", ".join(f"{name} {mb:.0f}" for name, mb in sampler.peak_mb.items())
    )
    assert refused == 0, f"Redis refused {refused} connections past {ENTRY_PLAN_CLIENTS}"
    assert 0 < ours <= ENTRY_PLAN_CLIENTS
    for name, mb in sampler.peak_mb.items():
        assert 0 < mb < DYNO_MEMORY_MB / 2, f"{name} used {mb:.0f} MB"


def test_past_its_budget_a_webhook_waits_then_gets_503_with_retry_after(
    launcher: Launcher, redis_db: redis.Redis
) -> None:
    """With Redis stalled and the web process's one connection taken, other webhooks
    wait briefly, then get 503 + Retry-After; posted again they are kept."""
    api = launcher.start_service(WEB_CONCURRENCY="1", WEB_REDIS_CONNECTIONS="1")
    calls = [Call(TENANT_A) for _ in range(3)]
    bodies = [call.inbound() for call in calls]
    redis_db.execute_command("CLIENT", "PAUSE", "4000", "WRITE")
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(api.post_event, bodies))
    statuses = sorted(a.status for a in answers)
    assert statuses == [202, 503, 503], [a.text for a in answers]
    for body, answer in zip(bodies, answers, strict=True):
        if answer.status == 503:
            assert answer.headers["Retry-After"] == "1"
            assert "busy" in answer.json()["error"]
            api.accept(body)
    for call in calls:
        wait_until(lambda c=call: api.call(c.uuid), 15, f"call {call.uuid} applied")


def test_readyz_warns_when_redis_accepts_fewer_clients_than_the_budget(
    launcher: Launcher, client_limit: redis.Redis
) -> None:
    """/readyz names the shortfall: maxclients below one web and one worker dyno's budget."""
    # One web process whose connections are already open (Redis keeps the clients it
    # has when maxclients drops below their number; only new ones are refused), so
    # the next /readyz needs no new connection. Other tests' clients may hold more
    # than the limit: that does not matter here.
    launcher.start_web(WEB_CONCURRENCY="1")
    api = launcher.api
    ready = api.get_json("/readyz")
    assert not [w for w in ready["warnings"] if "clients" in w]
    limit = 12
    client_limit.config_set("maxclients", limit)
    warnings = api.get_json("/readyz")["warnings"]
    assert any(f"accepts {limit} clients" in w and "18" in w for w in warnings), warnings


# -- the router and SIGTERM ----------------------------------------------------------------


def gaps(stream: SseClient) -> list[float]:
    """Seconds between the request and the first line, then between lines."""
    with stream.lock:
        times = [stream.asked_at] + [at for at, _ in stream.lines]
    return [b - a for a, b in itertools.pairwise(times)]


def keepalives(stream: SseClient) -> int:
    with stream.lock:
        return sum(1 for _, line in stream.lines if line == ": keep-alive")


def test_streams_send_at_once_keep_alive_and_end_on_sigterm_with_nothing_lost(
    launcher: Launcher,
) -> None:
    """Streams send their first bytes at once and a keep-alive well inside the router's
    idle limit; SIGTERM to every dyno while webhooks arrive ends the streams at once
    and every process within the platform's 30 s; every accepted event is applied
    after the restart."""
    api = launcher.start_service()
    streams = [SseClient(launcher.port, path=path) for path in ("/v1/outcomes/stream", LIVE_STREAM)]
    assert [s.status for s in streams] == [200, 200]
    wait_until(lambda: all(keepalives(s) for s in streams), 30, "a keep-alive on every stream")
    for stream in streams:
        first, *between = gaps(stream)
        assert first < ROUTER_FIRST_BYTE_SECONDS / 6, f"first bytes after {first:.1f} s"
        assert max(between) < ROUTER_IDLE_SECONDS / 2, f"silent for {max(between):.1f} s"

    accepted: dict[str, list[Fields]] = {}
    stop_posting = threading.Event()

    def keep_posting() -> None:
        for events in realistic_calls(400):
            for fields in events:
                if stop_posting.is_set():
                    return
                try:
                    answer = api.post_event(fields)
                except (OSError, urllib.error.URLError):
                    return  # the web process is gone
                if answer.status == 202:
                    accepted.setdefault(fields["callUuid"], []).append(fields)

    poster = threading.Thread(target=keep_posting, daemon=True)
    poster.start()
    wait_until(lambda: len(accepted) >= 20, 30, "webhooks accepted while streams are open")
    started = time.monotonic()
    forced = launcher.stop_all(grace=SIGKILL_AFTER_SECONDS)
    stopped_in = time.monotonic() - started
    stop_posting.set()
    poster.join(10)
    for stream in streams:
        assert stream.ended.wait(5), "a stream still open after every process stopped"
    streams_ended_in = max(s.ended_at for s in streams) - started
    for stream in streams:
        stream.close()
    print(f"\nSIGTERM: streams ended after {streams_ended_in:.1f} s, processes {stopped_in:.1f} s")
    assert forced == [], f"{forced} needed SIGKILL"
    assert streams_ended_in < 5.0
    assert stopped_in < SIGKILL_AFTER_SECONDS

    api = launcher.start_service()
    for call_uuid, sent in accepted.items():
        def applied(c: str = call_uuid, n: int = len(sent)) -> bool:
            found = api.call(c)
            return found is not None and len(found["events"]) >= n

        wait_until(applied, 30, f"the {len(sent)} accepted events of {call_uuid}")
