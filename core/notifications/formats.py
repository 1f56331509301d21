"""A notice in each receiver's own format.

* Slack incoming webhooks take ``text`` (notifications, previews, screen
  readers) and ``blocks`` (Block Kit: a header, a section of fields, a context
  line). mrkdwn text escapes ``&``, ``<`` and ``>`` as Slack documents.
* Teams Workflows webhooks take a message whose attachment is an Adaptive Card
  (schema 1.4: a bold TextBlock, a FactSet, a small TextBlock).
* Email: an ``email.message.EmailMessage``, plain text, one line a fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from core.notifications.notices import Notice

# Slack's documented limits: a header's text, a section field's text, fields a section.
SLACK_HEADER_CHARS = 150
SLACK_FIELD_CHARS = 2000
SLACK_FIELDS = 10
ADAPTIVE_CARD_VERSION = "1.4"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_message(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` and Block Kit ``blocks``."""
    fields = [
        {
            "type": "mrkdwn",
            "text": _clip(f"*{label}*\n{_slack_escape(value)}", SLACK_FIELD_CHARS),
        }
        for label, value in notice.facts[:SLACK_FIELDS]
    ]
    return {
        "text": notice.text,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": _clip(notice.title, SLACK_HEADER_CHARS)},
            },
            {"type": "section", "fields": fields},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": _slack_escape(notice.when)}],
            },
        ],
    }


def teams_message(notice: Notice) -> dict[str, Any]:
    """A Teams Workflows message carrying one Adaptive Card."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": ADAPTIVE_CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": notice.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in notice.facts],
            },
            {"type": "TextBlock", "text": notice.text, "wrap": True, "isSubtle": True},
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def email_message(
    notice: Notice, *, sender: str, to: Sequence[str], message_id: str
) -> EmailMessage:
    """A plain-text email; ``message_id`` stays the same on every retry, so a mail
    system that sees one twice can tell."""
    message = EmailMessage()
    message["Subject"] = notice.title
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    width = max(len(label) for label, _ in notice.facts) if notice.facts else 0
    facts = [f"{label + ':':<{width + 1}} {value}" for label, value in notice.facts]
    lines = [notice.text, "", *facts]
    message.set_content("\n".join(lines) + "\n")
    return message
