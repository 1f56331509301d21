"""Outbound webhooks: Standard Webhooks signing, the URL guard, one HTTP attempt.

Standard Webhooks (standardwebhooks.com): the body is signed as
``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 keyed by the
secret's bytes (the base64 after ``whsec_``); ``webhook-signature`` carries
``v1,<base64 signature>``, several separated by spaces while a rotated-out
secret is still honoured.

An attempt connects to the very address the URL guard checked (resolving the
name once), so a name that answers a public address to the check and
127.0.0.1 to the connect (DNS rebinding) cannot reach our network; the Host
header, TLS SNI and the certificate check still use the URL's host name.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from core.deliveries.addresses import is_public

SECRET_PREFIX = "whsec_"
# The ports a subscription URL may name, unless SUBSCRIPTION_ALLOW_PORTS adds
# more: a receiver is a web server, and any other port is a way to make us talk
# to some other service (Redis on 6379, say) on a public address.
WEB_PORTS = frozenset({80, 443})
# The whole attempt (resolve, connect, send, read the answer) ends within this.
DELIVERY_TIMEOUT_SECONDS = 10.0
# Of a receiver's answer we read at most this much (to quote it in an error).
RESPONSE_EXCERPT_BYTES = 256


class UnsafeURL(ValueError):
    """The URL is not one we will post to."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message with one secret."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(
    secrets_in_force: Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> str:
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_in_force)


def signed_headers(
    secrets_in_force: Sequence[str], webhook_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The headers of one attempt: JSON, and the Standard Webhooks id, time and signature."""
    return {
        "content-type": "application/json",
        "user-agent": "callstate-webhooks/1",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_in_force, webhook_id, timestamp, body),
    }


Resolver = Callable[[str, int], Sequence[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the system resolver's order, once each."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the URL's parts, and the checked addresses to connect to."""

    scheme: str
    host: str  # as in the URL (IDNA-encoded): for Host, SNI and the certificate check
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def check_url(
    url: str,
    *,
    allow_private: bool,
    allow_ports: frozenset[int] = frozenset(),
    resolve: Resolver = system_resolver,
) -> None:
    """Refuse URLs we must not post to. Raises UnsafeURL saying why.

    Only http(s), no credentials; and unless ``allow_private``, only ports 80
    and 443 (and ``allow_ports``), and no host that resolves to an address
    outside the public internet (core/deliveries/addresses.py), so a subscriber
    cannot make the engine probe the network it runs in. (With
    ``allow_private`` the host need not resolve yet.)
    """
    if allow_private:
        _parse(url)
    else:
        resolve_target(url, allow_private=False, allow_ports=allow_ports, resolve=resolve)


def resolve_target(
    url: str,
    *,
    allow_private: bool,
    allow_ports: frozenset[int] = frozenset(),
    resolve: Resolver = system_resolver,
) -> Target:
    """Resolve the URL's host once and check every address (as check_url does);
    the Target connects to those addresses and nowhere else. Raises UnsafeURL."""
    scheme, host, port, path = _parse(url)
    try:
        addresses = tuple(resolve(host, port))
    except (OSError, UnicodeError) as exc:
        raise UnsafeURL(f"url host does not resolve: {host}") from exc
    if not addresses:
        raise UnsafeURL(f"url host does not resolve: {host}")
    if not allow_private and not all(is_public(a) for a in addresses):
        raise UnsafeURL(
            f"url host {host} is a private address; set SUBSCRIPTION_ALLOW_PRIVATE=1 to allow it"
        )
    if not allow_private and port not in WEB_PORTS | allow_ports:
        allowed = ", ".join(str(p) for p in sorted(WEB_PORTS | allow_ports))
        raise UnsafeURL(
            f"url port {port} is not allowed (only {allowed}); SUBSCRIPTION_ALLOW_PORTS lists more"
        )
    return Target(scheme, host, port, path, addresses)


def _parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, IDNA host, port, path and query) of an http(s) URL; raises UnsafeURL."""
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        raise UnsafeURL(f"url is not valid: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UnsafeURL("url must be an absolute http:// or https:// URL")
    if parsed.username or parsed.password:
        raise UnsafeURL("url must not carry credentials")
    try:
        host = parsed.hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeURL(f"url host is not a valid name: {parsed.hostname}") from exc
    path = parsed.path or "/"
    if parsed.query:
        path += "?" + parsed.query
    return parsed.scheme, host, port or (443 if parsed.scheme == "https" else 80), path


@dataclass(frozen=True)
class Attempt:
    """How one POST went: a status code, or an error and no status."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Cutoff:
    """Shuts a connection's socket when the attempt's time is up.

    Socket timeouts bound each read, not their sum: a receiver sending a byte
    every few seconds would hold the attempt for ever. Shutting the socket
    down (never closing it from here: its owner does) ends whatever read or
    write is blocked on it.
    """

    def __init__(self, seconds: float) -> None:
        self.connection: HTTPConnection | None = None
        self.fired = False
        self._timer: threading.Timer | None = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.sock if self.connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        # The timer holds our bound method: while we hold the timer, that is a
        # reference cycle, which reference counting never frees. Left to the
        # cyclic collector, every attempt's timer (its thread's locks, events)
        # waited for a full collection, rare in a long-lived process, so the
        # delivery process's memory grew with the attempts made.
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()


