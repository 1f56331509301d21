"""Call state on a Redis Cluster: Redis commands, CPU and memory per event on
each node, for one Redis and clusters of 1 and 3 masters, in one run.

    python -m bench.cluster [--calls 600] [--seed 1] [--masters 0,1,3,6]
    python -m bench.cluster --durability [--seconds 8]

``--durability``: intake on a cluster of 3 masters (a replica each) with
DURABLE_REPLICAS=0 and =1, one after the other in the same run: webhooks
accepted a second from 16 keep-alive connections as fast as they are
answered, and the 202's latency.

Each layout runs the shipped web and worker (one worker process) with RQ on a
Redis of its own (``RQ_REDIS_URL``), so the state nodes' figures are call
state only. The same simulated calls (``devtools.simulator``) are posted to each,
every call's events in order, 16 calls at a time, and the run waits until
every call has its outcome. Per node: commands (``INFO commandstats``), Redis
CPU (``INFO cpu``) and memory (``used_memory`` less replication backlog and
client and AOF buffers) per event, and the ratio of
the cluster's totals to one Redis's in the same run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.chaos import send_until_accepted
from bench.common import percentile
from bench.sender import KeepAlive, timed_gets
from bench.service import Service, wait_for
from devtools.simulator import SimulatedCall, generate_call


@dataclass
class NodeFigures:
    name: str
    commands: int
    cpu_seconds: float
    memory: int
    keys: int
    by_command: dict[str, int] = field(default_factory=dict)


@dataclass
class Layout:
    name: str
    events: int = 0
    calls: int = 0
    seconds: float = 0.0
    state: list[NodeFigures] = field(default_factory=list)
    queues: NodeFigures | None = None
    # Reads that fan out: path -> (median ms, state commands per read).
    reads: dict[str, tuple[float, float]] = field(default_factory=dict)

    def total(self, what: str) -> float:
        return float(sum(getattr(n, what) for n in self.state))


def _snapshot(name: str, client: redis.Redis) -> NodeFigures:
    stats = client.info("commandstats")
    cpu = client.info("cpu")
    memory = client.info("memory")
    by_command = {
        k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if isinstance(v, dict)
    }
    return NodeFigures(
        name,
        sum(by_command.values()),
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        # What the data takes: replication backlogs, replicas' and clients'
        # buffers and the AOF buffer come and go with load, not with calls kept.
        int(memory["used_memory"])
        - int(memory.get("mem_replication_backlog", 0))
        - int(memory.get("mem_clients_slaves", 0))
        - int(memory.get("mem_clients_normal", 0))
        - int(memory.get("mem_aof_buffer", 0)),
        int(client.dbsize()),
        by_command,
    )


def _delta(before: NodeFigures, after: NodeFigures) -> NodeFigures:
    return NodeFigures(
        after.name,
        after.commands - before.commands,
        after.cpu_seconds - before.cpu_seconds,
        after.memory - before.memory,
        after.keys - before.keys,
        {k: n - before.by_command.get(k, 0) for k, n in after.by_command.items()},
    )


def _outcomes(service: Service) -> int:
    count, after = 0, ""
    while True:
        request = urllib.request.Request(
            f"{service.base_url}/v1/outcomes?limit=1000{after}",
            headers={"Authorization": f"Bearer {service.key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            page: dict[str, Any] = json.load(answer)
        count += len({r["call_uuid"] for r in page["outcomes"]})
        if not page["next"]:
            return count
        after = f"&after={page['next']}"


def run_layout(name: str, masters: int, calls: list[SimulatedCall]) -> Layout:
    env = {"OUTCOME_GRACE_SECONDS": "0.5", "WORKER_CONCURRENCY": "1"}
    # RQ on a Redis of its own with one Redis too, so state figures are state only.
    service = Service(env, cluster_masters=masters, separate_queues=True)
    with service.start(workers=1):
        if service.cluster is not None:
            state = {n.address: n.client() for n in service.cluster.master_nodes()}
        else:
            state = {"one redis": service.redis.client()}
        rq_client = service.queues.client()
        before = {k: _snapshot(k, c) for k, c in state.items()}
        rq_before = _snapshot("RQ's redis", rq_client)
        started = time.monotonic()

        def post(call: SimulatedCall) -> None:
            for item in call.posts:
                send_until_accepted(service.webhook_url, item, time.monotonic() + 60)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(post, calls))
        wait_for(lambda: _outcomes(service) >= len(calls), 180, "every outcome", interval=0.5)
        layout = Layout(name, sum(len(c.posts) for c in calls), len(calls))
        layout.seconds = time.monotonic() - started
        layout.state = [_delta(before[k], _snapshot(k, c)) for k, c in state.items()]
        layout.queues = _delta(rq_before, _snapshot("RQ's redis", rq_client))
        headers = {"Authorization": f"Bearer {service.key}"}
        for path in READS:
            before = {k: _snapshot(k, c) for k, c in state.items()}
            took = timed_gets(service.base_url, path.format(call=calls[0].call_uuid), 200, headers)
            commands = sum(_delta(before[k], _snapshot(k, c)).commands for k, c in state.items())
            # Each snapshot itself costs 3 commands (INFO x2, DBSIZE) on each node.
            commands -= 3 * len(state)
            layout.reads[path] = (1000 * percentile(took, 50), commands / 200)
    return layout


# Reads that span partitions (all tenants, admin key), and one that does not.
READS = (
    "/v1/calls/live",
    "/v1/outcomes?limit=100",
    "/v1/outcomes?limit=100&tenant_id=tenant-0",
    "/v1/calls/{call}",
)


def report(layouts: list[Layout]) -> None:
    base = layouts[0]
    for layout in layouts:
        events = max(layout.events, 1)
        print(f"\n{layout.name}: {layout.calls} calls, {layout.events} events, ", end="")
        print(f"{layout.seconds:.1f} s")
        for node in layout.state:
            print(
                f"  {node.name:<22} {node.commands / events:6.1f} commands/event  "
                f"{1e6 * node.cpu_seconds / events:6.1f} us CPU/event  "
                f"{node.memory / layout.calls:8.0f} bytes/call  {node.keys} keys"
            )
        if layout.queues is not None:
            q = layout.queues
            print(
                f"  {q.name:<22} {q.commands / events:6.1f} commands/event  "
                f"{1e6 * q.cpu_seconds / events:6.1f} us CPU/event"
            )
        for what, unit in (("commands", "commands"), ("cpu_seconds", "CPU"), ("memory", "memory")):
            mine = layout.total(what) / events
            theirs = base.total(what) / max(base.events, 1)
            ratio = mine / theirs if theirs else float("nan")
            print(f"  state {unit} per event, all nodes: {ratio:.2f}x one Redis's")
        every: dict[str, int] = {}
        for node in layout.state:
            for name, calls in node.by_command.items():
                every[name] = every.get(name, 0) + calls
        busiest = sorted(every.items(), key=lambda item: -item[1])[:6]
        print(
            "  busiest state commands per event: "
            + ", ".join(f"{name} {calls / events:.1f}" for name, calls in busiest)
        )
        for path, (median, commands) in layout.reads.items():
            base_median, base_commands = base.reads.get(path, (median, commands))
            print(
                f"  GET {path:<42} p50 {median:6.2f} ms ({median / base_median:.2f}x)  "
                f"{commands:5.1f} state commands ({commands / max(base_commands, 0.01):.2f}x)"
            )
        if len(layout.state) > 1:
            top = max(n.commands for n in layout.state) / max(layout.total("commands"), 1)
            even = 1 / len(layout.state)
            print(f"  busiest node's share of commands: {top:.2f} (even: {even:.2f})")


def intake_rate(durable: int, seconds: float, seed: int) -> tuple[float, float, float, int]:
    """(accepted/s, p50 ms, p99 ms, refused) of intake on a cluster of 3 masters."""
    rng = random.Random(seed)
    posts = [p for _ in range(4000) for p in generate_call(rng, "acme", speed=1000.0).posts]
    env = {"WORKER_CONCURRENCY": "1", "DURABLE_REPLICAS": str(durable)}
    service = Service(env, cluster_masters=3)
    latencies: list[float] = []
    refused = 0
    with service.start(workers=1):
        path = f"/webhooks/primevox/{service.token}"
        stop_at = time.monotonic() + seconds

        def sender(k: int) -> tuple[list[float], int]:
            client, mine, bad = KeepAlive(service.base_url), [], 0
            try:
                for post in posts[k::16]:
                    if time.monotonic() >= stop_at:
                        break
                    body, content_type = post.body()
                    sent = time.monotonic()
                    status, _ = client.request("POST", path, body, {"Content-Type": content_type})
                    if status == 202:
                        mine.append(time.monotonic() - sent)
                    else:
                        bad += 1
            finally:
                client.close()
            return mine, bad

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            for mine, bad in pool.map(sender, range(16)):
                latencies += mine
                refused += bad
        elapsed = time.monotonic() - started
    return (
        len(latencies) / elapsed,
        1000 * percentile(latencies, 50),
        1000 * percentile(latencies, 99),
        refused,
    )


def durability(seconds: float, seed: int) -> None:
    results = {}
    for durable in (0, 1):
        print(f"intake with DURABLE_REPLICAS={durable} ...", file=sys.stderr, flush=True)
        results[durable] = intake_rate(durable, seconds, seed)
    for durable, (rate, p50, p99, refused) in results.items():
        print(
            f"DURABLE_REPLICAS={durable}: {rate:7.0f} accepted/s  202 p50 {p50:6.2f} ms  "
            f"p99 {p99:6.2f} ms  refused {refused}"
        )
    print(f"rate with DURABLE_REPLICAS=1: {results[1][0] / results[0][0]:.2f}x without")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--masters", default="0,1,3", help="layouts: 0 = one Redis")
    parser.add_argument("--durability", action="store_true", help="DURABLE_REPLICAS' cost")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if args.durability:
        durability(args.seconds, args.seed)
        return 0
    rng = random.Random(args.seed)
    tenants = [f"tenant-{n}" for n in range(8)]
    calls = [generate_call(rng, rng.choice(tenants), speed=1000.0) for _ in range(args.calls)]
    layouts = []
    for masters in (int(m) for m in args.masters.split(",")):
        name = "one Redis" if masters == 0 else f"cluster of {masters} master(s)"
        print(f"running {name} ...", file=sys.stderr, flush=True)
        layouts.append(run_layout(name, masters, calls))
    report(layouts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
