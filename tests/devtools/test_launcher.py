"""devtools.service starts processes as the platform does and stops them as it does."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from devtools.service import (
    ServiceProcess,
    group_gone,
    procfile_commands,
    procfile_env,
    start_process,
    stop_all,
)

# A shell that leaves a child behind in its group, then ignores SIGTERM or not.
STUBBORN = "trap '' TERM; sleep 60 & echo started; echo oops >&2; while :; do sleep 0.1; done"
POLITE = "sleep 60 & echo started; wait"


def started(process: ServiceProcess) -> None:
    deadline = time.monotonic() + 10
    while "started" not in process.output():
        assert time.monotonic() < deadline, process.tails()
        time.sleep(0.02)


def test_procfile_commands_are_read_as_the_platform_reads_them(tmp_path: Path) -> None:
    """Process types by name; comments and other lines are no process type."""
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# web: no\nweb: exec python -m app.web.serve  \nrelease-1: true\nnot a type\n"
    )
    assert procfile_commands(procfile) == {
        "web": "exec python -m app.web.serve",
        "release-1": "true",
    }


def test_the_procfile_runs_this_interpreter() -> None:
    """This interpreter's directory comes first on PATH; settings win over the base."""
    env = procfile_env({"PORT": "5001"}, base={"PATH": "/usr/bin", "PORT": "1"})
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert env["PORT"] == "5001"


def test_logs_are_kept_apart_or_together(tmp_path: Path) -> None:
    """stdout and stderr to their own files, or both to one."""
    apart = start_process(
        "apart", "echo out; echo err >&2", {}, stdout_path=tmp_path / "a.out",
        stderr_path=tmp_path / "a.err",
    )  # fmt: skip
    together = start_process("together", "echo out; echo err >&2", {}, stdout_path=tmp_path / "t")
    assert apart.wait(10) == 0 and together.wait(10) == 0
    assert (tmp_path / "a.out").read_text() == "out\n"
    assert (tmp_path / "a.err").read_text() == "err\n"
    assert (tmp_path / "t").read_text() == "out\nerr\n"
    assert together.tails().count("out") == 1


def test_stop_terms_every_group_then_kills_what_is_left(tmp_path: Path) -> None:
    """SIGTERM reaches each process and its children; what ignores it is killed
    after the grace period; every group is empty afterwards."""
    polite = start_process("polite", POLITE, {}, stdout_path=tmp_path / "polite.log")
    stubborn = start_process("stubborn", STUBBORN, {}, stdout_path=tmp_path / "stubborn.log")
    started(polite)
    started(stubborn)
    began = time.monotonic()
    forced = stop_all([polite, stubborn], grace=3.0)
    assert forced == [stubborn]
    assert time.monotonic() - began < 10
    assert group_gone(polite.pid) and group_gone(stubborn.pid)
    assert "oops" in stubborn.output()


def test_kill9_takes_the_whole_group(tmp_path: Path) -> None:
    process = start_process("victim", STUBBORN, {}, stdout_path=tmp_path / "victim.log")
    started(process)
    process.kill9()
    assert process.killed and group_gone(process.pid) and process.returncode is not None


def test_without_a_log_each_line_shows_behind_the_name(capfd: pytest.CaptureFixture[str]) -> None:
    """bin/start's terminal: each line of output, stdout's and stderr's, behind its
    process's name."""
    process = start_process("web", "echo one; echo two >&2", {})
    assert process.wait(10) == 0
    # The relay thread ends at the pipe's end: wait for it rather than a clock
    # (a loaded machine took over 5 s to show the second line).
    for relay in [t for t in threading.enumerate() if t.name == "web-output"]:
        relay.join(60)
    lines = capfd.readouterr().out.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["web      | one", "web      | two"]


def test_a_process_that_already_exited_is_no_trouble_to_stop() -> None:
    process = start_process("quick", "true", {})
    process.wait(10)
    assert stop_all([process], grace=0.1) == []
