"""A soak: steady realistic traffic for a set time; every curve sampled, nothing may leak.

    python -m bench.soak [--minutes 20] [--rate 40] [--interval 10] [--retention 120]

Starts the Procfile's web and worker on a private redis-server (bench/service.py),
subscribes one local receiver to every outcome, and posts simulated PrimeVOX
calls (devtools/simulator.py: every kind, duplicates included) open-loop at
``--rate`` webhooks a second. Every ``--interval`` seconds it records web and
worker RSS, open file descriptors, Redis ``used_memory`` and connected clients,
events pending and RQ's queue length, and the p99 from a 202 to the event's
state being visible. Each call's outcome is checked against the simulator's
expected one shortly after its last webhook (before retention drops it).

Retention is short (``RETENTION_SECONDS=--retention``) so that what retention
explains — ended calls kept, then dropped — is over before warm-up ends:
after it, every curve must be flat. The verdict prints growth per hour
(the long run's goal: under ``--max-growth`` %) and the clear-leak test the
two-minute form in the test suite fails on. Exit status 1 if any 5xx, a
wrong or missing outcome, or a clear leak.

Over 400 lines on purpose: one benchmark program, its sampling and its verdict.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
from rq import Queue

from bench.common import BenchService, percentile, print_machine, progress, traffic
from bench.sender import KeepAlive
from bench.soak_analysis import MEMORY_CURVES, Trend, clear_leak, flat_for_an_hour, trend
from core.settings import EVENTS_QUEUE
from core.store import PARTITIONS, call_key, pending_key
from devtools.simulator import Post, SimulatedCall

TENANTS = ("acme", "globex")
SENDERS = 4
GRACE_SECONDS = 1.0
# A call is checked this long after its last 202: grace, then the worker's timer.
CHECK_AFTER_SECONDS = GRACE_SECONDS + 4.0
CHECK_GIVE_UP_SECONDS = 45.0
LATENCY_EVERY = 4  # follow one event in this many to its visible state


@dataclass
class Sample:
    """The curves at one moment, ``at`` seconds into the run."""

    at: float
    values: dict[str, float]


@dataclass
class SoakResult:
    """Everything a soak saw."""

    seconds: float
    warmup: float
    samples: list[Sample] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    send_errors: int = 0
    checked: int = 0
    wrong: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    delivered: int = 0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def trends(self) -> list[Trend]:
        times = [s.at for s in self.samples]
        names = [n for n in self.samples[0].values if n != "p99_ms"] if self.samples else []
        return [trend(n, times, [s.values[n] for s in self.samples], self.warmup) for n in names]

    def leaks(self) -> list[str]:
        return [why for item in self.trends() if (why := clear_leak(item))]


class _Receiver:
    """A local outbound-webhook receiver that answers 200 and counts."""

    def __init__(self) -> None:
        self.count = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/soak"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Calls:
    """Which calls have every webhook acknowledged, and since when."""

    def __init__(self, calls: list[SimulatedCall]) -> None:
        self.calls = {c.call_uuid: c for c in calls}
        self.acked: Counter[str] = Counter()
        self.last_ack: dict[str, float] = {}
        self.failed: set[str] = set()
        self.lock = threading.Lock()

    def on_ack(self, call: SimulatedCall, ok: bool) -> None:
        with self.lock:
            if not ok:
                self.failed.add(call.call_uuid)
            self.acked[call.call_uuid] += 1
            self.last_ack[call.call_uuid] = time.monotonic()

    def ready(self, older_than: float) -> list[SimulatedCall]:
        """Calls whose webhooks were all acknowledged ``older_than`` seconds ago; each once."""
        now = time.monotonic()
        with self.lock:
            done = [
                uuid for uuid, n in self.acked.items()
                if n == len(self.calls[uuid].posts) and now - self.last_ack[uuid] >= older_than
            ]  # fmt: skip
            for uuid in done:
                del self.acked[uuid]
            return [self.calls[u] for u in done if u not in self.failed]


class _Latency(threading.Thread):
    """Follows sampled events from their 202 to their call's log (written by the same
    commit as the live view) and keeps (when seen, ms)."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.waiting: dict[tuple[str, str], float] = {}
        self.seen: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def follow(self, tenant: str, call_uuid: str, event_id: str, acked: float) -> None:
        with self.lock:
            self.waiting[(call_key(tenant, call_uuid) + ":log", event_id)] = acked

    def since(self, moment: float) -> list[float]:
        with self.lock:
            return [ms for at, ms in self.seen if at >= moment]

    def run(self) -> None:
        while not self.stop.wait(0.002):
            with self.lock:
                batch = list(self.waiting.items())
            if not batch:
                continue
            try:
                with self.client.pipeline(transaction=False) as pipe:
                    for (key, event_id), _ in batch:
                        pipe.zscore(key, event_id)
                    scores = pipe.execute()
            except redis.RedisError:
                continue
            now = time.monotonic()
            with self.lock:
                for (where, acked), score in zip(batch, scores, strict=True):
                    if score is not None:
                        self.seen.append((now, (now - acked) * 1000))
                        del self.waiting[where]


