"""What the supervisor's routes answer and take (app/supervisor/routes.py): the extension
board, a call's timeline and the callback items, dumped and documented by these
schemas (the streams send the same snapshots as the lists)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_load, validate

from app.web.pages import page_cursor, page_next, page_size
from app.web.rest import TOO_MANY_STREAMS, JsonBody, sse_event
from app.web.schema_fields import EXAMPLE_CALL_UUID as EXAMPLE_CALL
from app.web.schema_fields import (
    EXAMPLE_TIME,
    Answer,
    Count,
    Number,
    Timestamp,
    ex,
    tz_arg,
    values,
)
from statemachine.callbacks import CALLBACK_REASONS, CallbackStatus, ResolutionKind
from statemachine.extensions import ExtensionState
from statemachine.outcome import MissedReason
from statemachine.timeline import StepKind

EXAMPLE_CALLBACK = "cb_4e1f0c9a2b7d3e5f6a8b9c0d"
MAX_NOTE = 500
STATUSES = values(CallbackStatus)
STEP_KINDS = values(StepKind)


def _text(example: Any, description: str, *, nullable: bool = False) -> fields.String:
    return fields.String(required=True, allow_none=nullable, metadata=ex(example, description))


def _time(description: str, *, nullable: bool = False) -> Timestamp:
    return Timestamp(
        required=True, allow_none=nullable, metadata=ex(EXAMPLE_TIME, description + " (UTC)")
    )


def _count(description: str) -> Count:
    return Count(required=True, validate=validate.Range(min=0), metadata=ex(3, description))


class ExtensionSchema(Answer):
    """One extension on the board: what it does now and its figures for today (UTC)."""

    tenant_id = _text("acme", "whose extension")
    number = _text("101", "the extension number")
    name = _text("Alice Émond", "the name its latest call gave it (may be empty)")
    state = fields.String(
        required=True,
        validate=validate.OneOf(
            values((ExtensionState.RINGING, ExtensionState.ON_CALL, ExtensionState.IDLE))
        ),
        metadata=ex("on_call", "ringing, on_call (talking or dialling) or idle"),
    )
    since = _time("when the current state began (idle: when its last leg ended)", nullable=True)
    call_uuid = _text(
        EXAMPLE_CALL, "the call it rings in or is on now; null when idle", nullable=True
    )
    calls = fields.List(
        fields.String(),
        required=True,
        metadata=ex([EXAMPLE_CALL], "every call it rings in or is on now, oldest first"),
    )
    answered = _count("calls offered to it that it answered today")
    missed = _count("rings it let go unanswered today, while nobody else answered")
    talk_seconds = Number(
        required=True, metadata=ex(312.5, "talk of its legs that ended today, both directions")
    )
    outbound = _count("calls it placed today")


class ExtensionBoardSchema(Answer):
    """The extension board."""

    extensions = fields.List(fields.Nested(ExtensionSchema), required=True)
    server_time = _time("when the board was read")
    timezone = fields.String(
        allow_none=True,
        metadata=ex(
            "America/Chicago",
            "the time zone of today's figures (the tenant's, or tz); null when the "
            "tenants shown keep different ones (each its own)",
        ),
    )


class TimelineStepSchema(Answer):
    """One line of a call's story."""

    at = _time("when it happened (the webhook's receipt, a talk's end, an outcome's decision)")
    kind = fields.String(
        required=True, validate=validate.OneOf(STEP_KINDS), metadata=ex("ring", "what it tells")
    )
    text = _text("rang 101 Alice Émond and 102 Bob for 12 s", "the step in words")
    seconds = Number(
        required=True,
        allow_none=True,
        metadata=ex(12.0, "how long it lasted, where it has a length (a wait, a ring, a talk)"),
    )


class TimelineSchema(Answer):
    """A call's story, in received order."""

    call_uuid = _text(EXAMPLE_CALL, "the call")
    tenant_id = _text("acme", "whose call")
    timeline = fields.List(fields.Nested(TimelineStepSchema), required=True)
    next = page_next()


RESOLVED_KINDS = values(ResolutionKind)


