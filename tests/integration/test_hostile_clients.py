"""Hostile clients against the Procfile's real web process.

Slowloris: clients that open connections and dribble their headers or their
bodies a byte at a time must not hold the web process's threads or its
connection slots, so an honest PrimeVOX post still gets its 202.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from callstate_harness import TENANT_A, TOKEN_ALL, Launcher, wait_until
from primevox_bodies import Call

# Far more slow clients than the web process has threads (WEB_THREADS=4 below).
SLOW_BODIES = 12
SLOW_HEADERS = 12
# Generous: an honest post is answered in milliseconds; without the server's
# timeouts it waits for the slow clients to finish (minutes).
HONEST_ANSWER_SECONDS = 20.0


class Dribbler:
    """Slow clients: each sends its request a byte every ``interval`` seconds."""

    def __init__(self, port: int, interval: float = 0.5) -> None:
        self.port = port
        self.interval = interval
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.closed_by_server = 0
        self._lock = threading.Lock()

    def start(self, head: bytes, rest: bytes) -> None:
        """Send ``head`` at once, then ``rest`` a byte at a time."""
        thread = threading.Thread(target=self._run, args=(head, rest), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _run(self, head: bytes, rest: bytes) -> None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(head)
            for byte in rest:
                if self.stop.wait(self.interval):
                    return
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    with self._lock:
                        self.closed_by_server += 1
                    return

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)


@pytest.fixture
def dribbler(launcher: Launcher) -> Iterator[Dribbler]:
    slow = Dribbler(launcher.port)
    try:
        yield slow
    finally:
        slow.close()


def test_slow_clients_do_not_stop_an_honest_post(launcher: Launcher, dribbler: Dribbler) -> None:
    """Clients dribbling headers or bodies a byte at a time, three times as many as
    the process has threads, do not keep an honest webhook post from its 202."""
    launcher.start_web(WEB_THREADS="4", WEB_CONCURRENCY="1")
    body = urlencode(Call(TENANT_A).inbound()).encode()
    path = f"/webhooks/primevox/{TOKEN_ALL}"
    for _ in range(SLOW_BODIES):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        dribbler.start(head, body)
    for _ in range(SLOW_HEADERS):
        dribbler.start(b"", f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Slow: {'a' * 400}\r\n".encode())
    time.sleep(2.0)  # every slow client is connected and in the middle of its request

    started = time.monotonic()
    answer = launcher.api.post_event(Call(TENANT_A).inbound())
    waited = time.monotonic() - started

    assert answer.status == 202, answer.text
    assert waited < HONEST_ANSWER_SECONDS


def post_chunked(port: int, path: str, body: bytes, chunk: int = 4096) -> tuple[int, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunks = (body[i : i + chunk] for i in range(0, len(body), chunk))
        connection.request(
            "POST",
            path,
            body=chunks,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            encode_chunked=True,
        )
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_a_chunked_body_over_the_limit_is_refused_whole(launcher: Launcher) -> None:
    """A chunked SMS of 100 KB gets 413, as with Content-Length, and nothing is
    kept; one under the limit is taken whole, its text not cut."""
    api = launcher.start_service()
    path = f"/webhooks/primevox/{TOKEN_ALL}"

    def sms(text: str, conversation: str) -> bytes:
        fields = {
            "eventType": "inboundMessage", "tenantID": TENANT_A, "containerID": "c1",
            "conversationID": conversation, "fromNumber": "+15551230000",
            "toNumber": "+15559870000", "messageText": text,
        }  # fmt: skip
        return urlencode(fields).encode()

    status, _ = post_chunked(launcher.port, path, sms("x" * 100_000, "conv-big"))
    assert status == 413
    status, _ = post_chunked(launcher.port, path, sms("y" * 60_000, "conv-fits"))
    assert status == 202
    messages = "/v1/conversations/conv-fits/messages"
    wait_until(lambda: api.get(messages).status == 200, 20, "the SMS applied")
    [message] = api.get_json(messages)["messages"]
    assert len(message["text"]) == 60_000
    assert api.get("/v1/conversations/conv-big/messages").status == 404
