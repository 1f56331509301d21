"""The demo's traffic (``bin/start --demo``): wait for the web to answer, then become
the simulator, posting a call or two a second for a day.

A process of its own, started and stopped by the launcher with the web and
the worker (devtools.start), so stopping the launcher stops the traffic too.

    python -m devtools.demo <base url> <tenant>
"""

from __future__ import annotations

import os
import sys

from devtools.service import ServiceError, wait_healthy


def main(argv: list[str]) -> int:
    url, tenant = argv
    try:
        wait_healthy(url, None, timeout=60)
    except ServiceError as exc:
        print(f"demo: the web never answered: {exc}", file=sys.stderr)
        return 1
    print(f"posting simulated calls to {url} for tenant {tenant} (watch the wallboard)", flush=True)
    # The simulator reports every call it places: too much for the launcher's terminal.
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), sys.stdout.fileno())
    simulate = [
        sys.executable, "-m", "flask", "--app", "app", "simulate", url, "--tenant", tenant,
        "--rate", "1", "--speed", "3", "--duration", "86400", "--sms-rate", "0.05",
    ]  # fmt: skip
    os.execv(sys.executable, simulate)
    return 0  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
