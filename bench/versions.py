"""This code against an older revision, side by side in one run: intake, end to
end and the read API.

    python -m bench.versions --before <git rev> [--rounds 3] [--events 2000]

Both codes run at once, each its Procfile's web and one worker on a private
redis-server (the older revision checked out in a temporary git worktree).
Both get the same seed traffic (whole simulated calls, every kind), then
rounds alternate between them (A B, then B A, ...), each round measuring:

* intake: the same fresh ``--events`` webhooks posted by wrk as fast as the
  service takes them (events/s until Redis holds them all);
* end to end: events/s from the first POST until every one is applied;
* reads: wrk for ``--seconds`` on ``GET /v1/calls/live``, ``GET /v1/outcomes?limit=100``
  and ``GET /v1/calls/<uuid>``: requests/s and p99.

Prints the median of each figure per code and the ratio now/before. Only the
service being measured is busy: the other one idles between its rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Traffic,
    applied_total,
    print_machine,
    progress,
    ratio,
    traffic,
    wait_applied,
)
from bench.service import ROOT, Service
from bench.tenants import CodeService, checkout
from bench.wrk import WRK_DONE_LUA, WrkResult, _lua_string, _temp_lua, post_all, run_wrk

TENANTS = ("acme", "globex")

# wrk: GET one path in a loop with the API key; 200s counted as accepted
# (common's done() reports them).
_GET_LUA = r"""
wrk.method = "GET"
wrk.path = %(path)s
wrk.headers["Authorization"] = %(auth)s
local created = {}
function setup(thread) table.insert(created, thread) end
function init(args) accepted, refused = 0, 0 end
function response(status, headers, body)
  if status == 200 then accepted = accepted + 1 else refused = refused + 1 end
end
"""


@dataclass
class Figures:
    """Every round's figures of one code, by name."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.values[name])


def get_rate(service: Service, path: str, seconds: float) -> WrkResult:
    script = _temp_lua(
        (_GET_LUA + WRK_DONE_LUA)
        % {"path": _lua_string(path), "auth": _lua_string(f"Bearer {service.key}")}
    )
    try:
        result = run_wrk(service.base_url, script, threads=2, connections=8, seconds=seconds)
    finally:
        script.unlink(missing_ok=True)
    if result.refused or not result.accepted:
        raise RuntimeError(f"GET {path}: {result.refused} non-200 answers of {result.requests}")
    return result


def post_and_apply(service: Service, load: Traffic, figures: Figures) -> None:
    """Post every webhook of ``load``; intake and end-to-end events/s."""
    client = service.redis.client()
    target = applied_total(client) + len(load.posts)
    started = time.monotonic()
    _, intake_seconds = post_all(
        [service.base_url], _webhook_path(service), load.posts, client, TENANTS
    )
    applied_at = wait_applied(client, TENANTS, target, 300, "applying")
    intake, end_to_end = len(load.posts) / intake_seconds, len(load.posts) / (applied_at - started)
    figures.add("intake events/s", intake)
    figures.add("end-to-end events/s", end_to_end)
    # The issue 25 goal (>= 0.9): does applying keep up with this code's own intake?
    figures.add("end to end / intake", end_to_end / intake)


def _webhook_path(service: Service) -> str:
    return service.webhook_url.removeprefix(service.base_url)


def measure_reads(service: Service, call_uuid: str, seconds: float, figures: Figures) -> None:
    for label, path in (
        ("live calls", "/v1/calls/live"),
        ("outcomes page", "/v1/outcomes?limit=100"),
        ("one call", f"/v1/calls/{call_uuid}"),
    ):
        result = get_rate(service, path, seconds)
        figures.add(f"GET {label} req/s", result.rate)
        figures.add(f"GET {label} p99 ms", result.p99_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the older git revision")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=2000, help="webhooks posted per round")
    parser.add_argument("--seed-events", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=4.0, help="each read run")
    parser.add_argument(
        "--now-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for this code's service only (e.g. WEBHOOK_RATE_LIMIT=1000 with "
        "--before HEAD measures what that setting costs)",
    )
    args = parser.parse_args()
    print_machine()
    env = {"OUTCOME_GRACE_SECONDS": "1"}
    now_env = dict(pair.split("=", 1) for pair in args.now_env)
    with checkout(args.before) as before_root:
        services: dict[str, Service] = {
            "before": CodeService(before_root, env),
            "now": CodeService(ROOT, {**env, **now_env}),
        }
        figures = {name: Figures() for name in services}
        try:
            roots = {"before": before_root, "now": ROOT}
            for name, service in services.items():
                progress(f"starting {name}: {_describe(roots[name])}")
                service.start()
            seed = traffic(args.seed_events, seed=1, tenants=TENANTS)
            for name, service in services.items():
                progress(f"{name}: seeding {len(seed.posts)} webhooks")
                post_and_apply(service, seed, Figures())
            time.sleep(3.0)  # let the seed calls' outcomes be decided
            one_call = seed.calls[0].call_uuid
            for number in range(args.rounds):
                load = traffic(args.events, seed=100 + number, tenants=TENANTS)
                order = list(services) if number % 2 == 0 else list(reversed(services))
                for name in order:
                    progress(f"round {number + 1}/{args.rounds}: {name}")
                    post_and_apply(services[name], load, figures[name])
                    time.sleep(2.0)  # outcomes of the round decided before the reads
                    measure_reads(services[name], one_call, args.seconds, figures[name])
        finally:
            for service in services.values():
                service.stop()
    print(f"\nmedians of {args.rounds} rounds; ratio now/before (higher is better for rates,")
    print("lower for p99)\n")
    print(f"{'figure':28} {'before':>10} {'now':>10}  ratio")
    for name in figures["now"].values:
        before, now = figures["before"].median(name), figures["now"].median(name)
        print(f"{name:28} {before:10.2f} {now:10.2f}  {ratio(now, before)}")
    # Each round's figures: on a shared machine their spread says what a ratio is worth.
    print("\nper round (before | now):")
    for name in figures["now"].values:
        rounds = [" ".join(f"{v:.2f}" for v in figures[c].values[name]) for c in ("before", "now")]
        print(f"{name:28} {rounds[0]} | {rounds[1]}")


def _describe(root: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()[:60]


if __name__ == "__main__":
    main()
