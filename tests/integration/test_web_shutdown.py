"""The web process leaves promptly on SIGTERM, even while a server process is
still loading the app.

The platform sends SIGTERM to the whole process group at every deploy, and a
server process (re)started moments before is then still importing the app.
granian's server processes are forks of its main process, so until a process
has installed its own handler it runs the main process's: a SIGTERM there set a
flag in a copy of the main process's state and was lost, and the process, once
loaded, waited for a signal that had already come, until the main process
killed it GRACEFUL_SECONDS (25 s) later. app.web.serve gives each new server
process the default action for SIGTERM until granian installs its own.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from callstate_harness import RedisServer, wait_until
from slow_loading_app import LOAD_SECONDS

from app.web.serve import GRACEFUL_SECONDS
from devtools.service import free_port, procfile_env, start_process, wait_group_gone

HERE = Path(__file__).resolve().parent
# Far below GRACEFUL_SECONDS, the wait the lost signal cost, and below the
# harness's 10 s limit before SIGKILL; above a loaded machine's slow exit.
PROMPT_SECONDS = 8.0


def _env(
    redis_server: RedisServer, tmp_path: Path, port: int, mark: Path
) -> dict[str, str]:
    """One server process serving slow_loading_app."""
    return procfile_env(
        {
            "PORT": str(port),
            "REDIS_URL": redis_server.url,
            "WEB_CONCURRENCY": "1",
            "LOADING_MARK_FILE": str(mark),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        }
    )


def test_sigterm_while_a_server_process_loads_the_app_stops_the_web_promptly(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    mark = tmp_path / "loading"
    web = start_process(
        "web",
        [sys.executable, "-m", "app.web.serve", "slow_loading_app:app"],
        _env(redis_server, tmp_path, free_port(), mark),
        stdout_path=tmp_path / "web.log",
    )
    try:
        wait_until(mark.exists, 60, "a server process to begin loading the app")
        began = time.monotonic()
        web.signal_group(signal.SIGTERM)
        gone = wait_group_gone([web], GRACEFUL_SECONDS + 5)
        took = time.monotonic() - began
    finally:
        web.stop(grace=1)
    log = web.output()
    assert gone, f"the web outlived SIGTERM by {GRACEFUL_SECONDS + 5} s\n{log}"
    assert took < PROMPT_SECONDS, (
        f"the web took {took:.1f} s to leave (the app loads in {LOAD_SECONDS} s)\n{log}"
    )

