"""A live call event or an alert, as the event stream and webhook subscriptions carry it."""

from __future__ import annotations

from marshmallow import fields, validate

from app.calls.schemas import DidSchema, PartySchema, is_outcome_id
from app.web.schema_fields import EXAMPLE_CALL_UUID, EXAMPLE_TENANT, Answer, ex, text, time_field
from statemachine.alerts import ALERT_TYPES
from statemachine.live_events import LIVE_EVENT_TYPES

EVENT_TYPES = LIVE_EVENT_TYPES + ALERT_TYPES
EXAMPLE_EVENT_ID = "1764063012345678-0"


def _party(description: str) -> fields.Nested:
    return fields.Nested(PartySchema, allow_none=True, metadata={"description": description})


class LiveEventSchema(Answer):
    """A live call event (call.started, call.queued, call.ringing, call.answered,
    call.ended: each once per call, in order) or an alert (alert.long_wait,
    alert.service_level, alert.callback_overdue: once when it starts, once with
    resolved true when it ends)."""

    id = fields.String(
        required=True,
        validate=is_outcome_id,
        metadata=ex(EXAMPLE_EVENT_ID, "increasing; resume after it with Last-Event-ID"),
    )
    type = fields.String(
        required=True, validate=validate.OneOf(EVENT_TYPES), metadata=ex("call.ringing")
    )
    tenant_id = text(EXAMPLE_TENANT, nullable=False)
    at = time_field("when it happened (a live event) or was noticed (an alert)")
    call_uuid = fields.String(
        allow_none=True, metadata=ex(EXAMPLE_CALL_UUID, "the call (live events)")
    )
    container_id = fields.String(allow_none=True)
    direction = fields.String(allow_none=True, metadata=ex("inbound"))
    caller = _party("who called")
    did = fields.Nested(DidSchema, allow_none=True, metadata={"description": "the number called"})
    number_dialed = fields.String(allow_none=True)
    queue = fields.String(allow_none=True, metadata=ex("700"))
    ring_group = fields.String(allow_none=True)
    extension = _party("call.ringing: the extension ringing")
    answered_by = _party("call.answered: who answered")
    resolved = fields.Boolean(metadata=ex(False, "alerts: true when the condition ended"))
    value = fields.Float(
        allow_none=True,
        metadata=ex(
            95.0,
            "alerts: the longest wait (s), the service level (0-1) or the oldest open "
            "callback's age (min) when it started or ended",
        ),
    )
    threshold = fields.Float(allow_none=True, metadata=ex(60.0, "alerts: the tenant's setting"))
    count = fields.Integer(
        allow_none=True,
        metadata=ex(2, "alerts: callers waiting, calls offered, or callbacks overdue"),
    )
