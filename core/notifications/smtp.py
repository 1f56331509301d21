"""Sending one email through SMTP_URL: one attempt, time-boxed, never raising.

``smtp://`` upgrades with STARTTLS whenever the server offers it, and refuses
to send credentials over a connection that did not; ``smtps://`` is TLS from
the start. The URL is the operator's (a setting), not a subscriber's, so the
subscription URL guard does not apply; the recipients are checked addresses.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from core.deliveries.webhooks import DELIVERY_TIMEOUT_SECONDS, Attempt

SMTP_PORT = 587
SMTPS_PORT = 465


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to send: parsed from SMTP_URL."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parsed = urlsplit(url)
        implicit = parsed.scheme == "smtps"
        return cls(
            host=parsed.hostname or "",
            port=parsed.port or (SMTPS_PORT if implicit else SMTP_PORT),
            implicit_tls=implicit,
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password is not None else None,
        )


def send_email(
    server: SmtpServer,
    message: EmailMessage,
    *,
    timeout: float = DELIVERY_TIMEOUT_SECONDS,
    ssl_context: ssl.SSLContext | None = None,
) -> Attempt:
    """Send ``message`` once. A 250 to the whole is status 250 (ok); a refusal is
    the server's code and reply; no answer is an error without a status."""
    context = ssl_context or ssl.create_default_context()
    client: smtplib.SMTP | None = None
    try:
        if server.implicit_tls:
            client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(server.host, server.port, timeout=timeout)
        client.ehlo()
        if not server.implicit_tls and client.has_extn("starttls"):
            client.starttls(context=context)
            client.ehlo()
        elif not server.implicit_tls and server.username:
            return Attempt(None, "SMTP server offers no STARTTLS: credentials not sent")
        if server.username:
            client.login(server.username, server.password or "")
        refused = client.send_message(message)
        if refused:
            return Attempt(None, f"recipients refused: {', '.join(sorted(refused))}"[:300])
        return Attempt(250, None)
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        reply = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
        # A 5xx is the server's final word, but the schedule still decides: a
        # relay's 5xx for a full mailbox comes back fine the next hour.
        return Attempt(None, f"SMTP {exc.smtp_code}: {reply}"[:300])
    except (OSError, smtplib.SMTPException) as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
