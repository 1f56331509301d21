"""How soon a screen-pop arrives: the 202 of a ringAttempt to its ``call.ringing``
at a webhook subscription, against the same 202 to the ringing call in the live
calls, in one run.

    python -m bench.live_events [--calls 200] [--rate 10]

Starts the Procfile's web and one worker on a private redis-server, a receiver
on loopback and a webhook subscription of ``call.ringing`` (and no outcomes).
``--calls`` calls arrive at ``--rate`` a second, each an InboundCall then a
ringAttempt; from the ringAttempt's 202:

* delivery: until its ``call.ringing`` reaches the receiver;
* baseline: until ``GET /v1/calls/live`` shows the call ringing (one poller
  every 10 ms: what a client polling the API as fast as it usefully can sees).

Prints p50, p99 and max of each and the delivery's p99 as a ratio to the
baseline's. The issue's goal: delivery p99 under 1 s on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from bench.common import percentile, print_machine, progress, ratio
from bench.service import Service, wait_for
from statemachine.primevox import EVENTS


class Receiver:
    """Records when each call's call.ringing arrived (time.time())."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                event = json.loads(body)
                if event.get("type") == "call.ringing":
                    receiver.arrived.setdefault(event["call_uuid"], now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pop"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class LivePoller:
    """Notes when each call is first seen ringing in GET /v1/calls/live."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.seen: dict[str, float] = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        request = urllib.request.Request(
            f"{self.service.base_url}/v1/calls/live",
            headers={"Authorization": f"Bearer {self.service.key}"},
        )
        while not self.stopping.is_set():
            with urllib.request.urlopen(request, timeout=30) as answer:
                calls = json.loads(answer.read())["calls"]
            now = time.time()
            for call in calls:
                if call["ringing"]:
                    self.seen.setdefault(call["call_uuid"], now)
            time.sleep(0.01)


def post(service: Service, fields: dict[str, str]) -> float:
    """POST one event; returns when its 202 came (time.time())."""
    request = urllib.request.Request(service.webhook_url, data=urlencode(fields).encode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202, answer.status
    return time.time()


def subscribe(service: Service, url: str) -> None:
    body = json.dumps({"url": url, "outcomes": [], "events": ["call.ringing"]}).encode()
    request = urllib.request.Request(
        f"{service.base_url}/v1/subscriptions",
        data=body,
        headers={"Authorization": f"Bearer {service.key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201, answer.status


def summary(name: str, seconds: list[float]) -> float:
    p99 = percentile(seconds, 99)
    print(
        f"{name}: p50 {percentile(seconds, 50) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms ({len(seconds)} calls)"
    )
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="calls a second")
    options = parser.parse_args()
    print_machine()
    receiver = Receiver()
    service = Service({"SUBSCRIPTION_ALLOW_PRIVATE": "1", "ACCESS_LOG": "off"})
    try:
        progress("starting web and worker")
        service.start()
        subscribe(service, receiver.url)
        poller = LivePoller(service)
        rung: dict[str, float] = {}
        progress(f"{options.calls} calls at {options.rate:g}/s")
        for number in range(options.calls):
            started = time.monotonic()
            ids = {"tenantId": "bench", "containerId": "c1", "callUuid": f"pop-{number}"}
            post(service, EVENTS.sample("InboundCall", ids=ids))
            rung[ids["callUuid"]] = post(service, EVENTS.sample("ringAttempt.extension", ids=ids))
            time.sleep(max(0.0, 1 / options.rate - (time.monotonic() - started)))
        wait_for(lambda: len(receiver.arrived) >= len(rung), 60, "every call.ringing")
        wait_for(lambda: len(poller.seen) >= len(rung), 30, "every ringing call in the API")
        poller.stopping.set()
        delivery = summary("202 -> call.ringing at the receiver",
                           [receiver.arrived[c] - at for c, at in rung.items()])  # fmt: skip
        baseline = summary("202 -> ringing in GET /v1/calls/live (baseline)",
                           [poller.seen[c] - at for c, at in rung.items()])  # fmt: skip
        print(f"delivery p99 / baseline p99: {ratio(delivery, baseline)}; "
              f"goal: under 1 s ({'met' if delivery < 1.0 else 'NOT met'})")  # fmt: skip
    finally:
        service.stop()
        receiver.server.shutdown()


if __name__ == "__main__":
    main()
