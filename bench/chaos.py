"""Chaos: run the whole service under realistic traffic, kill workers and
restart Redis while it works, then count lost, duplicated and wrong outcomes.

    python -m bench.chaos [--duration 60] [--rate 8] [--kill-every 6] [--redis-every 20]
    python -m bench.chaos --cluster 3 --master-every 10 [--durable 1] [--redis-every 0]
    python -m bench.chaos --cluster 3 --reshard-at 5 --kill-every 0 --redis-every 0
    python -m bench.chaos --cluster 3 --no-restart --master-every 4 --durable 1 \
        --durable-mode available [--victim redis_url] --kill-every 0 --redis-every 0

With ``--cluster N`` call state lives on a Redis Cluster of N masters with a
replica each (RQ on the plain Redis); ``--master-every`` kill -9s a master
that often (its replica takes over; the killed node comes back as a replica)
and ``--durable`` sets DURABLE_REPLICAS; ``--reshard-at`` adds an empty
master that many seconds in and rebalances slots onto it while traffic flows.
``--no-restart`` loses one master ``--master-every`` seconds in for good
(a lost machine: bench/lost_master.py), brings it back as a replica
``--restore-after`` seconds later, and reports the 503 window, the longest
wait for a webhook to be taken and what /readyz said; ``--durable-mode``
sets DURABLE_MODE.

Loopback only, bounded in time. The sender behaves like PrimeVOX: it retries
a webhook until it gets a 2xx, so a 503 while Redis restarts costs a retry,
never an event. Last, `flask rebuild` folds every call's log afresh and compares
it with what is stored. Exit status 1 if anything was lost, duplicated or
wrong, or rebuild found a difference.

Over 400 lines on purpose: one run's traffic, faults and count belong together
so a reader sees what a chaos figure measured.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.lost_master import LostMaster, Takes
from bench.service import Service, wait_for
from devtools.simulator import Post, SimulatedCall, generate_call


@dataclass
class Report:
    calls: int = 0
    posts: int = 0
    retries: int = 0
    worker_kills: int = 0
    redis_restarts: int = 0
    master_kills: int = 0
    reshards: int = 0
    lost_events: int = 0
    duplicated_events: int = 0
    missing_outcomes: int = 0
    duplicated_outcomes: int = 0
    wrong_outcomes: int = 0
    # What `flask rebuild` found: each call's log folded afresh against its
    # stored view, facts, outcome and supervisor part (None: not run; -1: failed).
    rebuild_differences: int | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    lost_master: LostMaster | None = None
    takes: Takes = field(default_factory=Takes)

    @property
    def lost(self) -> int:
        return self.lost_events + self.missing_outcomes

    @property
    def duplicated(self) -> int:
        return self.duplicated_events + self.duplicated_outcomes

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.wrong_outcomes == 0 and not (
            self.rebuild_differences
        )

    def summary(self) -> str:
        return (
            f"{self.calls} calls, {self.posts} webhooks ({self.retries} retried), "
            f"{self.worker_kills} workers killed, {self.redis_restarts} Redis restarts, "
            f"{self.master_kills} cluster masters killed, {self.reshards} reshards, "
            f"{self.seconds:.0f} s\n"
            f"lost {self.lost} (events {self.lost_events}, outcomes {self.missing_outcomes}), "
            f"duplicated {self.duplicated} (events {self.duplicated_events}, "
            f"outcome revisions {self.duplicated_outcomes}), wrong {self.wrong_outcomes}, "
            f"flask rebuild differences {self.rebuild_differences}"
        ) + ("\n" + self.lost_master.summary(self.takes) if self.lost_master else "")


def send_until_accepted(url: str, post: Post, give_up_at: float, takes: Takes | None = None) -> int:
    """POST like PrimeVOX: retry until 2xx. Returns how many retries it took;
    each 503 and the 2xx are noted in ``takes``."""
    body, content_type = post.body()
    retries = 0
    first_sent = time.monotonic()
    while True:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": content_type}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if 200 <= response.status < 300:
                    if takes is not None:
                        takes.taken_now(first_sent)
                    return retries
        except urllib.error.HTTPError as exc:
            if exc.code == 503 and takes is not None:
                takes.refused_now()
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > give_up_at:
            raise TimeoutError("a webhook was not accepted in time")
        retries += 1
        time.sleep(min(0.2 * retries, 2.0))


def get(service: Service, path: str) -> Any:
    request = urllib.request.Request(
        f"{service.base_url}{path}", headers={"Authorization": f"Bearer {service.key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def all_outcomes(service: Service) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    after = None
    while True:
        page = get(service, "/v1/outcomes?limit=1000" + (f"&after={after}" if after else ""))
        records += page["outcomes"]
        if not page["next"]:
            return records
        after = page["next"]


def chaos_monkey(
    service: Service,
    report: Report,
    stop: threading.Event,
    kill_every: float,
    redis_every: float,
    rng: random.Random,
    master_every: float = 0.0,
    reshard_at: float = 0.0,
) -> None:
    start = time.monotonic()
    next_kill = time.monotonic() + kill_every
    next_redis = time.monotonic() + redis_every
    next_master = time.monotonic() + master_every
    while not stop.wait(0.2):
        now = time.monotonic()
        cluster = service.cluster
        if reshard_at and cluster is not None and not report.reshards and now - start >= reshard_at:
            cluster.add_master_and_rebalance()  # slots migrate under traffic
            report.reshards += 1
        if master_every and cluster is not None and now >= next_master:
            victim = rng.choice(cluster.master_nodes())
            cluster.kill9(victim)
            report.master_kills += 1
            cluster.wait_failover(60)  # its replica took over
            cluster.restart(victim)  # back as the new master's replica
            cluster.wait_ok(60)
            next_master = time.monotonic() + master_every
        if kill_every and now >= next_kill:
            workers = service.live("worker")
            if workers:
                service.kill9(rng.choice(workers))
                report.worker_kills += 1
                service.start_process("worker")
            next_kill = now + kill_every
        if redis_every and now >= next_redis:
            service.redis.stop()
            time.sleep(1.0)
            service.redis.start()
            report.redis_restarts += 1
            next_redis = time.monotonic() + redis_every


def rebuild(service: Service, report: Report) -> None:
    """Run `flask rebuild` (no --fix) on the service's Redis, as an operator would."""
    answer = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "rebuild"],
        env=service.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = re.search(r"(\d+) calls checked, (\d+) differences found", answer.stdout)
    if found is None:
        report.problems.append(f"flask rebuild: exit {answer.returncode}: {answer.stderr[-2000:]}")
        report.rebuild_differences = -1  # it did not finish: not clean
        return
    report.rebuild_differences = int(found.group(2))
    report.problems += [line for line in answer.stdout.splitlines() if ": " in line][:20]


