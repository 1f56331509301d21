"""A thousand tenants, five active: what an idle engine costs Redis, and how soon
an outcome comes, with this code and with an older revision, in one run.

    python -m bench.tenants [--tenants 1000] [--active 5] [--before <git rev>]

For each code (this checkout; with ``--before``, that revision checked out in
a temporary git worktree) it starts the Procfile's web and one worker on a
private redis-server, gives ``--tenants`` tenants one finished call each, waits
until every outcome is decided, then measures:

* idle: Redis commands a second over 10 s with nothing posted (INFO's
  total_commands_processed, less this script's own INFO calls), and the
  command kinds behind them;
* first outcome: ``--active`` tenants post one call each; seconds from the
  last hangup's 202 to the first of their outcomes in ``GET /v1/outcomes``
  (OUTCOME_GRACE_SECONDS=1 included).

Prints each figure and, with ``--before``, its ratio to the older code's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import commandstats, commandstats_delta, progress, ratio
from bench.service import ROOT, Service, wait_for
from devtools.service import ServiceProcess
from statemachine.primevox import EVENTS

IDLE_SECONDS = 10.0


def _pinned(root: Path) -> set[str]:
    lines = (root / "requirements.txt").read_text("utf-8").splitlines()
    return {
        line.split("==")[0].strip().lower().replace("-", "_")
        for line in lines
        if "==" in line and not line.startswith((" ", "#"))
    }


def hide_unpinned(root: Path) -> Path | None:
    """A directory that hides from ``root``'s code the packages this checkout pins
    and ``root`` does not (a module of each name that raises ImportError), so an
    older revision runs as it was deployed: without, say, hiredis, which
    redis-py would otherwise pick up from the shared virtualenv. None if none."""
    extra = sorted(_pinned(ROOT) - _pinned(root))
    if root == ROOT or not extra:
        return None
    directory = Path(tempfile.mkdtemp(prefix="callstate-hidden-"))
    for name in extra:
        (directory / f"{name}.py").write_text(
            f"raise ImportError('{name} is not pinned by this revision')\n", "utf-8"
        )
    progress(f"hidden from {root.name}: {', '.join(extra)}")
    return directory


class CodeService(Service):
    """:class:`Service` running the Procfile of another checkout of the code."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        super().__init__(env)
        self.root = root
        self.env["PYTHONPATH"] = str(root)
        hidden = hide_unpinned(root)
        if hidden is not None:
            self.env["PYTHONPATH"] = f"{hidden}:{root}"

    def start_process(
        self, kind: str, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> ServiceProcess:
        return super().start_process(kind, env, cwd or self.root)


# One answered call, as the registry's keys of its events (statemachine.primevox):
# it rings extension 101, which answers, then hangs up.
ANSWERED_CALL = ("InboundCall", "ringAttempt.extension", "ExtensionAnswered", "HangupCall")


def call_events(tenant: str, call: str) -> list[dict[str, str]]:
    """The four form bodies of one answered call: the registry's samples, with our ids."""
    ids = {"tenantId": tenant, "containerId": "c1", "callUuid": call}
    return [EVENTS.sample(key, ids=ids) for key in ANSWERED_CALL]


def post(service: Service, fields: dict[str, str]) -> None:
    request = urllib.request.Request(service.webhook_url, data=urlencode(fields).encode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202, answer.status


def outcomes(service: Service, query: str = "") -> list[dict[str, Any]]:
    request = urllib.request.Request(
        f"{service.base_url}/v1/outcomes?limit=1000{query}",
        headers={"Authorization": f"Bearer {service.key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        records: list[dict[str, Any]] = json.loads(answer.read())["outcomes"]
        return records


def total_commands(service: Service) -> int:
    return int(service.redis.client().info("stats")["total_commands_processed"])


def measure(root: Path, tenants: int, active: int) -> dict[str, Any]:
    """Start the code at ``root``, seed ``tenants`` tenants, measure idle and first outcome."""
    env = {"OUTCOME_GRACE_SECONDS": "1", "PENDING_CHECK_SECONDS": "3", "WEB_CONCURRENCY": "1"}
    with CodeService(root, env).start() as service:
        names = [f"tenant-{n:04d}" for n in range(tenants)]
        progress(f"{root.name}: seeding {tenants} tenants (one call each)")
        with ThreadPoolExecutor(8) as pool:
            for step in range(4):
                list(
                    pool.map(lambda t, s=step: post(service, call_events(t, f"seed-{t}")[s]), names)
                )
        wait_for(
            lambda: len(outcomes(service, f"&after={'0-0'}")) >= min(tenants, 1000),
            300,
            "every seeded call's outcome",
            interval=1.0,
        )
        time.sleep(5.0)  # let retries, dispatch and sweeps settle
        progress(f"{root.name}: idle for {IDLE_SECONDS:g} s")
        client = service.redis.client()
        stats_before = commandstats(client)
        before = total_commands(service)
        time.sleep(IDLE_SECONDS)
        after = total_commands(service)
        stats_after = commandstats(client)
        idle_per_second = (after - before - 1) / IDLE_SECONDS  # less our first INFO
        kinds = commandstats_delta(stats_before, stats_after)
        progress(f"{root.name}: {active} tenants post a call each")
        last = outcomes(service)[-1]["id"]
        with ThreadPoolExecutor(active) as pool:
            for step in range(4):
                list(
                    pool.map(
                        lambda t, s=step: post(service, call_events(t, f"live-{t}")[s]),
                        names[:active],
                    )
                )
        acked = time.monotonic()
        wait_for(lambda: bool(outcomes(service, f"&after={last}")), 60, "a new outcome", 0.02)
        first_outcome = time.monotonic() - acked
        return {
            "idle_commands_per_second": idle_per_second,
            "first_outcome_seconds": first_outcome,
            "idle_kinds": kinds,
        }


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """``rev`` of this repository in a temporary git worktree."""
    directory = Path(tempfile.mkdtemp(prefix="callstate-before-")) / "code"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(directory), rev],
        check=True,
    )
    try:
        yield directory
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(directory)], check=False
        )


def top_kinds(kinds: list[tuple[str, int, float]], count: int = 5) -> str:
    """The busiest command kinds over the idle window, as calls a second."""
    busiest = sorted(kinds, key=lambda row: -row[1])[:count]
    return ", ".join(f"{name} {calls / IDLE_SECONDS:.1f}/s" for name, calls, _ in busiest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--active", type=int, default=5)
    parser.add_argument("--before", help="an older git revision to measure the same way")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    if args.before:
        with checkout(args.before) as before_root:
            results["before"] = measure(before_root, args.tenants, args.active)
    results["now"] = measure(ROOT, args.tenants, args.active)
    print(f"\n{args.tenants} tenants, {args.active} active; idle over {IDLE_SECONDS:g} s\n")
    print(f"{'code':8} {'idle commands/s':>16} {'first outcome s':>16}  top idle commands")
    for name, figures in results.items():
        print(
            f"{name:8} {figures['idle_commands_per_second']:16.1f} "
            f"{figures['first_outcome_seconds']:16.2f}  {top_kinds(figures['idle_kinds'])}"
        )
    if "before" in results:
        now, before = results["now"], results["before"]
        print(
            f"\nratio now/before: idle commands/s "
            f"{ratio(now['idle_commands_per_second'], before['idle_commands_per_second'])}, "
            f"first outcome "
            f"{ratio(now['first_outcome_seconds'], before['first_outcome_seconds'])}"
        )


if __name__ == "__main__":
    main()
