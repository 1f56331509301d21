"""Run the Procfile's processes on this machine as the platform runs them.

One launcher for ``bin/start`` (devtools/start.py), the benchmarks
(bench/service.py) and the integration tests (tests/integration/callstate_harness.py):

- the environment a Procfile command needs here (this interpreter's ``python``
  first on ``PATH``, so the Procfile runs what is installed in this environment);
- each process type started as ``bash -c <Procfile command>`` leading a process
  group of its own, so a signal reaches the process and everything it forked,
  as a dyno's processes are signalled together;
- its output kept in log files, or shown on this terminal behind its name;
- waiting for ``GET /healthz`` to answer 200;
- stopping as the platform does: SIGTERM to every process group at once,
  SIGKILL to whatever is left after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"

# Loopback requests never go through a proxy the environment may name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceError(RuntimeError):
    """A process would not start, or stopped while it was awaited."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile_commands(path: Path = PROCFILE) -> dict[str, str]:
    """The process types of a Procfile: ``name -> command line``."""
    commands: dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+?)\s*$", line)
        if match and not line.lstrip().startswith("#"):
            commands[match.group(1)] = match.group(2)
    return commands


def procfile_env(
    settings: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a Procfile process: ``base`` (default: this process's
    environment) and ``settings``, with this interpreter's directory first on
    ``PATH`` so the Procfile's ``python`` is the one running this code."""
    env = dict(os.environ if base is None else base)
    env.update(settings or {})
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return "(no file)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


@dataclass(frozen=True)
class Member:
    """One process of a process group, as /proc tells it."""

    pid: int
    ppid: int
    state: str  # R running, S sleeping, D disk wait, T stopped, Z zombie, ...
    command: str

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def group_members(pgid: int) -> list[Member]:
    """Every process whose process group is ``pgid`` (zombies included)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # exited while we looked
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) != pgid:
            continue
        command = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        members.append(Member(int(entry.name), int(fields[1]), fields[0], command or stat))
    return sorted(members, key=lambda m: m.pid)


def group_gone(pgid: int) -> bool:
    """No process of the process group ``pgid`` is still running.

    A zombie does not count: it has exited, and only waits for its parent (or,
    once orphaned, for PID 1, which on some machines reaps only every second
    or two) to collect its status. ``killpg(pgid, 0)`` succeeds while one is
    left, so asking the kernel alone would take a dead group for a live one.
    """
    if not Path("/proc/self/stat").exists():  # no procfs: ask the kernel
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return all(member.zombie for member in group_members(pgid))


def describe_group(pgid: int) -> str:
    """What every process of group ``pgid`` is doing: its state, and where each of
    its threads stands (``py-spy dump``, Python and native frames) when py-spy is
    installed, else the kernel's wait channel."""
    members = group_members(pgid)
    if not members:
        return f"process group {pgid}: empty"
    lines = [f"process group {pgid}:"]
    spy = shutil.which("py-spy") or _beside_interpreter("py-spy")
    for member in members:
        lines.append(f"  pid {member.pid} (parent {member.ppid}) {member.state}: {member.command}")
        if member.zombie:
            continue
        if spy is not None and "python" in member.command:
            try:
                dump = subprocess.run(
                    [spy, "dump", "--native", "--pid", str(member.pid)],
                    capture_output=True, text=True, timeout=20, check=False,
                )  # fmt: skip
                text = dump.stdout + dump.stderr
            except (OSError, subprocess.TimeoutExpired) as exc:
                text = f"py-spy failed: {exc}"
            lines.extend("    " + row for row in text.splitlines())
        else:
            with contextlib.suppress(OSError):
                wchan = Path(f"/proc/{member.pid}/wchan").read_text()
                lines.append(f"    waiting in: {wchan or '(running)'}")
    return "\n".join(lines)


def _beside_interpreter(name: str) -> str | None:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else None


@dataclass
class ServiceProcess:
    """One started process, leader of its own process group.

    Its output goes to ``stdout_path`` and ``stderr_path`` (the same file when
    both streams share one log), or to this terminal (paths ``None``).
    """

    name: str
    command: str
    popen: subprocess.Popen[bytes]
    stdout_path: Path | None = None
    stderr_path: Path | None = None
    killed: bool = False
    # What the group was doing when it outlived SIGTERM by SLOW_STOP_SECONDS.
    slow_stop_report: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    # The leader's exit as subprocess.Popen tells it (callers written for Popen).
    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill9(self) -> None:
        """SIGKILL the process and every child (its whole process group)."""
        self.killed = True
        self.signal_group(signal.SIGKILL)
        self.popen.wait(10)
        if not wait_group_gone([self], 10):
            raise ServiceError(f"process group of {self.name} did not die")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group; SIGKILL whatever is left after ``grace`` seconds."""
        stop_all([self], grace)

    def logs(self) -> list[Path]:
        return list(dict.fromkeys(p for p in (self.stdout_path, self.stderr_path) if p))

    def tails(self, lines: int = 40) -> str:
        state = "running" if self.running() else f"exited {self.popen.returncode}"
        head = f"--- {self.name} (pid {self.pid}, {state})"
        if self.stdout_path is None:
            return f"{head} output on the terminal"
        if self.stderr_path in (None, self.stdout_path):
            return f"{head} log {self.stdout_path}\n{tail(self.stdout_path, lines)}"
        return (
            f"{head} stdout {self.stdout_path}\n{tail(self.stdout_path, lines)}\n"
            f"--- {self.name} stderr {self.stderr_path}\n{tail(self.stderr_path, lines)}"
        )

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return "\n".join(p.read_text("utf-8", errors="replace") for p in self.logs() if p.exists())


def start_process(
    name: str,
    command: str | Sequence[str],
    env: Mapping[str, str],
    *,
    cwd: Path = ROOT,
    stdout_path: Path | None = None,
    stderr_path: Path | None = None,
) -> ServiceProcess:
    """Start ``command`` (a string runs through ``bash -c``, as the platform runs
    a Procfile line), leading a new process group.

    Output: stdout to ``stdout_path`` and stderr to ``stderr_path`` (appended),
    both to ``stdout_path`` without a ``stderr_path``, or, with no path at all,
    to this terminal, each line behind the process's name.
    """
    argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
    shown = command if isinstance(command, str) else " ".join(command)
    with contextlib.ExitStack() as files:
        stdout: IO[bytes] | int = subprocess.PIPE
        stderr: IO[bytes] | int = subprocess.STDOUT
        if stdout_path is not None:
            stdout = files.enter_context(stdout_path.open("ab"))
            if stderr_path is not None and stderr_path != stdout_path:
                stderr = files.enter_context(stderr_path.open("ab"))
        popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    if stdout_path is None:
        threading.Thread(
            target=_show_lines, args=(name, popen), name=f"{name}-output", daemon=True
        ).start()
        return ServiceProcess(name, shown, popen)
    return ServiceProcess(name, shown, popen, stdout_path, stderr_path or stdout_path)


def start_procfile_process(
    kind: str,
    name: str,
    env: Mapping[str, str],
    *,
    cwd: Path = ROOT,
    procfile: Path = PROCFILE,
    stdout_path: Path | None = None,
    stderr_path: Path | None = None,
) -> ServiceProcess:
    """Start the Procfile's ``kind`` process type (see :func:`start_process`)."""
    command = procfile_commands(procfile)[kind]
    return start_process(
        name, command, env, cwd=cwd, stdout_path=stdout_path, stderr_path=stderr_path
    )


def _show_lines(name: str, popen: subprocess.Popen[bytes]) -> None:
    """Copy a process's output to this terminal, each line behind its name."""
    assert popen.stdout is not None
    for raw in popen.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<9}| {line}\n")
        sys.stdout.flush()