def _rss_mb_and_fds(pids: list[int]) -> tuple[float, int]:
    rss_kb, fds = 0, 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss_kb += next(int(line.split()[1]) for line in status.splitlines()
                           if line.startswith("VmRSS:"))  # fmt: skip
            fds += len(list(Path(f"/proc/{pid}/fd").iterdir()))
        except (OSError, StopIteration):
            continue  # a process that just ended (a granian worker respawned)
    return rss_kb / 1024, fds


def _pending(client: redis.Redis) -> int:
    with client.pipeline(transaction=False) as pipe:
        for tenant in TENANTS:
            for number in range(PARTITIONS):
                pipe.zcard(pending_key(tenant, number))
        return int(sum(pipe.execute()))


def _sample(service: BenchService, client: redis.Redis, queue: Queue) -> dict[str, float]:
    web_rss, web_fds = _rss_mb_and_fds(service.python_pids("web"))
    worker_rss, worker_fds = _rss_mb_and_fds(service.python_pids("worker"))
    memory = client.info("memory")
    clients = client.info("clients")
    return {
        "web_rss_mb": web_rss,
        "worker_rss_mb": worker_rss,
        "open_fds": float(web_fds + worker_fds),
        "redis_used_mb": memory["used_memory"] / 2**20,
        "redis_clients": float(clients["connected_clients"]),
        "pending": float(_pending(client)),
        "rq_queue": float(queue.count),
    }


