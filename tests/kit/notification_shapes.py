"""What Slack and Teams document their incoming webhooks to take, as JSON Schemas.

Written from the vendors' documentation, not from our code:

* Slack (api.slack.com/messaging/webhooks, /reference/block-kit/blocks): a
  message is ``text`` (required beside blocks: notifications and screen readers
  use it) and ``blocks``, at most 50; a ``header`` block's text is plain_text
  of at most 150 characters; a ``section`` has ``text`` and/or at most 10
  ``fields``, each a text object of at most 2000 characters; a ``context``
  block holds at most 10 text or image elements. A text object is
  ``{"type": "plain_text"|"mrkdwn", "text": ...}``.
* Teams Workflows ("Post to a channel when a webhook request is received"):
  ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": <Adaptive Card>}]}``;
  the card (adaptivecards.io) is ``type: AdaptiveCard`` with a ``version`` (here
  1.4 or later) and ``body`` elements such as TextBlock (``text``) and FactSet
  (``facts``: ``{"title", "value"}`` strings).

Used by the delivery tests (tests/core/deliveries) and the integration tests.
"""

from __future__ import annotations

from typing import Any

import jsonschema

_TEXT = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {
        "type": {"enum": ["plain_text", "mrkdwn"]},
        "text": {"type": "string", "minLength": 1, "maxLength": 3000},
        "emoji": {"type": "boolean"},
        "verbatim": {"type": "boolean"},
    },
    "additionalProperties": False,
}

SLACK_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["text", "blocks"],
    "properties": {
        "text": {"type": "string", "minLength": 1},
        "blocks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 50,
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {
                            "type": {"const": "header"},
                            "text": {
                                **_TEXT,
                                "properties": {
                                    "type": {"const": "plain_text"},
                                    "text": {"type": "string", "minLength": 1, "maxLength": 150},
                                    "emoji": {"type": "boolean"},
                                },
                            },
                            "block_id": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["type"],
                        "anyOf": [{"required": ["text"]}, {"required": ["fields"]}],
                        "properties": {
                            "type": {"const": "section"},
                            "text": _TEXT,
                            "fields": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 10,
                                "items": {
                                    **_TEXT,
                                    "properties": {
                                        **_TEXT["properties"],  # type: ignore[dict-item]
                                        "text": {"type": "string", "maxLength": 2000},
                                    },
                                },
                            },
                            "block_id": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["type", "elements"],
                        "properties": {
                            "type": {"const": "context"},
                            "elements": {"type": "array", "minItems": 1, "maxItems": 10,
                                         "items": _TEXT},
                            "block_id": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                ]
            },
        },
    },
}

_FACT = {
    "type": "object",
    "required": ["title", "value"],
    "properties": {"title": {"type": "string"}, "value": {"type": "string"}},
    "additionalProperties": False,
}

ADAPTIVE_CARD: dict[str, Any] = {
    "type": "object",
    "required": ["type", "version", "body"],
    "properties": {
        "type": {"const": "AdaptiveCard"},
        "$schema": {"type": "string"},
        # 1.4 or later: 1.4, 1.5, 1.6...
        "version": {"type": "string", "pattern": r"^1\.([4-9]|[1-9][0-9])$"},
        "body": {
            "type": "array",
            "minItems": 1,
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["type", "text"],
                        "properties": {
                            "type": {"const": "TextBlock"},
                            "text": {"type": "string", "minLength": 1},
                            "wrap": {"type": "boolean"},
                            "weight": {"enum": ["Default", "Lighter", "Bolder"]},
                            "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
                            "isSubtle": {"type": "boolean"},
                        },
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "required": ["type", "facts"],
                        "properties": {
                            "type": {"const": "FactSet"},
                            "facts": {"type": "array", "minItems": 1, "items": _FACT},
                        },
                        "additionalProperties": False,
                    },
                ]
            },
        },
    },
}

TEAMS_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["contentType", "content"],
                "properties": {
                    "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                    "contentUrl": {"type": ["string", "null"]},
                    "content": ADAPTIVE_CARD,
                },
                "additionalProperties": False,
            },
        },
    },
}


def check_slack(message: Any) -> None:
    """Raise jsonschema.ValidationError unless ``message`` is a Slack webhook message."""
    jsonschema.validate(message, SLACK_MESSAGE)


def check_teams(message: Any) -> None:
    """Raise jsonschema.ValidationError unless ``message`` is a Teams Adaptive Card message."""
    jsonschema.validate(message, TEAMS_MESSAGE)


def facts_of_card(message: Any) -> dict[str, str]:
    """The card's facts, title -> value."""
    body = message["attachments"][0]["content"]["body"]
    return {f["title"]: f["value"] for b in body if b["type"] == "FactSet" for f in b["facts"]}
