"""The delivery runner's wait ends when a signal handler runs past its deadline.

On CPython 3.11, ``queue.SimpleQueue.get(timeout=...)`` waits for ever when a
signal's handler returns after the deadline passed: it takes the negative time
left for "no timeout". A SIGTERM that found the delivery process just past a
wait's deadline then left it deaf to the stop it had noted. This runs the
runner's own wait in a child process, whose main thread gets the signal.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os, signal, threading, time
    import fakeredis
    from core.settings import Settings
    from core.store import Store
    from workers.deliveries import DeliveryRunner

    runner = DeliveryRunner(Store(fakeredis.FakeRedis()), Settings.from_env({}), threads=1)
    signal.signal(signal.SIGUSR1, lambda *_: time.sleep(1.0))  # past the wait's deadline
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    runner.wait(0.5)
    print("returned")
    os._exit(0)
    """
)


def test_wait_returns_when_a_signal_handler_outlasts_its_deadline() -> None:
    # 20 s is a hang detector, not a timing claim: the wait returns after ~1.2 s.
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=20
    )
    assert done.stdout.strip() == "returned", done.stderr
