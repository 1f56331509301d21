"""Stopping a worker process: the flag its signal handler sets, and a hard deadline.

The platform sends SIGTERM and SIGKILLs whatever is left 30 s later. A worker
stops cleanly well within that (a drain session hands its partitions on, a
delivery attempt gets a few seconds to finish). The watchdog is for the stop
that does not come, whatever holds it up (a Redis that stopped answering in
the middle of a teardown write, a library's thread that will not leave):
past ``STOP_DEADLINE_SECONDS`` it writes where every thread stands and ends
the process itself. Nothing is lost by that: events stay pending and
deliveries stay claimed in Redis until their lease runs out, and then the
reaper or another delivery process takes them up again.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from core.observability import get_logger

log = get_logger("callstate.shutdown")

# Well inside the platform's 30 s, and inside the 10 s our tests allow a
# process group to take after SIGTERM.
STOP_DEADLINE_SECONDS = 8.0
# A process ended by the watchdog exits with this status (EX_TEMPFAIL), so a
# supervisor or a test can tell it from a clean stop.
FORCED_EXIT_STATUS = 75
FORCED_EXIT_MESSAGE = "still running after being asked to stop: exiting now"

SHUTDOWN_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def main_thread_gets_signals() -> Iterator[None]:
    """Start helper threads inside this: they inherit a mask that blocks SIGTERM/SIGINT.

    The kernel hands a process-directed signal to any thread that does not
    block it, but Python runs handlers only in the main thread, and only
    between bytecodes: a SIGTERM taken by the housekeeper or RQ's pubsub thread
    left the main thread asleep in BLMOVE (up to RQ's ~400 s dequeue timeout),
    so the worker ignored a restart until SIGKILL. Blocked in every other
    thread, the signal always interrupts the main thread. Signals arriving while
    blocked here stay pending and are delivered when the old mask returns.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class StopFlag:
    """Set by a SIGTERM handler: the process is asked to stop.

    A plain attribute, not a threading.Event: a second signal can arrive while
    the handler is inside Event.set, whose lock is not re-entrant, and the
    handler would wait on itself forever (seen: a worker that never exited).
    """

    def __init__(self) -> None:
        self.asked_at: float | None = None

    def set(self) -> None:
        if self.asked_at is None:
            self.asked_at = time.monotonic()

    def is_set(self) -> bool:
        return self.asked_at is not None

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.set()


# This process's: set by the first SIGTERM/SIGINT, whichever part of the
# process (RQ's handler, ours before RQ's is installed) takes the signal.
stopping = StopFlag()


def note_stop_requests(flag: StopFlag = stopping) -> None:
    """Make SIGTERM and SIGINT set ``flag`` from now on (the first thing a worker
    process does: a signal before RQ installs its own handlers is kept, not
    fatal, and start-up stops at its next step)."""
    for signum in SHUTDOWN_SIGNALS:
        signal.signal(signum, flag.on_signal)


def still_wanted(exc: Exception) -> None:
    """Between two tries at a Redis that does not answer: go on waiting, unless
    this process was asked to stop meanwhile (then exit, status 0)."""
    log.warning("redis unavailable, retrying", error=str(exc))
    if stopping.is_set():
        raise SystemExit(0)


def start_watchdog(flag: StopFlag, deadline: float = STOP_DEADLINE_SECONDS) -> threading.Thread:
    """Start a daemon thread that ends the process ``deadline`` seconds after ``flag`` is set.

    Start it with shutdown signals blocked (workers.__main__.main_thread_gets_signals):
    the handler that sets the flag must run in the main thread.
    """

    def watch() -> None:
        while flag.asked_at is None or time.monotonic() - flag.asked_at < deadline:
            time.sleep(0.2)
        log.error(FORCED_EXIT_MESSAGE, seconds=deadline, pid=os.getpid())
        # Where each thread stood, for whoever reads the logs: the cause.
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(FORCED_EXIT_STATUS)

    thread = threading.Thread(target=watch, name="callstate-stop-watchdog", daemon=True)
    thread.start()
    return thread