def check(service: Service, calls: list[SimulatedCall], report: Report) -> None:
    """Compare what the engine holds with what was sent."""
    records = all_outcomes(service)
    by_call: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_call.setdefault(record["call_uuid"], []).append(record)
    for call in calls:
        sent = {(p.event_type, json.dumps(p.fields, sort_keys=True)) for p in call.posts}
        try:
            stored = get(service, f"/v1/calls/{call.call_uuid}")["events"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            stored = []  # not one event of the call is known
        seen = Counter((e["event_type"], json.dumps(e["fields"], sort_keys=True)) for e in stored)
        lost = sent - set(seen)
        doubled = [k for k, n in seen.items() if n > 1]
        report.lost_events += len(lost)
        report.duplicated_events += len(doubled)
        outcomes = by_call.get(call.call_uuid, [])
        revisions = Counter(r["revision"] for r in outcomes)
        report.duplicated_outcomes += sum(n - 1 for n in revisions.values())
        if not outcomes:
            report.missing_outcomes += 1
            report.problems.append(f"no outcome: {call.kind} {call.call_uuid}")
            continue
        latest = max(outcomes, key=lambda r: r["revision"])
        if (latest["outcome"], latest["missed_reason"]) != (call.outcome, call.missed_reason):
            report.wrong_outcomes += 1
            report.problems.append(
                f"wrong: {call.kind} {call.call_uuid}: {latest['outcome']}/"
                f"{latest['missed_reason']}, expected {call.outcome}/{call.missed_reason}"
            )
        if lost:
            report.problems.append(f"lost events of {call.call_uuid}: {sorted(lost)[:3]}")


def run(
    duration: float = 60.0,
    rate: float = 8.0,
    speed: float = 20.0,
    kill_every: float = 6.0,
    redis_every: float = 20.0,
    workers: int = 2,
    seed: int = 1,
    settle_timeout: float = 90.0,
    progress: bool = True,
    cluster: int = 0,
    master_every: float = 0.0,
    durable: int = 0,
    reshard_at: float = 0.0,
    lost_master: LostMaster | None = None,
    durable_mode: str = "",
    master_kills_wanted: int = 0,
) -> Report:
    """Run traffic with chaos for ``duration`` seconds, then check everything.
    With ``lost_master`` (a cluster), one master is lost for good as it says,
    instead of ``master_every``'s kills. ``master_kills_wanted``: the chaos goes on
    past the traffic (the worker still applying it) until that many masters were
    killed and failed over, however long a busy machine takes over each failover."""
    rng = random.Random(seed)
    report = Report(lost_master=lost_master)
    started = time.monotonic()
    env = {"OUTCOME_GRACE_SECONDS": "1", "PENDING_CHECK_SECONDS": "1", "WORKER_CONCURRENCY": "1"}
    if durable:
        env["DURABLE_REPLICAS"] = str(durable)
    if durable_mode:
        env["DURABLE_MODE"] = durable_mode
    with Service(env, cluster_masters=cluster).start(workers=workers) as service:
        calls: list[SimulatedCall] = []
        schedule: list[tuple[float, Post]] = []
        at = 0.0
        while at < duration:
            call = generate_call(rng, rng.choice(["acme", "globex"]), speed=speed)
            calls.append(call)
            schedule += [(at + p.at, p) for p in call.posts]
            at += rng.expovariate(rate)
        schedule.sort(key=lambda item: item[0])
        report.calls, report.posts = len(calls), len(schedule)

        stop = threading.Event()
        monkey = threading.Thread(
            target=chaos_monkey,
            args=(
                service,
                report,
                stop,
                kill_every,
                redis_every,
                random.Random(seed + 1),
                master_every,
                reshard_at,
            ),
            daemon=True,
        )
        monkey.start()
        t0 = time.monotonic()
        losing = threading.Thread(
            target=lost_master.run if lost_master else (lambda *_: None),
            args=(service, t0, stop),
            daemon=True,
        )
        losing.start()
        give_up = t0 + duration + settle_timeout
        with ThreadPoolExecutor(max_workers=32) as pool:
            futures = []
            for i, (when, post) in enumerate(schedule):
                delay = t0 + when - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(
                    pool.submit(
                        send_until_accepted, service.webhook_url, post, give_up, report.takes
                    )
                )
                if progress and i % 200 == 0:
                    print(
                        f"  {i}/{len(schedule)} webhooks sent, {report.worker_kills} kills, "
                        f"{report.redis_restarts} Redis restarts",
                        file=sys.stderr,
                        flush=True,
                    )
            report.retries = sum(f.result() for f in futures)
        losing.join()  # it restores the lost master and waits for /readyz
        while report.master_kills < master_kills_wanted and time.monotonic() < give_up:
            time.sleep(0.2)
        stop.set()
        monkey.join()
        if lost_master is not None:
            report.master_kills += 1 if lost_master.killed else 0
            report.problems += lost_master.problems
        if progress:
            print("  all webhooks accepted; waiting for every outcome", file=sys.stderr)

        def settled() -> bool:
            decided = {r["call_uuid"] for r in all_outcomes(service)}
            live = get(service, "/v1/calls/live")["calls"]
            return not live and all(c.call_uuid in decided for c in calls)

        try:
            wait_for(settled, settle_timeout, "every call to have its outcome", interval=1.0)
        except TimeoutError as exc:
            report.problems.append(str(exc))
        check(service, calls, report)
        if lost_master is None:
            # After a master lost for good, writes no replica had may be gone
            # (by design, in "available" mode): rebuild's differences would
            # then say so, not judge the engine.
            rebuild(service, report)
    report.seconds = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    parser.add_argument("--rate", type=float, default=8.0, help="new calls a second")
    parser.add_argument("--speed", type=float, default=20.0, help="calls run this much faster")
    parser.add_argument("--kill-every", type=float, default=6.0, help="seconds between kill -9s")
    parser.add_argument(
        "--redis-every", type=float, default=20.0, help="seconds between Redis restarts (0: never)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cluster", type=int, default=0, help="masters of a Redis Cluster")
    parser.add_argument(
        "--master-every", type=float, default=0.0, help="seconds between master kill -9s"
    )
    parser.add_argument("--durable", type=int, default=0, help="DURABLE_REPLICAS")
    parser.add_argument(
        "--reshard-at",
        type=float,
        default=0.0,
        help="seconds in: add an empty master and rebalance slots onto it under traffic",
    )
    parser.add_argument(
        "--no-restart",
        action="store_true",
        help="lose one master --master-every seconds in, not restarted while traffic flows",
    )
    parser.add_argument(
        "--victim",
        choices=("other", "redis_url"),
        default="other",
        help="--no-restart: a master other than REDIS_URL's node, or that node",
    )
    parser.add_argument(
        "--restore-after",
        type=float,
        default=15.0,
        help="--no-restart: seconds after the kill until the lost node is back as a replica",
    )
    parser.add_argument("--durable-mode", default="", help="DURABLE_MODE (available, strict)")
    args = parser.parse_args(argv)
    lost = (
        LostMaster(args.victim, args.master_every, args.restore_after) if args.no_restart else None
    )
    report = run(
        args.duration,
        args.rate,
        args.speed,
        args.kill_every,
        args.redis_every,
        args.workers,
        args.seed,
        cluster=args.cluster,
        master_every=0.0 if lost else args.master_every,
        durable=args.durable,
        reshard_at=args.reshard_at,
        lost_master=lost,
        durable_mode=args.durable_mode,
    )
    for problem in report.problems[:20]:
        print(problem)
    print(report.summary())
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