class CallbackSchema(Answer):
    """A missed caller to call back: open until a later call reaches the number, or by hand."""

    id = _text(EXAMPLE_CALLBACK, "the item's id (a function of the missed call)")
    tenant_id = _text("acme", "whose item")
    number = _text("+15551230000", "the caller's number, E.164")
    missed_call_uuid = _text(EXAMPLE_CALL, "the call that was missed")
    missed_at = _time("when the missed call ended")
    missed_reason = fields.String(
        required=True,
        validate=validate.OneOf(values(r for r in MissedReason if r in CALLBACK_REASONS)),
        metadata=ex("abandoned"),
    )
    status = fields.String(
        required=True, validate=validate.OneOf(("open", "resolved")), metadata=ex("open")
    )
    resolved_at = _time("when it was resolved", nullable=True)
    resolved_by = _text(
        None,
        "the call_uuid of the call that resolved it, or the note of a manual resolution",
        nullable=True,
    )
    resolved_by_kind = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(RESOLVED_KINDS),
        metadata=ex(
            None,
            "called_back (an outbound call to the number), answered (the number called in "
            "and was answered) or manual",
        ),
    )
    resolved_by_call_uuid = _text(None, "the resolving call, if a call", nullable=True)
    note = _text(None, "the note, if resolved by hand", nullable=True)


class CallbackListSchema(Answer):
    """Callback items, oldest miss first."""

    callbacks = fields.List(fields.Nested(CallbackSchema), required=True)
    server_time = _time("when the list was read (the wait of an open item runs until now)")


class CallbackPageSchema(CallbackListSchema):
    """A page of callback items, oldest miss first (the stream sends the whole list)."""

    next = page_next()


class ResolveSchema(JsonBody):
    """A manual resolution."""

    not_an_object = 'body must be a JSON object such as {"note": "called from my mobile"}'
    invalid = "invalid resolution"
    optional = False

    note = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_NOTE),
        metadata=ex("reached her on her mobile", "who resolved it and how"),
    )


class GivenArgs(Schema):
    """Query arguments where an empty value counts as not given."""

    @pre_load
    def _given(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {key: data[key] for key in data if data[key] != ""}


def tenant_filter() -> fields.String:
    return fields.String(
        metadata={"description": "only this tenant (a tenant key may name only its own)"}
    )


class TenantArgs(GivenArgs):
    """Whose board: a tenant key reads its own; an admin key one or every tenant."""

    tenant_id = tenant_filter()


class BoardArgs(TenantArgs):
    """Whose board, and whose day its today figures are."""

    tz = tz_arg("each tenant's")


class CallbackArgs(GivenArgs):
    """Which items, of whose."""

    status = fields.String(
        validate=validate.OneOf(STATUSES, error="status must be open or resolved"),
        metadata={"description": "only open or only resolved items"},
    )
    tenant_id = tenant_filter()


class CallbackPageArgs(CallbackArgs):
    """Which items, of whose, a page at a time."""

    limit = page_size(100)
    cursor = page_cursor()


# -- the routes' description ----------------------------------------------------------

SCOPE = (
    " A tenant's key reads its tenant; an admin key reads the tenant named by `tenant_id`, "
    "or every tenant (each entry has `tenant_id`)."
)
STREAM = (
    "`event: {event}` with the whole list (as the list endpoint answers it) when it changes, "
    "and a keep-alive comment every 15 s. Each event is a snapshot: a reconnect starts with "
    "the current one. The stream closes after STREAM_MAX_SECONDS; reconnect."
)


def documented_stream(event: str, schema: str) -> dict[str, Any]:
    """The ``operation`` arguments of a snapshot stream: its answers and description."""
    return {
        "schema": sse_event(event, schema),
        "content_type": "text/event-stream",
        "answer": "the event stream",
        "example": f'event: {event}\ndata: {{"{event}": [...], '
        f'"server_time": "{EXAMPLE_TIME}"}}\n\n',
        "usual": (401, 403),
        "errors": {400: "a bad filter", 503: TOO_MANY_STREAMS},
        "description": STREAM.format(event=event),
    }


SCHEMAS: dict[str, type[Schema]] = {
    "Extension": ExtensionSchema,
    "ExtensionBoard": ExtensionBoardSchema,
    "TimelineStep": TimelineStepSchema,
    "Timeline": TimelineSchema,
    "Callback": CallbackSchema,
    "CallbackList": CallbackListSchema,
    "CallbackPage": CallbackPageSchema,
    "ResolveCallbackRequest": ResolveSchema,
}