def _get(service: BenchService, path: str) -> Any:
    request = urllib.request.Request(
        f"{service.base_url}{path}", headers={"Authorization": f"Bearer {service.key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _subscribe(service: BenchService, url: str) -> None:
    request = urllib.request.Request(
        f"{service.base_url}/v1/subscriptions",
        data=json.dumps({"url": url}).encode(),
        headers={"Authorization": f"Bearer {service.key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 201:
            raise RuntimeError(f"could not subscribe: {response.status}")


def _check(service: BenchService, call: SimulatedCall, result: SoakResult) -> bool:
    """Compare one call's outcome with the expected one; False if not decided yet."""
    try:
        answer = _get(service, f"/v1/calls/{call.call_uuid}")
    except OSError:
        return False
    outcome = answer.get("outcome") or {}
    if not outcome.get("outcome"):
        return False
    result.checked += 1
    got = (outcome["outcome"], outcome.get("missed_reason"))
    if got != (call.outcome, call.missed_reason):
        result.wrong.append(f"{call.kind} {call.call_uuid}: {got}, expected "
                            f"{(call.outcome, call.missed_reason)}")  # fmt: skip
    return True


class _Checker(threading.Thread):
    """Checks each call's outcome once it should be decided, until told to finish."""

    def __init__(self, service: BenchService, calls: _Calls, result: SoakResult) -> None:
        super().__init__(daemon=True)
        self.service, self.calls, self.result = service, calls, result
        self.undecided: dict[str, tuple[SimulatedCall, float]] = {}
        self.finish = threading.Event()

    def run(self) -> None:
        while True:
            for call in self.calls.ready(CHECK_AFTER_SECONDS):
                self.undecided[call.call_uuid] = (call, time.monotonic() + CHECK_GIVE_UP_SECONDS)
            for uuid, (call, give_up_at) in list(self.undecided.items()):
                if _check(self.service, call, self.result):
                    del self.undecided[uuid]
                elif time.monotonic() > give_up_at:
                    self.result.missing.append(f"{call.kind} {uuid}")
                    del self.undecided[uuid]
            if self.finish.is_set() and not self.undecided:
                return
            time.sleep(0.5)


def _send(
    service: BenchService,
    posts: list[tuple[Post, SimulatedCall]],
    rate: float,
    seconds: float,
    on_answer: Callable[[int, Post, SimulatedCall, int, dict[str, Any], float], None],
) -> None:
    """POST open-loop at ``rate``: post i is due at start + i/rate; stop after ``seconds``."""
    path = f"/webhooks/primevox/{service.token}"
    started = time.monotonic() + 0.2

    def sender(k: int) -> None:
        client = KeepAlive(service.base_url)
        try:
            for i in range(k, len(posts), SENDERS):
                due = started + i / rate
                if due - started > seconds:
                    return
                time.sleep(max(0.0, due - time.monotonic()))
                post, call = posts[i]
                body, content_type = post.body()
                try:
                    status, raw = client.request("POST", path, body, {"Content-Type": content_type})
                    answer = json.loads(raw) if status == 202 else {}
                except (OSError, ValueError):
                    status, answer = 0, {}
                on_answer(i, post, call, status, answer, time.monotonic())
        finally:
            client.close()

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run(
    minutes: float,
    rate: float,
    interval: float,
    retention: float,
    warmup: float,
    seed: int = 7,
    report: Callable[[str], None] = progress,
) -> SoakResult:
    """Run one soak and return what it saw (raises if the service does not start)."""
    seconds = minutes * 60
    result = SoakResult(seconds, warmup)
    made = traffic(int(rate * seconds * 1.05) + 50, seed=seed, tenants=TENANTS)
    owner = {id(p): c for c in made.calls for p in c.posts}
    posts = [(p, owner[id(p)]) for p in made.posts]
    calls = _Calls(made.calls)
    lock = threading.Lock()
    receiver = _Receiver()
    env = {
        "RETENTION_SECONDS": f"{retention:g}",
        "OUTCOME_GRACE_SECONDS": f"{GRACE_SECONDS:g}",
        "SUBSCRIPTION_ALLOW_PRIVATE": "1",
    }
    service = BenchService(env).start()
    client = service.redis.client()
    latency = _Latency(service.redis.client())
    checker = _Checker(service, calls, result)
    try:
        _subscribe(service, receiver.url)
        queue = Queue(EVENTS_QUEUE, connection=client)

        def on_answer(
            i: int, post: Post, call: SimulatedCall, status: int, answer: dict[str, Any],
            acked: float,
        ) -> None:  # fmt: skip
            with lock:
                result.statuses[status] += 1
                result.send_errors += status == 0
            calls.on_ack(call, status == 202)
            if status == 202 and i % LATENCY_EVERY == 0 and "call_uuid" in answer:
                latency.follow(call.tenant_id, answer["call_uuid"], answer["event_id"], acked)

        sender = threading.Thread(
            target=_send, args=(service, posts, rate, seconds, on_answer), daemon=True
        )
        latency.start()
        checker.start()
        started = time.monotonic()
        sender.start()
        report(f"soak: {seconds:.0f} s at {rate:g} webhooks/s, a sample every {interval:g} s, "
               f"retention {retention:g} s, warm-up {warmup:g} s")  # fmt: skip
        next_at = started + interval
        # Samples only while traffic flows: the quiet after it is not the steady state.
        while next_at <= started + seconds and sender.is_alive():
            time.sleep(max(0.0, next_at - time.monotonic()))
            now = time.monotonic()
            values = _sample(service, client, queue)
            values["p99_ms"] = percentile(latency.since(now - interval), 99)
            result.samples.append(Sample(now - started, values))
            with lock:
                sent = sum(result.statuses.values())
            report(f"{now - started:5.0f} s  sent {sent}  5xx {result.server_errors}  "
                   f"checked {result.checked}  wrong {len(result.wrong)}  "
                   + "  ".join(f"{k} {v:.1f}" for k, v in values.items()))  # fmt: skip
            next_at += interval
        sender.join()
        report("traffic done; checking the last calls' outcomes")
        checker.finish.set()
        checker.join(CHECK_AFTER_SECONDS + CHECK_GIVE_UP_SECONDS + 15)
        result.delivered = receiver.count
    finally:
        latency.stop.set()
        receiver.stop()
        service.stop()
    return result


def print_result(result: SoakResult, max_growth: float) -> bool:
    """Print the curves and the verdict; True if the soak passed."""
    names = list(result.samples[0].values) if result.samples else []
    print("\n| s | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for sample in result.samples:
        print(f"| {sample.at:.0f} | " + " | ".join(f"{sample.values[n]:.1f}" for n in names) + " |")
    print(f"\nafter the {result.warmup:.0f} s warm-up (medians of the first and last thirds):")
    print("| curve | first | last | growth per hour | flat (<= "
          f"{max_growth:g} %/h for memory) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for item in result.trends():
        per_hour = f"{item.per_hour_percent:+.1f} %" if item.name in MEMORY_CURVES else "-"
        print(f"| {item.name} | {item.first:.1f} | {item.last:.1f} | {per_hour} | "
              f"{'yes' if flat_for_an_hour(item, max_growth) else 'NO'} |")  # fmt: skip
    p99s = [s.values["p99_ms"] for s in result.samples if s.at >= result.warmup]
    print(f"\n202 -> visible p99 per interval after warm-up: {min(p99s, default=0):.0f}-"
          f"{max(p99s, default=0):.0f} ms")  # fmt: skip
    sent = sum(result.statuses.values())
    print(f"webhooks sent {sent}: {dict(sorted(result.statuses.items()))}; "
          f"send errors {result.send_errors}; outcomes checked {result.checked}, "
          f"wrong {len(result.wrong)}, missing {len(result.missing)}; "
          f"webhooks delivered to the receiver {result.delivered}")  # fmt: skip
    for line in (result.wrong + result.missing)[:10]:
        print("  " + line)
    leaks = result.leaks()
    for why in leaks:
        print(f"CLEAR LEAK: {why}")
    passed = not (leaks or result.server_errors or result.wrong or result.missing)
    print("verdict: " + ("PASS" if passed else "FAIL"))
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=40.0, help="webhooks a second")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--retention", type=float, default=120.0,
                        help="RETENTION_SECONDS for the service")  # fmt: skip
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before curves are judged (default: retention + 60)",
                        )  # fmt: skip
    parser.add_argument("--max-growth", type=float, default=2.0,
                        help="allowed memory growth, %% per hour")  # fmt: skip
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else args.retention + 60
    if warmup >= args.minutes * 60:
        parser.error("the run must last longer than its warm-up")
    # SIGTERM (a killed run) unwinds like Ctrl-C, so the service and its Redis stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print_machine()
    result = run(args.minutes, args.rate, args.interval, args.retention, warmup)
    return 0 if print_result(result, args.max_growth) else 1


if __name__ == "__main__":
    raise SystemExit(main())
