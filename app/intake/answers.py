"""What the webhook intake answers (app/intake/routes.py), and its routes' OpenAPI description.

The request bodies are documented from the intake's own schemas
(app/intake/openapi_webhooks.py, the ``WebhookEvent`` component).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from app.web.fast_dump import compile_dump
from app.web.rest import RETRY_AFTER, error_doc
from app.web.schema_fields import (
    EXAMPLE_CALL_UUID,
    EXAMPLE_CONVERSATION,
    Answer,
    ex,
    text,
    time_field,
)
from core.store import POOL_WAIT_SECONDS


class AcceptedSchema(Answer):
    """The intake's answer: the event is durably queued."""

    status = fields.String(required=True, validate=validate.OneOf(("accepted",)))
    event_id = text(
        "9b2f3c4d5e6f7a8b9c0d1e2f3a4b5c6d", "the event's id (a hash of its content)", nullable=False
    )
    event_type = text("ringAttempt", "the eventType, as the PBX spells it", nullable=False)
    received_at = time_field("when it was received", nullable=False)
    call_uuid = fields.String(metadata=ex(EXAMPLE_CALL_UUID, "call events"))
    conversation_id = fields.String(metadata=ex(EXAMPLE_CONVERSATION, "SMS events"))


# Planned from the schema (app/web/fast_dump.py): every webhook is answered with it.
dump_accepted = compile_dump(AcceptedSchema())

INTAKE_DESCRIPTION = (
    "PrimeVOX posts every call step and SMS here. Answers 202 only once the event "
    "is durably queued; the same event twice changes nothing; an unknown eventType "
    "is kept without changing any state."
)
INTAKE_BODY = {
    "required": True,
    "description": "One PrimeVOX event, JSON or URL-encoded; the body decides, "
    "whatever the Content-Type says.",
    "content": {
        "application/x-www-form-urlencoded": {"schema": "WebhookEvent"},
        "application/json": {"schema": "WebhookEvent"},
    },
}
INTAKE_ERRORS = {
    400: error_doc("not an event: unparseable, no eventType, no callUuid, no tenant"),
    401: error_doc("unknown webhook token, or a token of another tenant"),
    408: error_doc("the body did not arrive within 10 s of the headers; nothing was queued"),
    413: error_doc("body larger than 64 KiB"),
    429: error_doc(
        "the token posted more than WEBHOOK_RATE_LIMIT events a second (only when "
        "set): nothing was queued, retry after Retry-After seconds",
        headers=RETRY_AFTER,
    ),
    503: error_doc(
        "Redis unavailable, or every Redis connection of this web process stayed "
        f"busy for {POOL_WAIT_SECONDS:g} s: nothing was queued, retry after "
        "Retry-After seconds",
        headers=RETRY_AFTER,
    ),
}


def documented_intake(**doc: Any) -> dict[str, Any]:
    """The ``operation`` arguments of a webhook route: body, answers, and ``doc``."""
    return {
        "tag": "webhook intake",
        "key": False,
        "status": 202,
        "schema": AcceptedSchema,
        "answer": "the event is durably queued and will be applied",
        "errors": INTAKE_ERRORS,
        "requestBody": INTAKE_BODY,
        **doc,
    }
