"""Test tools for outbound webhooks: an independent Standard Webhooks verifier and a receiver.

The verifier checks ``core.deliveries.webhooks`` against an independent implementation:
the expected signature comes from ``standardwebhooks``, the reference library
of the Standard Webhooks specification (https://www.standardwebhooks.com):

* the secret is ``whsec_`` + base64 of the key bytes;
* the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``;
* the signature is base64 HMAC-SHA256 of it, sent as ``v1,<b64>``; the header
  may hold several, separated by spaces (while a rotated secret is honoured);
* signatures are compared in constant time and the timestamp must be within
  a tolerance of now (replay protection). Here, not in the library, so a test
  can set "now"; the library's own ``verify`` reads the clock.

The receiver is an ``http.server`` on a loopback port in a thread that answers
each POST with the status its ``plan`` chooses and records what it got.

Used by the delivery tests (tests/kit/deliveries.py) and the integration tests.
"""

from __future__ import annotations

import hmac
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    """The message is not signed by any of the given secrets (or is too old/new)."""


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The base64 signature (without ``v1,``) as the Standard Webhooks reference
    library computes it: an implementation independent of ours. Its payload is
    text, as every outbound body is (UTF-8 JSON)."""
    moment = datetime.fromtimestamp(int(timestamp), tz=UTC)
    return Webhook(secret).sign(msg_id, moment, body.decode("utf-8")).partition(",")[2]


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Raise WebhookVerificationError unless ``body`` with ``headers`` is signed by ``secret``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc}") from exc
    if not timestamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance")
    expected = expected_signature(secret, msg_id, timestamp, body).encode()
    for part in signatures.split(" "):
        version, _, signature = part.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return
    raise WebhookVerificationError("no matching v1 signature")


def verifies(secret: str, headers: Mapping[str, str], body: bytes, **options: Any) -> bool:
    try:
        verify(secret, headers, body, **options)
    except WebhookVerificationError:
        return False
    return True


# -- the receiver -------------------------------------------------------------------

Plan = Callable[[str, int], int]


def always(status: int) -> Plan:
    """Answer every request with ``status``."""
    return lambda _webhook_id, _attempt: status


def failing_first(failures: int, status: int = 500) -> Plan:
    """Answer ``status`` to the first ``failures`` attempts of each webhook-id, then 200."""
    return lambda _webhook_id, attempt: status if attempt <= failures else 200


@dataclass(frozen=True)
class Received:
    """One request the receiver got, and what it answered."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int
    attempt: int  # 1 for the first request with this webhook-id, 2 for the next...
    at: float  # time.monotonic() when answered
    arrived_at: float  # time.time() when the request had arrived

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Receiver:
    """An HTTP server that records POSTs and answers as ``plan`` says.

    ``delay`` (seconds, or a function of the path) holds each answer back,
    e.g. longer than the sender's time box to play a receiver that hangs;
    ``ssl_context`` serves HTTPS. ``peak(path)`` is the most requests it held
    at once.
    """

    def __init__(
        self,
        plan: Plan | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float | Callable[[str], float] = 0.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.plan: Plan = plan or always(200)
        self.delay = delay
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._received: list[Received] = []
        self._attempts: dict[str, int] = {}
        self._active: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died between its headers and its body (a worker
                    # killed mid-attempt): no answer can reach it, so this is no
                    # delivery, and recording it would count an empty one.
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                arrived = time.time()
                receiver._enter(self.path)
                try:
                    delay = receiver.delay
                    pause = delay(self.path) if callable(delay) else delay
                    if pause and receiver._stopping.wait(pause):
                        return
                    status = receiver._answer(self.path, headers, body, arrived)
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    receiver._leave(self.path)

            def log_message(self, format: str, *args: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a sender that gave up on a held answer is expected here

        self.server = Server((host, port), Handler)
        self.server.daemon_threads = True
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _enter(self, path: str) -> None:
        with self._lock:
            self._active[path] = self._active.get(path, 0) + 1
            self._peak[path] = max(self._peak.get(path, 0), self._active[path])

    def _leave(self, path: str) -> None:
        with self._lock:
            self._active[path] -= 1

    def active(self, path: str) -> int:
        """How many requests for ``path`` it holds now."""
        with self._lock:
            return self._active.get(path, 0)

    def peak(self, path: str) -> int:
        """The most requests for ``path`` it held at one time."""
        with self._lock:
            return self._peak.get(path, 0)

    def _answer(self, path: str, headers: dict[str, str], body: bytes, arrived: float) -> int:
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            attempt = self._attempts.get(webhook_id, 0) + 1
            self._attempts[webhook_id] = attempt
            status = self.plan(webhook_id, attempt)
            self._received.append(
                Received(path, headers, body, status, attempt, time.monotonic(), arrived)
            )
        return status

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what arrived ---------------------------------------------------------------

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            found = list(self._received)
        return [r for r in found if path is None or r.path == path]

    def successes(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received(path) if r.ok]

    def by_webhook_id(self, path: str | None = None) -> dict[str, list[Received]]:
        grouped: dict[str, list[Received]] = {}
        for request in self.received(path):
            grouped.setdefault(request.webhook_id, []).append(request)
        return grouped
