"""What one drain pass costs: this code against an older revision, in one run.

    python -m bench.batch_cost --before <git rev> [--rounds 3] [--events 3000]

The same realistic events (whole simulated calls) are put into one tenant's
pending sets on a private redis-server, then drained in process by the
shipped drain session (``DrainSession._apply_waiting``, the real engine),
``--small`` events a partition per pass (a few a pass, as at a few hundred
events/s) and ``--large`` (a backlog). For each code and pass size:
worker CPU (process time) per event, Redis CPU per event, round trips (sends
on a connection) per pass, and wall time per event. Each measurement is a
fresh process with that code first on ``sys.path`` (the older one from a
temporary git worktree); rounds alternate the codes. CPU times hold on a
shared machine far better than rates; wall time does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_machine, progress, ratio
from bench.service import ROOT, RedisServer
from bench.tenants import checkout

TENANT = "batch-cost"
FIGURES = ("worker CPU us/event", "redis CPU us/event", "round trips/pass", "wall us/event")


def measure(url: str, events: int, per_pass: int) -> dict[str, float]:
    """Drain ``events`` in passes of ``per_pass`` a partition, with the code on sys.path."""
    import redis
    from redis import connection

    from bench.common import traffic
    from bench.end_to_end import envelopes_of, fill_pending
    from core.queue import events_queue
    from core.settings import Settings
    from core.store import PARTITIONS, Store
    from workers import jobs
    from workers.engine import Engine

    sends = [0]
    original = connection.AbstractConnection.send_packed_command

    def counted(self: Any, command: Any, check_health: bool = True) -> None:
        sends[0] += 1
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    connection.AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
    client = redis.Redis.from_url(url)
    client.flushall()
    envelopes = envelopes_of(traffic(events, 7, (TENANT,)).posts)
    fill_pending(client, envelopes)
    settings = Settings(outcome_grace_seconds=3600.0)  # apply work only, no decisions
    engine = Engine(Store(client, retention_seconds=settings.retention_seconds), settings)
    jobs.BATCH_SIZE = per_pass
    session = jobs.DrainSession(engine, events_queue(client), "batch-cost", "batch-cost")
    session.held = [(TENANT, n) for n in range(PARTITIONS)]

    def redis_cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    redis0, cpu0, sends0, wall0 = redis_cpu(), time.process_time(), sends[0], time.perf_counter()
    passes = 0
    while True:
        session.dirty = set(session.held)
        if not session._apply_waiting():
            break
        passes += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    trips = sends[0] - sends0 - 1  # the pass that found nothing
    n = len(envelopes)
    return dict(
        zip(
            FIGURES,
            (1e6 * cpu / n, 1e6 * (redis_cpu() - redis0) / n, trips / passes, 1e6 * wall / n),
            strict=True,
        )
    )


def run_code(root: Path, url: str, events: int, per_pass: int) -> dict[str, float]:
    """One measurement in a fresh process running the code at ``root`` (this file
    is run by path: the older code may not have it)."""
    code = (
        f"import sys, runpy; sys.path.insert(0, {str(root)!r}); "
        f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--measure", url, str(events), str(per_pass)],
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the older git revision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--small", type=int, default=1, help="events a partition per pass")
    parser.add_argument("--large", type=int, default=25, help="events a partition per pass")
    args = parser.parse_args()
    print_machine()
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with checkout(args.before) as before_root, tempfile.TemporaryDirectory() as scratch:
        server = RedisServer(Path(scratch))
        server.start()
        try:
            roots = {"before": before_root, "now": ROOT}
            for number in range(args.rounds):
                order = ["before", "now"] if number % 2 == 0 else ["now", "before"]
                for size in (args.small, args.large):
                    for name in order:
                        progress(f"round {number + 1}/{args.rounds}: {name}, {size} a partition")
                        got = run_code(roots[name], server.url, args.events, size)
                        results.setdefault((name, size), []).append(got)
        finally:
            server.stop()
    for size in (args.small, args.large):
        print(f"\n{size} event(s) a partition per pass; medians of {args.rounds} rounds")
        print(f"{'figure':22} {'before':>9} {'now':>9}  ratio   per round (before | now)")
        for figure in FIGURES:
            before = [r[figure] for r in results[("before", size)]]
            now = [r[figure] for r in results[("now", size)]]
            b, n = statistics.median(before), statistics.median(now)
            rounds = f"{' '.join(f'{v:.0f}' for v in before)} | {' '.join(f'{v:.0f}' for v in now)}"
            print(f"{figure:22} {b:9.1f} {n:9.1f}  {ratio(n, b)}  {rounds}")


if __name__ == "__main__":
    main()