def answers_health(base_url: str, timeout: float = 2.0) -> bool:
    """``GET /healthz`` answers 200."""
    try:
        with _OPENER.open(f"{base_url}/healthz", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def wait_healthy(base_url: str, process: ServiceProcess | None, timeout: float = 30.0) -> None:
    """Wait for ``GET /healthz`` to answer 200; ServiceError if ``process``
    exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not answers_health(base_url):
        if process is not None and not process.running():
            raise ServiceError(f"{process.name} exited while starting:\n{process.tails()}")
        if time.monotonic() >= deadline:
            shown = f":\n{process.tails()}" if process is not None else ""
            raise ServiceError(
                f"timed out after {timeout:g} s waiting for {base_url}/healthz{shown}"
            )
        time.sleep(0.05)


def wait_group_gone(processes: Iterable[ServiceProcess], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for every process group to be empty; True if so."""
    waited = list(processes)
    deadline = time.monotonic() + timeout
    while not all(group_gone(p.pid) for p in waited):
        if time.monotonic() >= deadline:
            return False
        for process in waited:
            process.popen.poll()  # reap leaders so they stop counting
        time.sleep(0.05)
    return True


# A process still running this long after SIGTERM is stuck somewhere: its stacks
# are recorded then, while it is still stuck, before any SIGKILL.
SLOW_STOP_SECONDS = 5.0


def stop_all(processes: Iterable[ServiceProcess], grace: float = 10.0) -> list[ServiceProcess]:
    """SIGTERM every process group at once (as the platform does), SIGKILL what is
    left after ``grace`` seconds; returns the processes that had to be killed.

    A group still running ``SLOW_STOP_SECONDS`` after SIGTERM gets its
    ``slow_stop_report`` (see :func:`describe_group`), so the cause of a slow
    stop is known even when it ends before the grace runs out.
    """
    live = [p for p in processes if not group_gone(p.pid)]
    for process in live:
        process.signal_group(signal.SIGTERM)
    if grace > SLOW_STOP_SECONDS and not wait_group_gone(live, SLOW_STOP_SECONDS):
        for process in live:
            if not group_gone(process.pid):
                process.slow_stop_report = describe_group(process.pid)
        wait_group_gone(live, grace - SLOW_STOP_SECONDS)
    else:
        wait_group_gone(live, grace)
    forced = [p for p in live if not group_gone(p.pid)]
    for process in forced:
        if process.slow_stop_report is None:
            process.slow_stop_report = describe_group(process.pid)
        process.killed = True
        process.signal_group(signal.SIGKILL)
    wait_group_gone(forced, 10)
    for process in live:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.popen.wait(10)
    return forced
