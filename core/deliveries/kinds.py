"""Kinds of subscription: how a delivery is rendered and by which transport it goes.

``webhook``  the record itself as JSON, POSTed and signed (Standard Webhooks);
``slack``    a Slack incoming-webhook message, POSTed to its URL;
``teams``    a Teams Workflows message carrying an Adaptive Card, POSTed to its URL;
``email``    a plain-text email to the subscription's ``to``, through SMTP_URL.

Every kind shares the dispatch machinery: a delivery per record and
subscription, its retries, breaker and queue; only the body made at each
attempt and the transport differ. The body is rendered at each attempt from
the stored record (the same bytes each time but for the Date of an email),
in the tenant's time zone as its settings say then.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from core.deliveries.records import Subscription
from core.deliveries.webhooks import Attempt, Resolver, send
from core.notifications.formats import email_message, slack_message, teams_message
from core.notifications.notices import Notice, notice_for
from core.notifications.smtp import SmtpServer, send_email
from core.settings import Settings

Kind = Literal["webhook", "slack", "teams", "email"]
KINDS: tuple[str, ...] = get_args(Kind)
# Kinds that POST to the subscription's URL (the URL guard applies to them).
URL_KINDS = frozenset({"webhook", "slack", "teams"})


def kind_of(subscription: Mapping[str, Any]) -> str:
    """A subscription's kind; those made before kinds existed are webhooks."""
    return str(subscription.get("kind") or "webhook")


@dataclass(frozen=True)
class Rendered:
    """What one attempt sends: a body to POST, or an email."""

    body: bytes
    email: EmailMessage | None = None


def render(
    subscription: Subscription,
    record_json: str,
    *,
    zone: ZoneInfo | None,
    settings: Settings,
    message_id: str,
) -> Rendered:
    """The body of one attempt to ``subscription`` of the record ``record_json``."""
    kind = kind_of(subscription)
    if kind == "webhook":
        return Rendered(record_json.encode())
    notice: Notice = notice_for(json.loads(record_json), zone or ZoneInfo("UTC"))
    if kind == "slack":
        return Rendered(_json(slack_message(notice)))
    if kind == "teams":
        return Rendered(_json(teams_message(notice)))
    email = email_message(
        notice, sender=settings.smtp_from, to=subscription.get("to") or [], message_id=message_id
    )
    return Rendered(email.as_bytes(), email)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def transport(
    url: str | None,
    rendered: Rendered,
    headers: Mapping[str, str],
    settings: Settings,
    *,
    timeout: float,
    resolve: Resolver,
    ssl_context: ssl.SSLContext | None,
) -> Attempt:
    """Make one attempt: POST to the URL (checked by the URL guard), or send the
    email through SMTP_URL. Never raises."""
    if rendered.email is not None:
        if not settings.smtp_url:
            return Attempt(None, "SMTP_URL is not set: email cannot be sent")
        return send_email(SmtpServer.from_url(settings.smtp_url), rendered.email, timeout=timeout)
    return send(
        url or "",
        rendered.body,
        headers,
        allow_private=settings.subscription_allow_private,
        allow_ports=settings.subscription_allow_ports,
        timeout=timeout,
        resolve=resolve,
        ssl_context=ssl_context,
    )
