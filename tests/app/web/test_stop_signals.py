"""A granian server process passes on one stop signal, however many come.

granian's ``WorkerSignal.set()`` sends on a channel of one slot and blocks,
holding the GIL, while the slot is full: a process that got a second stop
signal before its server took the first froze whole. Each case runs in a
child interpreter, since it installs signal handlers (and may freeze).
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
from granian.server.mp import MPServer

from app.web import serve

# A stop signal sent three times to a process whose server has not yet taken
# the first (nothing receives from the channel here).
THREE_STOPS = """
import os, signal, sys
from {module} import {function} as install
install()
print("installed", flush=True)
sys.stdin.readline()
for _ in range(3):
    os.kill(os.getpid(), signal.SIGTERM)
print("still running", flush=True)
"""
# Three signals and a print take microseconds; a frozen process never ends.
FROZEN_AFTER_SECONDS = 3


def _three_stops(module: str, function: str) -> subprocess.Popen[str]:
    """A child that installs the handler, says so, then signals itself three
    times (its start, slow on a busy machine, is waited for without a clock)."""
    child = subprocess.Popen(
        [sys.executable, "-c", THREE_STOPS.format(module=module, function=function)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "installed"
    child.stdin.write("go\n")
    child.stdin.flush()
    return child


def test_granians_own_handler_freezes_on_a_second_stop_signal() -> None:
    """The reason for the wrapper: if this starts failing, granian fixed it."""
    child = _three_stops("granian._signals", "set_sync_signals")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(FROZEN_AFTER_SECONDS)
    finally:
        child.kill()
        child.wait()


def test_the_wrapper_passes_one_stop_and_carries_on() -> None:
    child = _three_stops("app.web.serve", "first_stop_signal_only")
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    assert out.strip() == "still running"


def test_granians_wsgi_server_process_looks_the_handler_up_where_it_is_replaced() -> None:
    """prepare_server_process replaces ``granian._signals.set_sync_signals``;
    that only works while the WSGI server process imports it when it starts."""
    source = inspect.getsource(MPServer._spawn_wsgi_worker)
    assert "from granian._signals import set_sync_signals" in source
    assert serve.first_stop_signal_only.__name__ in inspect.getsource(serve.prepare_server_process)
