"""Intake benchmark: POST /webhooks/primevox/<token> against bare Flask endpoints.

    python -m bench.intake [--seconds 6] [--repeats 4] [--workers 1] [--profile]

Four servers on this machine, in the same run:

* **ours**: the Procfile's ``web`` command (``python -m app.web.serve``: granian,
  WEB_CONCURRENCY processes x WEB_THREADS threads, JSON access log);
* **bare gunicorn**: bare Flask (bench/bare_app.py: read the body, answer 202)
  on gunicorn gthread, 2 processes x 8 threads, as a peer would deploy it;
* **bare**: the same bare Flask on our server with our settings;
* **bare+Redis**: bare Flask plus one Redis Lua write per request, on our
  server: what any intake that answers only once the event is in Redis pays.

The same load generator (wrk, realistic PrimeVOX bodies from devtools.simulator,
one body list for all) hits them in rotating order. It measures:

1. requests/s at saturation (wrk, closed loop), and the servers' CPU per
   request (server processes, plus Redis where it is used);
2. ack latency at a fixed rate, half of our saturation rate: p50/p99 of each
   server at that rate. wrk2 is not packaged in Debian, so the rate is held
   by wrk's Lua ``delay()`` (each connection waits, with jitter, after each
   answer; the delay is calibrated in a short first run), and the achieved
   rate is printed beside the target.

By default (``--workers 1``) a worker runs beside the web, as deployed: they
share the machine's CPU, and intake rings doorbells and enqueues drain jobs as
it does in production. ``--workers 0`` runs nothing that drains the pending
sets, so every doorbell stays rung and intake never enqueues an RQ job: this
isolates the web process. Loopback only; every run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    BenchService,
    cmdline,
    commandstats,
    commandstats_delta,
    cpu_seconds,
    descendants,
    print_commandstats,
    print_machine,
    progress,
    spread,
    traffic,
)
from bench.profiles import profiled
from bench.sender import KeepAlive
from bench.service import free_port, wait_for
from bench.wrk import WrkResult, run_wrk, write_bodies, wrk_script
from devtools.service import ServiceProcess, start_process, stop_all

GOALS = {  # (top, bottom): the least top / bottom req/s that meets issue 11's goal
    ("ours", "bare gunicorn"): 1.0,
    ("ours", "bare+Redis"): 0.8,
}
GOAL_P99_MS = 10.0
GUNICORN, OUR_SERVER = "gunicorn gthread 2x8", "our server"
OURS, BARE_GUNICORN, BARE, BARE_REDIS = "ours", "bare gunicorn", "bare", "bare+Redis"


@dataclass
class Target:
    """One HTTP server under test, and the processes that serve it (gunicorn's,
    and Redis for ours) whose CPU counts against it."""

    name: str
    base_url: str
    path: str
    pids: list[int] = field(default_factory=list)


@dataclass
class Saturation:
    """One saturation run: wrk's result and the servers' CPU per request."""

    result: WrkResult
    cpu_ms: float

    @property
    def rate(self) -> float:
        return self.result.rate


def _answers(base_url: str) -> bool:
    client = KeepAlive(base_url, timeout=2)
    try:
        return client.request("GET", "/healthz")[0] == 200
    finally:
        client.close()


def start_bare(service: BenchService, with_redis: bool, server: str) -> tuple[ServiceProcess, str]:
    """A bare Flask baseline (bench.bare_app; ``with_redis``: one Lua write to the
    service's Redis per request) on ``server``: OUR_SERVER is the Procfile's web
    command's server with its settings (``python -m app.web.serve``), GUNICORN is
    gunicorn gthread with 2 processes x 8 threads, as a peer would deploy it."""
    port = free_port()
    env = {
        **service.env,
        "PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(service.workdir / f"metrics-bare-{port}"),
    }
    if with_redis:
        env["BARE_REDIS_URL"] = service.redis.url
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    if server == GUNICORN:
        command = [
            "gunicorn", "--workers", "2", "--worker-class", "gthread", "--threads", "8",
            "--bind", f"127.0.0.1:{port}", "--no-control-socket", "bench.bare_app:create_app()",
        ]  # fmt: skip
    else:
        command = [sys.executable, "-m", "app.web.serve", "bench.bare_app:create_app"]
    name = f"bare-{port}"
    process = start_process(name, command, env, stdout_path=service.workdir / f"{name}.log")
    base_url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(base_url), 30, f"bare Flask on {server} to answer")
    return process, base_url


def saturate(target: Target, bodies: Path, args: argparse.Namespace) -> Saturation:
    """Requests/s with every wrk connection always busy (closed loop), and the
    CPU the server's processes spent per request meanwhile."""
    script = wrk_script(bodies, target.path, args.threads, "loop")
    cpu0 = cpu_seconds(target.pids)
    try:
        result = run_wrk(target.base_url, script, args.threads, args.connections, args.seconds)
    finally:
        script.unlink(missing_ok=True)
    cpu_ms = 1000 * (cpu_seconds(target.pids) - cpu0) / max(result.requests, 1)
    progress(
        f"  {target.name}: {result.rate:.0f} req/s, p99 {result.p99_ms:.1f} ms, "
        f"{cpu_ms:.2f} ms server CPU/request, {result.refused} not 202, "
        f"{result.errors} socket errors"
    )
    return Saturation(result, cpu_ms)


def at_rate(target: Target, bodies: Path, rate: float, args: argparse.Namespace) -> WrkResult:
    """Latency with wrk holding ~``rate`` requests/s: each of a few connections
    waits a calibrated delay (x0.5-1.5 jitter) after each answer."""
    connections = args.rate_connections
    delay_ms = connections * 1000 / rate
    probe = _rate_run(target, bodies, delay_ms, connections, 3, args.threads)
    service_ms = max(0.0, connections * 1000 / max(probe.rate, 1.0) - delay_ms)
    delay_ms = max(0.0, connections * 1000 / rate - service_ms)
    result = _rate_run(target, bodies, delay_ms, connections, args.latency_seconds, args.threads)
    progress(
        f"  {target.name} at {rate:.0f}/s: achieved {result.rate:.0f}/s, "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, max {result.max_ms:.1f} ms"
    )
    return result


def _rate_run(
    target: Target, bodies: Path, delay_ms: float, connections: int, seconds: float, threads: int
) -> WrkResult:
    script = wrk_script(bodies, target.path, threads, "rate", delay_ms)
    try:
        return run_wrk(target.base_url, script, threads, connections, seconds)
    finally:
        script.unlink(missing_ok=True)


def throughput_rounds(
    targets: list[Target], bodies: Path, args: argparse.Namespace
) -> dict[str, list[Saturation]]:
    """Saturate every target in turn, rotating which goes first, ``--repeats`` times."""
    runs: dict[str, list[Saturation]] = {t.name: [] for t in targets}
    for round_number in range(args.repeats):
        progress(f"saturation round {round_number + 1}/{args.repeats}")
        shift = round_number % len(targets)
        for target in targets[shift:] + targets[:shift]:
            runs[target.name].append(saturate(target, bodies, args))
    return runs


def _per_round(runs: dict[str, list[Saturation]], top: str, bottom: str, cpu: bool) -> list[float]:
    """Per-round ratios top / bottom of req/s (or bottom / top of CPU per request)."""
    pairs = zip(runs[top], runs[bottom], strict=True)
    if cpu:
        return [b.cpu_ms / a.cpu_ms for a, b in pairs if a.cpu_ms]
    return [a.rate / b.rate for a, b in pairs if b.rate]


def print_throughput(runs: dict[str, list[Saturation]]) -> None:
    print("\n1. Requests/s at saturation (wrk closed loop), rounds alternating")
    for name, results in runs.items():
        print(
            f"   {name:<14} req/s {spread([r.rate for r in results], 0):<24} "
            f"p99 {spread([r.result.p99_ms for r in results], 1):<24} ms  "
            f"server CPU/request {spread([r.cpu_ms for r in results])} ms"
        )
    for (top, bottom), goal in GOALS.items():
        if top not in runs or bottom not in runs:
            continue
        ratios = _per_round(runs, top, bottom, cpu=False)
        verdict = "MET" if ratios and statistics.median(ratios) >= goal else "NOT MET"
        print(
            f"   => {top} / {bottom} = {spread(ratios)} req/s (per round: "
            f"{', '.join(f'{x:.2f}' for x in ratios)});  goal >= {goal}: {verdict}"
        )
    for top, bottom in ((OURS, BARE), (BARE_REDIS, BARE), (BARE, BARE_GUNICORN)):
        if top in runs and bottom in runs:
            print(
                f"   => {top} / {bottom} = {spread(_per_round(runs, top, bottom, False))} req/s, "
                f"CPU per request {bottom} / {top} = "
                f"{spread(_per_round(runs, top, bottom, True))}"
            )
    refused = sum(r.result.refused + r.result.errors for r in runs[OURS])
    if refused:
        print(f"   WARNING: {refused} of our requests were not 202 or failed")


def latency_rounds(
    targets: list[Target], bodies: Path, rates: dict[str, float], args: argparse.Namespace
) -> None:
    """p50/p99 ack latency of every target at the same fixed rates."""
    print("\n2. Ack latency at a fixed rate (wrk, per-connection delay)")
    for label, rate in rates.items():
        runs: dict[str, list[WrkResult]] = {t.name: [] for t in targets}
        for _ in range(args.latency_repeats):
            for target in targets:
                runs[target.name].append(at_rate(target, bodies, rate, args))
        print(f"   at {rate:.0f}/s ({label}):")
        for name, results in runs.items():
            print(
                f"     {name:<16} achieved {spread([r.rate for r in results], 0):<16} req/s, "
                f"p50 {spread([r.p50_ms for r in results])} ms, "
                f"p99 {spread([r.p99_ms for r in results])} ms, "
                f"p99.9 {spread([r.p999_ms for r in results])} ms"
            )
        p99 = [r.p99_ms for r in runs[OURS]]
        ratios = [
            m.p99_ms / b.p99_ms for m, b in zip(runs[OURS], runs[BARE], strict=True) if b.p99_ms
        ]
        held = statistics.median(r.rate for r in runs[OURS]) >= 0.9 * rate
        verdict = "MET" if statistics.median(p99) <= GOAL_P99_MS and held else "NOT MET"
        if not held:
            verdict += " (ours could not hold the rate)"
        print(f"     => p99 ours / bare = {spread(ratios)};  "
              f"ours p99 <= {GOAL_P99_MS:.0f} ms at this rate: {verdict}")  # fmt: skip


def profile_ours(
    service: BenchService, ours: Target, bodies: Path, args: argparse.Namespace
) -> None:
    """py-spy the web processes and diff Redis commandstats over one saturation run."""
    pids = service.python_pids("web")
    client = service.redis.client()
    before = commandstats(client)
    with profiled(pids, args.seconds + 5) as profile:
        result = saturate(ours, bodies, args).result
    rows = commandstats_delta(before, commandstats(client))
    print("\n3. Where intake's time goes (one more saturation run)")
    print_commandstats(rows, result.requests, "intake")
    profile.print(
        "py-spy (GIL holders) of the web processes",
        focus=("receive", "enqueue_event", "load_event"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="each saturation run")
    parser.add_argument("--repeats", type=int, default=4, help="saturation rounds")
    parser.add_argument("--latency-seconds", type=float, default=8.0, help="each fixed-rate run")
    parser.add_argument("--latency-repeats", type=int, default=1, help="fixed-rate rounds")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (saturation)")
    parser.add_argument("--rate-connections", type=int, default=8, help="wrk connections (rate)")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes beside the web (0: none)"
    )
    parser.add_argument("--events", type=int, default=20_000, help="distinct bodies to cycle")
    parser.add_argument("--profile", action="store_true", help="py-spy + commandstats of ours")
    parser.add_argument("--profile-only", action="store_true", help="only the profiled run")
    args = parser.parse_args(argv)

    print("machine:")
    print_machine()
    progress(f"generating {args.events} realistic webhook bodies")
    bodies = write_bodies(traffic(args.events).posts)
    env = {"WORKER_CONCURRENCY": "1"}
    service = BenchService(env)
    bare_processes: list[ServiceProcess] = []
    try:
        progress(f"starting redis, web and {args.workers} worker(s); and the bare baselines")
        service.start(workers=args.workers)
        redis_pid = [service.redis.process.pid] if service.redis.process else []
        ours = Target(OURS, service.base_url, service.webhook_path(), service.python_pids("web"))
        ours.pids += redis_pid
        targets = [ours]
        for name, with_redis, server in (
            (BARE_GUNICORN, False, GUNICORN),
            (BARE, False, OUR_SERVER),
            (BARE_REDIS, True, OUR_SERVER),
        ):
            process, url = start_bare(service, with_redis, server)
            bare_processes.append(process)
            pids = [
                p
                for p in descendants({process.pid})
                if "python" in cmdline(p) or "gunicorn" in cmdline(p)
            ]
            targets.append(Target(name, url, service.webhook_path(), pids))
        targets[-1].pids += redis_pid
        progress("warming up (2 s each)")
        warm = argparse.Namespace(**{**vars(args), "seconds": 2.0})
        for target in targets:
            saturate(target, bodies, warm)
        if not args.profile_only:
            runs = throughput_rounds(targets, bodies, args)
            print_throughput(runs)
            rates = {"half our saturation rate": statistics.median(r.rate for r in runs[OURS]) / 2}
            latency_rounds(targets, bodies, rates, args)
        if args.profile or args.profile_only:
            profile_ours(service, ours, bodies, args)
    finally:
        stop_all(bare_processes, grace=30)
        service.stop()
        bodies.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
