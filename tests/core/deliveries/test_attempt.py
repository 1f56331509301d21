"""One outbound attempt (core.deliveries.webhooks.send): where it connects, what it checks.

Real sockets on loopback. Linux routes all of 127.0.0.0/8 to loopback, so two
servers can share a port on 127.0.0.2 (standing for a public address, the
guard is told so) and 127.0.0.1 (a service of our own network). The DNS
answers come from a resolver that changes its answer between calls, plugged
in where the system resolver is asked.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from core.deliveries import webhooks
from core.deliveries.webhooks import RESPONSE_EXCERPT_BYTES, check_url, send
from tests.kit.webhooks import Receiver, always

PUBLIC = "127.0.0.2"  # stands for a public address in these tests
INTERNAL = "127.0.0.1"
NAME = "hooks.example.test"
BODY = b'{"outcome": "missed"}'
HEADERS = {"content-type": "application/json", "webhook-id": "msg_1"}


@pytest.fixture
def public_means_127_0_0_2(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard treats 127.0.0.2 as public, everything else as it always does."""
    real = webhooks.is_public
    monkeypatch.setattr(webhooks, "is_public", lambda address: address == PUBLIC or real(address))


class RebindingDNS:
    """Answers NAME with ``first`` the first time and ``then`` ever after (a DNS
    rebinding attack); passes every other name to the real resolver."""

    def __init__(self, first: str, then: str) -> None:
        self.answers = [first, then]
        self.asked = 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != NAME:
            return self.real(host, port, *args, **kwargs)
        address = self.answers[min(self.asked, 1)]
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]


def two_receivers_one_port() -> tuple[Receiver, Receiver]:
    """A receiver on PUBLIC and another on INTERNAL, on the same port."""
    for _ in range(20):
        public = Receiver(host=PUBLIC)
        try:
            internal = Receiver(host=INTERNAL, port=public.port)
        except OSError:
            public.stop()
            continue
        return public.start(), internal.start()
    raise RuntimeError("no port free on both addresses")


