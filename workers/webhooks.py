"""Outbound webhooks: Standard Webhooks signing, the URL guard, one HTTP attempt.

Standard Webhooks (standardwebhooks.com): the body is signed as
``{webhook-id}.{webhook-timestamp}.{body}`` with HMAC-SHA256 keyed by the
secret's bytes (the base64 after ``whsec_``); ``webhook-signature`` carries
``v1,<base64 signature>``, several separated by spaces while a rotated-out
secret is still honoured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

SECRET_PREFIX = "whsec_"
DELIVERY_TIMEOUT_SECONDS = 10.0


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


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse URLs we must not post to. Raises UnsafeURL saying why.

    Only http(s); and unless ``allow_private``, no host that resolves to a
    loopback, private, link-local, multicast or reserved address, so a
    subscriber cannot make the engine probe the network it runs in.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UnsafeURL("url must be an absolute http:// or https:// URL")
    if parsed.username or parsed.password:
        raise UnsafeURL("url must not carry credentials")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeURL(f"url host does not resolve: {parsed.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UnsafeURL(
                f"url host {parsed.hostname} is a private address; "
                "set SUBSCRIPTION_ALLOW_PRIVATE=1 to allow it"
            )


@dataclass(frozen=True)
class Attempt:
    """How one POST went: a status code, or an error and no status."""

    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could point into our own network: treat it as a failed attempt.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float = DELIVERY_TIMEOUT_SECONDS
) -> Attempt:
    """POST once; never raises for network or HTTP errors."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Attempt(int(response.status), None)
    except urllib.error.HTTPError as exc:
        return Attempt(int(exc.code), None)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(None, f"{type(exc).__name__}: {reason}"[:300])
