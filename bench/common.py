"""What every benchmark shares: printing, the machine's description, realistic
webhook traffic, the service and its Redis counters (wrk is bench/wrk.py, the
open-loop sender bench/sender.py, profiles bench/profiles.py).

Every figure a benchmark prints is a ratio against a baseline measured in the
same run, on the same (shared, 2-core) machine: absolute numbers move with
whatever else the machine runs, ratios much less.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

import redis

from bench.service import Service, free_port
from core.store import PARTITIONS, STATS_KEY, pending_key, timers_key
from devtools.service import wait_healthy
from devtools.simulator import Post, SimulatedCall, generate_call

_STARTED = time.monotonic()


# -- printing -------------------------------------------------------------------


def progress(message: str) -> None:
    """One line of progress on stderr, with the seconds since the benchmark started."""
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def ratio(value: float, baseline: float) -> str:
    """``value / baseline`` as text ('n/a' when the baseline is zero)."""
    return f"{value / baseline:.2f}" if baseline else "n/a"


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def spread(values: Sequence[float], digits: int = 2) -> str:
    """'median (min-max, n=k)' of repeated measurements."""
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (n=1)"
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}-{max(values):.{digits}f}, n={len(values)})"
    )


def machine() -> dict[str, str]:
    """The machine the figures come from: cores, CPU, Python, Redis, wrk, load."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    redis_version = _first_line(["redis-server", "--version"])
    wrk_version = _first_line(["wrk", "--version"]) if shutil.which("wrk") else "not installed"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "redis": redis_version,
        "wrk": wrk_version,
        "loadavg at start": load,
    }


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def print_machine() -> None:
    for key, value in machine().items():
        print(f"  {key}: {value}")


# -- traffic ------------------------------------------------------------------


@dataclass
class Traffic:
    """Simulated calls and their webhooks in sending order (calls interleaved)."""

    calls: list[SimulatedCall]
    posts: list[Post]

    @property
    def body_bytes(self) -> int:
        return sum(len(p.body()[0]) for p in self.posts)


def traffic(
    events: int, seed: int = 1, tenants: Sequence[str] = ("acme", "globex"), overlap: float = 40.0
) -> Traffic:
    """At least ``events`` realistic webhooks: whole simulated calls (every kind,
    duplicates included), interleaved as ~``overlap`` concurrent calls would be."""
    rng = random.Random(seed)
    calls: list[SimulatedCall] = []
    schedule: list[tuple[float, int, Post]] = []
    at = 0.0
    while len(schedule) < events:
        call = generate_call(rng, rng.choice(list(tenants)), speed=20.0)
        calls.append(call)
        schedule += [(at + p.at, len(schedule) + i, p) for i, p in enumerate(call.posts)]
        at += rng.expovariate(overlap / 3.0)  # a call lasts ~3 s at speed 20
    schedule.sort(key=lambda item: (item[0], item[1]))
    return Traffic(calls, [p for _, _, p in schedule])


def busy_cpu() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


# -- the service and its Redis ------------------------------------------------------