def test_a_name_rebinding_to_loopback_reaches_only_the_address_checked(
    public_means_127_0_0_2: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS answers public to the check, 127.0.0.1 after: the POST goes to the public one."""
    public, internal = two_receivers_one_port()
    dns = RebindingDNS(first=PUBLIC, then=INTERNAL)
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    try:
        url = f"http://{NAME}:{public.port}/hook?x=1"
        port = frozenset({public.port})  # the receivers' test port stands for 443
        result = send(url, BODY, HEADERS, allow_private=False, allow_ports=port)
        assert result.ok, result
        assert internal.received() == []
        [request] = public.received()
        assert request.path == "/hook?x=1"
        assert request.headers["host"] == f"{NAME}:{public.port}"
        assert request.body == BODY and request.webhook_id == "msg_1"
        assert dns.asked == 1  # resolved once; the connection used that answer
        # The next attempt resolves again, sees the loopback answer and is refused.
        refused = send(url, BODY, HEADERS, allow_private=False, allow_ports=port)
        assert refused.status is None and "private address" in (refused.error or "")
        assert internal.received() == []
    finally:
        public.stop()
        internal.stop()


def test_every_address_must_pass_and_the_next_is_tried_when_one_refuses(
    public_means_127_0_0_2: None,
) -> None:
    """A name answering a public and a private address is refused; of several checked
    addresses, one refusing the connection is skipped for the next."""
    with Receiver(host=PUBLIC) as receiver:
        with pytest.raises(webhooks.UnsafeURL, match="private address"):
            check_url(
                f"http://{NAME}:{receiver.port}/", allow_private=False,
                allow_ports=frozenset({receiver.port}),
                resolve=lambda _h, _p: [PUBLIC, INTERNAL],
            )
        closed_port_address = "127.0.0.3"  # nothing listens there on this port
        result = send(
            f"http://{NAME}:{receiver.port}/hook", BODY, HEADERS, allow_private=True,
            resolve=lambda _h, _p: [closed_port_address, PUBLIC],
        )
        assert result.ok, result
        assert len(receiver.received()) == 1


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def https_receiver(ca: trustme.CA, certified_name: str, seen_sni: list[str | None]) -> Receiver:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(certified_name).configure_cert(context)

    def record_sni(_sock: Any, server_name: str | None, _context: Any) -> None:
        seen_sni.append(server_name)

    context.sni_callback = record_sni
    return Receiver(host=INTERNAL, ssl_context=context).start()


def test_https_sends_the_url_host_as_sni_and_checks_the_certificate_for_it(
    ca: trustme.CA,
) -> None:
    """Connected to the checked address, TLS still names (SNI) and verifies the URL's host."""
    seen: list[str | None] = []
    receiver = https_receiver(ca, NAME, seen)
    try:
        result = send(
            f"https://{NAME}:{receiver.port}/hook", BODY, HEADERS, allow_private=True,
            resolve=lambda _h, _p: [INTERNAL], ssl_context=client_context(ca),
        )
        assert result.ok, result
        assert seen == [NAME]
        [request] = receiver.received()
        assert request.headers["host"] == f"{NAME}:{receiver.port}"
    finally:
        receiver.stop()


def test_https_refuses_a_certificate_for_another_name(ca: trustme.CA) -> None:
    """A certificate valid for another name fails the attempt before anything is sent."""
    seen: list[str | None] = []
    receiver = https_receiver(ca, "elsewhere.example.test", seen)
    try:
        result = send(
            f"https://{NAME}:{receiver.port}/hook", BODY, HEADERS, allow_private=True,
            resolve=lambda _h, _p: [INTERNAL], ssl_context=client_context(ca),
        )
        assert result.status is None
        assert "certificate" in (result.error or "").lower() or "hostname" in (
            result.error or ""
        ).lower(), result.error
        assert receiver.received() == []
    finally:
        receiver.stop()


# -- raw servers that misbehave -----------------------------------------------------------


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Start a TCP server on loopback whose connections ``serve(conn)`` handles; gives its port."""
    stopping = threading.Event()
    listeners: list[socket.socket] = []

    def start(serve: Callable[[socket.socket], None]) -> int:
        listener = socket.create_server((INTERNAL, 0))
        listener.settimeout(0.1)
        listeners.append(listener)

        def loop() -> None:
            while not stopping.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                threading.Thread(target=_serve_quietly, args=(serve, conn), daemon=True).start()

        threading.Thread(target=loop, daemon=True).start()
        return int(listener.getsockname()[1])

    yield start
    stopping.set()
    for listener in listeners:
        listener.close()


def _serve_quietly(serve: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        with conn:
            conn.recv(65536)  # the request
            serve(conn)
    except OSError:
        pass


def test_an_answer_dripping_byte_by_byte_is_cut_at_the_time_box(
    raw_server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    """Every read gets a byte in time, yet the whole attempt ends at its time box."""

    def drip(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.25)

    port = raw_server(drip)
    started = time.monotonic()
    result = send(f"http://{INTERNAL}:{port}/", BODY, HEADERS, allow_private=True, timeout=1.0)
    took = time.monotonic() - started
    assert result.status is None and "within 1 s" in (result.error or ""), result
    assert took < 1.0 + 0.5, took


def test_only_a_short_excerpt_of_a_huge_answer_is_read(
    raw_server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    """A 500 with an endless body costs one short read: its start is quoted in the error."""

    def endless(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        while True:
            conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    port = raw_server(endless)
    started = time.monotonic()
    result = send(f"http://{INTERNAL}:{port}/", BODY, HEADERS, allow_private=True, timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert result.status == 500 and not result.ok
    assert result.error == "HTTP 500: " + "x" * RESPONSE_EXCERPT_BYTES


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    raw_server: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    """A 3xx answer fails the attempt; the Location it names gets nothing."""
    with Receiver(always(200)) as elsewhere:

        def redirect(conn: socket.socket) -> None:
            conn.sendall(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                + elsewhere.url().encode()
                + b"\r\nContent-Length: 0\r\n\r\n"
            )

        port = raw_server(redirect)
        result = send(f"http://{INTERNAL}:{port}/", BODY, HEADERS, allow_private=True)
        assert result.status == 307 and not result.ok
        assert elsewhere.received() == []
