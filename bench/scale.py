"""Scale-out benchmark: 2 web + 3 worker processes on one Redis against 1 + 1.

    python -m bench.scale [--events 15000] [--repeats 2]

Each configuration is a fresh service (private Redis with AOF, web processes
from the Procfile on their own ports, worker processes from the Procfile with
WORKER_CONCURRENCY=1 each). The same realistic traffic (whole simulated calls
of every kind, duplicates included, two tenants) is posted by wrk as fast as
the service takes it, each call's posts to one web (by a hash of its uuid).
Measured per configuration:

* events/s from the first POST to the last event applied, and intake's rate;
* machine CPU busy meanwhile, and CPU per event of web, worker and Redis;
* exactly-once, checked like bench.chaos (without the chaos): after every
  call's outcome is published, each call's stored log holds every event sent
  exactly once, each call has exactly one record per outcome revision, and its
  latest outcome is the one the simulator meant.

Configurations alternate (1+1, 2+3, 1+1, 2+3...) so both see the same machine
load; the result is the ratio 2+3 / 1+1 per pair. Loopback only; bounded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from bench.chaos import Report, all_outcomes, check, get
from bench.common import (
    BenchService,
    CpuMeter,
    applied_total,
    busy_cpu,
    due_timers,
    print_machine,
    progress,
    spread,
    traffic,
    wait_applied,
)
from bench.service import wait_for
from bench.wrk import post_all
from devtools.simulator import SimulatedCall

TENANTS = ("acme", "globex")


@dataclass(frozen=True)
class Config:
    webs: int
    workers: int

    @property
    def name(self) -> str:
        return f"{self.webs} web + {self.workers} worker{'s' if self.workers > 1 else ''}"


@dataclass
class Outcome:
    """One configuration's run."""

    config: Config
    accepted: int
    intake_seconds: float
    applied_seconds: float
    machine_busy: float
    cpu_ms: dict[str, float]
    report: Report
    revised: int

    @property
    def applied_rate(self) -> float:
        return self.accepted / self.applied_seconds

    @property
    def intake_rate(self) -> float:
        return self.accepted / self.intake_seconds


def start(config: Config) -> BenchService:
    service = BenchService({"OUTCOME_GRACE_SECONDS": "1", "WORKER_CONCURRENCY": "1"})
    service.start(workers=config.workers)
    for _ in range(config.webs - 1):
        service.add_web()
    # every worker process runs one event worker and one delivery worker
    wait_for(lambda: service.workers_registered() >= 2 * config.workers, 30, "all workers")
    return service


def run_one(config: Config, args: argparse.Namespace) -> Outcome:
    """Post the traffic, wait until applied and decided, check exactly-once."""
    sim = traffic(args.events, args.seed, TENANTS)
    with start(config) as service:
        client = service.redis.client()
        meter = CpuMeter(
            {
                "web": service.python_pids("web"),
                "worker": service.python_pids("worker"),
                "redis": [service.redis.process.pid] if service.redis.process else [],
            }
        ).start()
        busy0, total0 = busy_cpu()
        applied0 = applied_total(client)
        progress(f"{config.name}: posting {len(sim.posts)} webhooks to {config.webs} web(s)")
        t0 = time.monotonic()
        result, intake_seconds = post_all(
            service.web_urls, service.webhook_path(), sim.posts, client, TENANTS,
            args.threads, args.connections, len(sim.posts) / 200 + 30,
        )  # fmt: skip
        done = wait_applied(client, TENANTS, applied0 + result.accepted, 180, config.name)
        busy1, total1 = busy_cpu()
        used = meter.stop()
        progress(f"{config.name}: applied; waiting for every outcome, then checking")
        report = Report(calls=len(sim.calls), posts=len(sim.posts))
        settle(service, sim.calls, report, args.settle_seconds)
        check(service, sim.calls, report)
        revised = len({r["call_uuid"] for r in all_outcomes(service) if r["revision"] > 1})
    return Outcome(
        config=config,
        accepted=result.accepted,
        intake_seconds=intake_seconds,
        applied_seconds=done - t0,
        machine_busy=(busy1 - busy0) / max(total1 - total0, 1),
        cpu_ms={k: 1000 * v / max(result.accepted, 1) for k, v in used.items()},
        report=report,
        revised=revised,
    )


def settle(
    service: BenchService, calls: list[SimulatedCall], report: Report, timeout: float
) -> None:
    """Wait (bounded) until every call has an outcome, none is live and no
    outcome timer is due (a revision still to come would be one)."""
    wanted = {c.call_uuid for c in calls}
    client = service.redis.client()

    def settled() -> bool:
        if due_timers(client, TENANTS):
            return False
        decided = {r["call_uuid"] for r in all_outcomes(service)}
        return not get(service, "/v1/calls/live")["calls"] and wanted <= decided

    try:
        wait_for(settled, timeout, "every call to have its outcome", interval=1.0)
    except TimeoutError as exc:
        report.problems.append(str(exc))


def print_outcome(outcome: Outcome) -> None:
    r = outcome.report
    cpu = ", ".join(f"{k} {v:.2f} ms" for k, v in outcome.cpu_ms.items())
    print(
        f"  {outcome.config.name:<18} POST->applied {outcome.applied_rate:6.0f} events/s "
        f"(intake {outcome.intake_rate:5.0f}/s), machine CPU busy "
        f"{100 * outcome.machine_busy:3.0f}%, CPU/event: {cpu}"
    )
    verdict = "exactly once" if r.clean else "NOT exactly once"
    print(
        f"  {'':<18} {r.calls} calls: lost {r.lost}, duplicated {r.duplicated}, "
        f"wrong {r.wrong_outcomes} => {verdict}; {outcome.revised} outcomes revised "
        "(events applied after the grace)"
    )
    for problem in r.problems[:5]:
        print(f"  {'':<18} {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=15_000, help="webhooks per configuration")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (split over webs)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (split)")
    parser.add_argument("--settle-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    print("machine:")
    print_machine()
    small, large = Config(1, 1), Config(2, 3)
    pairs: list[tuple[Outcome, Outcome]] = []
    for round_number in range(args.repeats):
        print(f"\nround {round_number + 1}/{args.repeats}", flush=True)
        first = run_one(small, args)
        print_outcome(first)
        second = run_one(large, args)
        print_outcome(second)
        pairs.append((first, second))
        sys.stdout.flush()
    ratios = [b.applied_rate / a.applied_rate for a, b in pairs]
    clean = all(a.report.clean and b.report.clean for a, b in pairs)
    print(f"\n{large.name} / {small.name}, events/s POST->applied, per round: "
          f"{', '.join(f'{x:.2f}' for x in ratios)}")  # fmt: skip
    print(
        f"  => {spread(ratios)}; more throughput: "
        f"{'YES' if statistics.median(ratios) > 1.0 else 'NO'}; exactly-once in every run: "
        f"{'YES' if clean else 'NO'}"
    )
    print(
        f"  intake alone: {large.name} / {small.name} = "
        f"{spread([b.intake_rate / a.intake_rate for a, b in pairs])}"
    )
    print(
        f"  absolute events/s POST->applied: {small.name} "
        f"{spread([a.applied_rate for a, _ in pairs], 0)}, {large.name} "
        f"{spread([b.applied_rate for _, b in pairs], 0)}"
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
