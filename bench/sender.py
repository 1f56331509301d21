"""An open-loop sender: webhooks sent at a fixed rate over keep-alive
connections, each one's due and acknowledged times kept; timed GETs."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from devtools.simulator import Post


@dataclass
class Sent:
    """One webhook sent at a fixed rate: when it was due, when it was acknowledged."""

    index: int
    due: float
    acked: float
    status: int
    answer: dict[str, Any]


class KeepAlive:
    """One persistent HTTP/1.1 connection to the service (reconnects on error)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parsed = urlparse(base_url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        for attempt in range(2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, self.timeout)
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def send_at_rate(
    url: str,
    posts: Sequence[Post],
    rate: float,
    senders: int = 8,
    on_ack: Callable[[Sent], None] | None = None,
    max_seconds: float = 120.0,
) -> list[Sent]:
    """POST ``posts`` open-loop at ``rate`` a second from ``senders`` keep-alive
    connections; post i is due at start + i/rate whatever happened before."""
    path = urlparse(url).path
    started = time.monotonic() + 0.2
    results: list[Sent] = []
    lock = threading.Lock()

    def sender(k: int) -> None:
        client = KeepAlive(url)
        try:
            for i in range(k, len(posts), senders):
                due = started + i / rate
                if due - started > max_seconds:
                    return
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                body, content_type = posts[i].body()
                status, raw = client.request("POST", path, body, {"Content-Type": content_type})
                sent = Sent(i, due, time.monotonic(), status, _json_or_empty(raw))
                if on_ack is not None:
                    on_ack(sent)
                with lock:
                    results.append(sent)
        finally:
            client.close()

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 30)
    return sorted(results, key=lambda s: s.index)


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def timed_gets(base_url: str, path: str, count: int, headers: dict[str, str]) -> list[float]:
    """Seconds taken by ``count`` sequential GETs of ``path`` on one keep-alive connection."""
    client = KeepAlive(base_url)
    took: list[float] = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            status, _ = client.request("GET", path, headers=headers)
            took.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
    finally:
        client.close()
    return took


