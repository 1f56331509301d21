"""What the subscriptions routes take and answer (app/subscriptions/routes.py).

A subscription and a delivery are shown through the answer schemas below:
only the fields they name leave the service, so the stored secrets (and any
field added to the stored records later) stay internal.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import (
    EXCLUDE,
    ValidationError,
    fields,
    pre_dump,
    validate,
    validates_schema,
)

from app.calls.schemas import OUTCOME_KINDS, OutcomeRecordSchema
from app.events.schemas import EVENT_TYPES
from app.web.pages import PageArgs, page_next
from app.web.rest import JsonBody
from app.web.schema_fields import (
    EXAMPLE_CALL_UUID,
    EXAMPLE_DELIVERY,
    EXAMPLE_OUTCOME_ID,
    EXAMPLE_SUBSCRIPTION,
    EXAMPLE_TENANT,
    Answer,
    ex,
    text,
    time_field,
    values,
)
from core.deliveries.breaker import BreakerState
from core.deliveries.kinds import KINDS, URL_KINDS
from core.deliveries.records import DELIVERY_STATUSES
from statemachine.live_events import LIVE_EVENT_TYPES

ROTATION_GRACE_SECONDS = 24 * 3600
MAX_RECIPIENTS = 20


# -- request bodies ----------------------------------------------------------------------


class SubscriptionSchema(JsonBody):
    invalid = "invalid subscription"

    class Meta:
        unknown = EXCLUDE

    kind = fields.String(
        load_default="webhook",
        validate=validate.OneOf(KINDS),
        metadata=ex("webhook", "webhook (signed JSON records), slack, teams or email"),
    )
    url = fields.Url(
        load_default=None,
        schemes={"http", "https"},
        require_tld=False,
        metadata={"description": "where it posts: required for webhook, slack and teams"},
    )
    to = fields.List(
        fields.Email(),
        load_default=None,
        validate=validate.Length(min=1, max=MAX_RECIPIENTS),
        metadata=ex(["supervisor@example.com"], "email: the addresses its messages go to"),
    )
    outcomes = fields.List(
        fields.String(validate=validate.OneOf(OUTCOME_KINDS)),
        load_default=None,
        metadata={
            "description": "outcome kinds delivered; absent: all; [] beside `events`: none "
            "(alone: all)"
        },
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        load_default=None,
        metadata=ex(
            ["call.ringing", "alert.long_wait"],
            "live call events (webhook subscriptions only) and alerts delivered; absent: none",
        ),
    )
    tenant_id = fields.String(
        load_default=None,
        validate=[
            validate.Length(min=1, max=200),
            # "*" stands for every tenant: an admin key leaves tenant_id out for that.
            validate.NoneOf(["*"], error="tenant_id must name one tenant (leave it out for all)"),
        ],
    )
    max_in_flight = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=100),
        metadata={
            "example": 4,
            "description": "attempts to it under way at once, per delivery process "
            "(default DELIVERY_MAX_IN_FLIGHT)",
        },
    )

    @validates_schema
    def _where_it_goes(self, data: dict[str, Any], **kwargs: Any) -> None:
        """A URL for the kinds that post, addresses for email, and not the other."""
        if data["kind"] in URL_KINDS:
            if not data["url"]:
                raise ValidationError(f"required for kind {data['kind']}", "url")
            if data["to"]:
                raise ValidationError("only for kind email", "to")
        else:
            if not data["to"]:
                raise ValidationError("required for kind email", "to")
            if data["url"]:
                raise ValidationError("not for kind email", "url")
        live = sorted(set(data["events"] or ()) & set(LIVE_EVENT_TYPES))
        if live and data["kind"] != "webhook":
            raise ValidationError(f"{live[0]} goes to webhook subscriptions only", "events")


class RotateSchema(JsonBody):
    invalid = "invalid rotation"

    class Meta:
        unknown = EXCLUDE

    grace_seconds = fields.Integer(
        load_default=ROTATION_GRACE_SECONDS, validate=validate.Range(min=0, max=30 * 24 * 3600)
    )


# -- answers -----------------------------------------------------------------------------


class BreakerSchema(Answer):
    """The subscription's circuit breaker: open pauses its deliveries until a probe."""

    state = fields.String(
        required=True,
        validate=validate.OneOf(values(BreakerState)),
        metadata=ex("closed", "closed: delivering; open: paused; half_open: a probe is out"),
    )
    consecutive_failures = fields.Integer(
        required=True, validate=validate.Range(min=0), metadata=ex(0, "failed attempts in a row")
    )
    opened_at = time_field("when it opened; null while closed")
    next_probe_at = time_field("while open: when the next due delivery goes out as a probe")
    last_error = text(None, "why the last failed attempt failed")


