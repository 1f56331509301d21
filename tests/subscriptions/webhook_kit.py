"""Test tools for outbound webhooks: an independent Standard Webhooks verifier and a receiver.

The verifier is written from the Standard Webhooks specification
(https://www.standardwebhooks.com), not from ``workers.webhooks``, so the two
check each other:

* the secret is ``whsec_`` + base64 of the key bytes;
* the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``;
* the signature is base64 HMAC-SHA256 of it, sent as ``v1,<b64>``; the header
  may hold several, separated by spaces (while a rotated secret is honoured);
* signatures are compared in constant time and the timestamp must be within
  a tolerance of now (replay protection).

The receiver is an ``http.server`` on a loopback port in a thread that answers
each POST with the status its ``plan`` chooses and records what it got.

Used by ``tests/subscriptions`` and, loaded by path, by the integration tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    """The message is not signed by any of the given secrets (or is too old/new)."""


def _key(secret: str) -> bytes:
    text = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    return base64.b64decode(text, validate=True)


def expected_signature(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The base64 signature (without ``v1,``) the spec prescribes."""
    content = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    return base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()


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
    at: float

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers as ``plan`` says."""

    def __init__(self, plan: Plan | None = None) -> None:
        self.plan: Plan = plan or always(200)
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._attempts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        webhook_id = headers.get("webhook-id", "")
        with self._lock:
            attempt = self._attempts.get(webhook_id, 0) + 1
            self._attempts[webhook_id] = attempt
            status = self.plan(webhook_id, attempt)
            self._received.append(
                Received(path, headers, body, status, attempt, time.monotonic())
            )
        return status

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
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