class BenchService(Service):
    """:class:`Service` plus extra web processes on their own ports, and the pids
    of the Python processes behind each process type (for profiles)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.web_urls = [self.base_url]

    def add_web(self) -> str:
        """Start one more web process (Procfile's command) on a port of its own."""
        port = free_port()
        index = len(self.processes.get("web", []))
        metrics = self.workdir / f"metrics-{index}"
        process = self.start_process(
            "web", {"PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        )
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process, 30)
        self.web_urls.append(url)
        return url

    def start(self, workers: int = 1) -> BenchService:
        super().start(workers)
        return self

    def __enter__(self) -> BenchService:
        return self

    def stop(self) -> None:
        """Stop everything, then delete the work directory (AOF, logs) unless
        BENCH_KEEP=1: a benchmark's AOF can be hundreds of MB."""
        super().stop()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)

    def webhook_path(self) -> str:
        return urlparse(self.webhook_url).path

    def python_pids(self, kind: str) -> list[int]:
        """Every Python process under the ``kind`` process groups (gunicorn's and
        RQ's children included)."""
        roots = {p.pid for p in self.live(kind)}
        return [pid for pid in descendants(roots) if _is_python(pid)]


def descendants(roots: set[int]) -> list[int]:
    """The processes below ``roots`` (and the roots), read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                changed = True
    return sorted(found)


def _is_python(pid: int) -> bool:
    try:
        return "python" in os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    return ""


def _stats(client: redis.Redis, prefix: bytes) -> int:
    stats = cast(dict[bytes, bytes], client.hgetall(STATS_KEY))
    return int(sum(float(v) for k, v in stats.items() if k.startswith(prefix)))


def applied_total(client: redis.Redis) -> int:
    """Events the workers counted as applied (every process adds to one Redis hash)."""
    return _stats(client, b"applied:")


def outcomes_total(client: redis.Redis) -> int:
    """Outcome records the workers published."""
    return _stats(client, b"outcomes:")


def pending_total(client: redis.Redis, tenants: Sequence[str]) -> int:
    """Events accepted and not applied yet, over every partition of ``tenants``."""
    with client.pipeline(transaction=False) as pipe:
        for tenant in tenants:
            for number in range(PARTITIONS):
                pipe.zcard(pending_key(tenant, number))
        return int(sum(pipe.execute()))


def wait_applied(
    client: redis.Redis,
    tenants: Sequence[str],
    target: int,
    timeout: float,
    label: str,
    interval: float = 0.02,
) -> float:
    """Wait until ``target`` events were counted applied and nothing is pending;
    returns the monotonic time it happened (raises TimeoutError)."""
    deadline = time.monotonic() + timeout
    last_print = time.monotonic()
    while time.monotonic() < deadline:
        applied = applied_total(client)
        if applied >= target and pending_total(client, tenants) == 0:
            return time.monotonic()
        if time.monotonic() - last_print > 5:
            progress(f"{label}: {applied}/{target} applied")
            last_print = time.monotonic()
        time.sleep(interval)
    raise TimeoutError(f"{label}: not all {target} events applied in {timeout:.0f} s")


def due_timers(client: redis.Redis, tenants: Sequence[str], horizon: float = 600.0) -> int:
    """Calls whose outcome is due within ``horizon`` seconds but not decided yet."""
    with client.pipeline(transaction=False) as pipe:
        for tenant in tenants:
            pipe.zcount(timers_key(tenant), "-inf", time.time() + horizon)
        return int(sum(pipe.execute()))


def rq_jobs_done(client: redis.Redis) -> int:
    """Jobs RQ workers finished successfully (their worker hashes count them)."""
    members = cast(set[bytes], client.smembers("rq:workers"))
    keys = [k for k in members if k.count(b":") == 2]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "successful_job_count")
        return sum(int(v or 0) for v in pipe.execute())


class CpuMeter:
    """CPU seconds used by groups of processes between start() and stop()."""

    def __init__(self, groups: dict[str, Sequence[int]]) -> None:
        self.groups = groups
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self.before = {name: cpu_seconds(pids) for name, pids in self.groups.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {
            name: cpu_seconds(pids) - self.before[name] for name, pids in self.groups.items()
        }
        return self.used

    def per_event(self, events: int) -> str:
        """'web 120 us, worker 80 us, ...' per event."""
        return ", ".join(
            f"{name} {1e6 * used / max(events, 1):.0f} us" for name, used in self.used.items()
        )


def commandstats(client: redis.Redis) -> dict[str, tuple[int, float]]:
    """Redis INFO commandstats: command -> (calls, total microseconds)."""
    info = client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): (int(v["calls"]), float(v["usec"]))
        for name, v in info.items()
        if isinstance(v, dict)
    }


def commandstats_delta(
    before: dict[str, tuple[int, float]], after: dict[str, tuple[int, float]]
) -> list[tuple[str, int, float]]:
    """Commands run between two snapshots, busiest first: (command, calls, server ms)."""
    rows = []
    for name, (calls, usec) in after.items():
        calls0, usec0 = before.get(name, (0, 0.0))
        if calls > calls0:
            rows.append((name, calls - calls0, (usec - usec0) / 1000))
    return sorted(rows, key=lambda r: -r[2])


def print_commandstats(
    rows: list[tuple[str, int, float]], per: int, what: str, top: int = 10
) -> None:
    """The busiest commands per event, and all commands together."""
    per = max(per, 1)
    print(f"  Redis INFO commandstats during {what} (per event: calls, server us):")
    for name, calls, ms in rows[:top]:
        print(
            f"    {name:<14} {calls:>9} calls {ms:>9.1f} ms   "
            f"{calls / per:6.2f}/event {ms * 1000 / per:7.2f} us/event"
        )
    calls, ms = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"    {'all':<14} {calls:>9} calls {ms:>9.1f} ms   "
          f"{calls / per:6.2f}/event {ms * 1000 / per:7.2f} us/event")  # fmt: skip


def cpu_seconds(pids: Sequence[int]) -> float:
    """User+system CPU seconds used so far by ``pids`` (from /proc/<pid>/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total