class SubscriptionAnswer(Answer):
    """An outbound webhook subscription (its secrets are never shown again)."""

    id = text(EXAMPLE_SUBSCRIPTION, nullable=False)
    tenant_id = text(EXAMPLE_TENANT, "the tenant, or * for every tenant", nullable=False)
    kind = fields.String(
        dump_default="webhook", validate=validate.OneOf(KINDS), metadata=ex("webhook")
    )
    url = fields.String(
        required=True,
        allow_none=True,
        metadata={
            **ex("https://example.com/hooks/callstate", "null for kind email"),
            "format": "uri",
        },
    )
    to = fields.List(
        fields.String(),
        allow_none=True,
        dump_default=None,
        metadata=ex(None, "kind email: the addresses its messages go to"),
    )
    outcomes = fields.List(
        fields.String(validate=validate.OneOf(OUTCOME_KINDS)),
        required=True,
        allow_none=True,
        metadata=ex(["missed"], "the outcome kinds delivered; null for all"),
    )
    events = fields.List(
        fields.String(validate=validate.OneOf(EVENT_TYPES)),
        allow_none=True,
        dump_default=None,
        metadata=ex(None, "the live call events and alerts delivered; null for none"),
    )
    enabled = fields.Boolean(
        required=True, metadata=ex(True, "false once a receiver answered 410 Gone")
    )
    disabled_reason = fields.String(metadata=ex("receiver answered 410 Gone"))
    created_at = time_field("when it was made", nullable=False)
    max_in_flight = fields.Integer(
        required=True,
        validate=validate.Range(min=1),
        metadata=ex(4, "attempts to it under way at once, per delivery process"),
    )
    breaker = fields.Nested(BreakerSchema, required=True)


class SubscriptionWithSecretAnswer(SubscriptionAnswer):
    """A subscription as made or rotated: the one time its new secret is shown."""

    secret = fields.String(
        required=True,
        validate=validate.Regexp(r"^whsec_[A-Za-z0-9+/=]+$"),
        metadata=ex("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "Standard Webhooks signing secret"),
    )


class DeliverySchema(Answer):
    """One outcome record's delivery to one subscription, with its attempts."""

    id = text(EXAMPLE_DELIVERY, "one per subscription, call and revision", nullable=False)
    webhook_id = text(
        "msg_2b7e151628aed2a6abf7158809cf4f3c",
        "the webhook-id header, the same on every retry",
        nullable=False,
    )
    subscription_id = text(EXAMPLE_SUBSCRIPTION, nullable=False)
    tenant_id = text(EXAMPLE_TENANT, nullable=False)
    outcome_id = text(EXAMPLE_OUTCOME_ID, nullable=False)
    call_uuid = text(EXAMPLE_CALL_UUID, nullable=False)
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(OUTCOME_KINDS + EVENT_TYPES),
        metadata=ex("missed", "the outcome, or the type of the live event or alert"),
    )
    type = fields.String(
        dump_default="outcome",
        validate=validate.OneOf(("outcome", *EVENT_TYPES)),
        metadata=ex("outcome", "what it carries: an outcome record, a live event or an alert"),
    )
    revision = fields.Integer(required=True, validate=validate.Range(min=1), metadata=ex(1))
    status = fields.String(
        required=True, validate=validate.OneOf(DELIVERY_STATUSES), metadata=ex("succeeded")
    )
    attempts = fields.Integer(required=True, validate=validate.Range(min=0), metadata=ex(1))
    last_status = fields.Integer(
        required=True, allow_none=True, metadata=ex(200, "the receiver's last HTTP status")
    )
    last_error = text(None, "why the last attempt failed")
    created_at = time_field("when the delivery was made", nullable=False)
    last_attempt_at = time_field("the last attempt")
    next_attempt_at = time_field("the next attempt, if one is due")
    delivered_at = time_field("when a receiver took it (2xx)")
    payload = fields.Nested(
        OutcomeRecordSchema,
        required=True,
        allow_none=True,
        metadata={"description": "the outcome record posted; null for a live event or alert"},
    )
    event = fields.Dict(
        allow_none=True,
        dump_default=None,
        metadata={"description": "the live event or alert posted (see docs/subscriptions.md)"},
    )

    @pre_dump
    def _payload(self, delivery: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """The body posted is stored as its JSON text; the API shows it as an object."""
        posted = json.loads(delivery["body"])
        if delivery.get("type", "outcome") != "outcome":
            return {**delivery, "payload": None, "event": posted}
        return {**delivery, "payload": posted}


class SubscriptionListSchema(Answer):
    subscriptions = fields.List(fields.Nested(SubscriptionAnswer), required=True)


class DeliveryListSchema(Answer):
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)
    next = page_next()


class ReplayedSchema(Answer):
    delivery = fields.Nested(DeliverySchema, required=True)


class DeliveryArgs(PageArgs):
    status = fields.String(
        validate=validate.OneOf(
            DELIVERY_STATUSES, error=f"status must be one of {', '.join(DELIVERY_STATUSES)}"
        ),
        metadata={"description": "only deliveries in this status"},
    )