def _connection(
    target: Target, address: str, timeout: float, ssl_context: ssl.SSLContext | None
) -> HTTPConnection:
    """A connection to ``address`` that speaks to the URL's host name."""
    if target.scheme == "https":
        # server_hostname gives SNI and the name the certificate must match
        # (urllib3 checks against it when assert_hostname is unset).
        return HTTPSConnection(
            address,
            target.port,
            timeout=timeout,
            server_hostname=target.host,
            ssl_context=ssl_context,
        )
    return HTTPConnection(address, target.port, timeout=timeout)


def post(
    target: Target,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = DELIVERY_TIMEOUT_SECONDS,
    started: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Attempt:
    """POST once to the target's checked addresses, all within ``timeout`` seconds
    of ``started`` (a time.monotonic(); default now).

    Tries the addresses in order until one connects; follows no redirect;
    reads at most RESPONSE_EXCERPT_BYTES of the answer. Never raises for
    network or HTTP errors.
    """
    deadline = (time.monotonic() if started is None else started) + timeout
    cutoff = _Cutoff(deadline - time.monotonic())
    connection: HTTPConnection | None = None
    try:
        errors: list[str] = []
        for address in target.addresses:
            candidate = _connection(target, address, deadline - time.monotonic(), ssl_context)
            cutoff.connection = candidate
            try:
                candidate.connect()
            except (OSError, urllib3.exceptions.HTTPError) as exc:
                errors.append(f"{address}: {_reason(exc)}")
                candidate.close()
                if cutoff.fired:
                    break
                continue
            connection = candidate
            break
        if connection is None:
            if cutoff.fired:
                return Attempt(None, _timed_out(timeout))
            return Attempt(None, ("connect: " + "; ".join(errors))[:300])
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            preload_content=False,
        )
        response = connection.getresponse()
        status = int(response.status)
        excerpt = (
            b""
            if 200 <= status < 300
            else response.read(RESPONSE_EXCERPT_BYTES, decode_content=False)
        )
        if cutoff.fired:
            return Attempt(None, _timed_out(timeout))
        error = None
        if excerpt.strip():
            error = f"HTTP {status}: " + excerpt.decode("utf-8", "replace").strip()
        return Attempt(status, error)
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError, ValueError) as exc:
        if cutoff.fired:
            return Attempt(None, _timed_out(timeout))
        return Attempt(None, _reason(exc))
    finally:
        cutoff.cancel()
        if connection is not None:
            connection.close()


def send(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool,
    allow_ports: frozenset[int] = frozenset(),
    timeout: float = DELIVERY_TIMEOUT_SECONDS,
    resolve: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> Attempt:
    """Check ``url`` and POST once to the addresses checked; the whole within ``timeout``.

    A refused URL is a failed attempt (its reason as the error). Never raises.
    """
    started = time.monotonic()
    try:
        target = resolve_target(
            url, allow_private=allow_private, allow_ports=allow_ports, resolve=resolve
        )
    except UnsafeURL as exc:
        return Attempt(None, str(exc))
    if time.monotonic() - started >= timeout:
        return Attempt(None, _timed_out(timeout))
    return post(target, body, headers, timeout=timeout, started=started, ssl_context=ssl_context)


def _timed_out(timeout: float) -> str:
    return f"TimeoutError: no complete answer within {timeout:g} s"


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
