"""The demo's traffic (``bin/start --demo``): wait for the web to answer, then become
the simulator, posting a call or two a second for a day.

A process of its own, started and stopped by the launcher with the web and
the worker (devtools.start), so stopping the launcher stops the traffic too.
Given a Slack-shaped receiver's URL (devtools.slack_receiver), it first
subscribes it to the tenant's missed calls, so the terminal shows the Slack
message of each.

    python -m devtools.demo <base url> <tenant> [<slack-shaped receiver url>]
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

from devtools.service import ServiceError, wait_healthy

# Loopback requests never go through a proxy the environment may name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def subscribe_slack(url: str, tenant: str, receiver: str) -> None:
    """A ``kind: slack`` subscription of the tenant's missed calls to ``receiver``,
    made with the launcher's first API key."""
    key = os.environ["API_KEYS"].split(",")[0].rpartition(":")[0]
    body = {"kind": "slack", "url": receiver, "tenant_id": tenant, "outcomes": ["missed"]}
    request = urllib.request.Request(
        f"{url}/v1/subscriptions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with _OPENER.open(request, timeout=10):
        pass


def main(argv: list[str]) -> int:
    url, tenant, *slack = argv
    try:
        wait_healthy(url, None, timeout=60)
    except ServiceError as exc:
        print(f"demo: the web never answered: {exc}", file=sys.stderr)
        return 1
    try:
        for receiver in slack:
            subscribe_slack(url, tenant, receiver)
    except OSError as exc:
        print(f"demo: the Slack-shaped subscription was refused: {exc}", file=sys.stderr)
        return 1
    print(f"posting simulated calls to {url} for tenant {tenant} (watch the wallboard)", flush=True)
    if slack:
        print("each missed call's Slack message shows on the lines marked slack", flush=True)
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
