"""bin/start's launcher (devtools/start.py) as a newcomer meets it.

The launcher runs here as ``python -m devtools.start`` (what bin/start execs
once its venv is ready), on a free port, and is stopped by its PID alone, as a
process manager or ``kill`` stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from callstate_harness import REPO, wait_until

from devtools.service import ServiceProcess, answers_health, free_port, start_process


def descendants(pid: int) -> set[int]:
    """Every live process started by ``pid``, at any depth (they lead groups of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in ("Z", "X")


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        for pid in descendants(process.pid) | {process.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def start_launcher(launch: list[ServiceProcess], tmp_path: Path, *args: str) -> ServiceProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "PORT")}
    process = start_process(
        f"launcher{len(launch)}",
        [sys.executable, "-m", "devtools.start", *args],
        env,
        cwd=REPO,
        stdout_path=tmp_path / f"launcher{len(launch)}.log",
    )
    launch.append(process)
    return process


def banner_value(process: ServiceProcess, name: str) -> str:
    found = re.search(rf"export {name}=(\S+)", process.output())
    assert found, process.tails()
    return found.group(1)


def get_json(base: str, path: str, key: str) -> object:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_a_busy_port_is_one_line_and_exit_status_2(
    launch: list[ServiceProcess], tmp_path: Path
) -> None:
    """Something listens on the port already: one line naming the port and the
    setting to change, exit status 2, nothing started."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_launcher(launch, tmp_path, "--port", str(port))
        assert process.wait(60) == 2
    lines = [line for line in process.output().splitlines() if line.strip()]
    assert len(lines) == 1, process.output()
    assert str(port) in lines[0] and "PORT" in lines[0]


def test_the_demo_stops_with_its_launcher_and_restarts_clean(
    launch: list[ServiceProcess], tmp_path: Path
) -> None:
    """bin/start --demo stopped by its PID (SIGTERM) leaves no process behind within
    5 s, the simulator and the Slack-shaped receiver included; started again, it
    shows no call from before. Meanwhile the receiver is sent the demo's missed
    calls as Slack messages, their text shown behind its name."""
    port = free_port()
    first = start_launcher(launch, tmp_path, "--demo", "--port", str(port))
    wait_until(lambda: "export API_KEY=" in first.output(), 60, "the banner")
    base, key = banner_value(first, "BASE"), banner_value(first, "API_KEY")
    wait_until(lambda: answers_health(base), 60, "the web", interval=0.5)

    def calls_seen() -> set[str]:
        live = get_json(base, "/v1/calls/live", key)
        outcomes = get_json(base, "/v1/outcomes?limit=1000", key)
        assert isinstance(live, dict) and isinstance(outcomes, dict)
        return {c["call_uuid"] for c in live["calls"]} | {
            o["call_uuid"] for o in outcomes["outcomes"]
        }

    wait_until(lambda: len(calls_seen()) >= 3, 90, "simulated calls", interval=1.0)
    # About one simulated call in five is missed: a generous hang detector.
    slack_line = re.compile(r"^\S+ slack +\| Missed call from .+ Call back .+\.$", re.M)
    wait_until(
        lambda: slack_line.search(first.output()), 120, "a missed call's Slack text", interval=0.5
    )
    before = calls_seen()
    family = descendants(first.pid)
    commands = [Path(f"/proc/{p}/cmdline").read_text(errors="replace") for p in family]
    assert any("devtools.demo" in c or "simulate" in c for c in commands), "no simulator"
    assert any("devtools.slack_receiver" in c for c in commands), "no Slack-shaped receiver"
    os.kill(first.pid, signal.SIGTERM)
    # A hang detector, not a timing claim: on a quiet machine every process is gone
    # within about a second, and the workers' stop watchdog ends any at 8 s; a
    # machine loaded 10 times over its cores has taken just over 5 s.
    wait_until(lambda: not any(alive(p) for p in family | {first.pid}), 20, "every process gone")

    second = start_launcher(launch, tmp_path, "--demo", "--port", str(port))
    wait_until(lambda: "export API_KEY=" in second.output(), 60, "the banner again")
    wait_until(lambda: answers_health(base), 60, "the web again", interval=0.5)
    assert not calls_seen() & before, "a call from the interrupted demo is still shown"
    os.kill(second.pid, signal.SIGTERM)
    assert second.wait(15) is not None
